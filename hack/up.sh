#!/usr/bin/env bash
# Brings everything up: installs, starts a local control plane (or uses the cluster in
# KUBECONFIG), installs the CRDs, applies the example hospital, and leaves the operator
# and the portal running in the background. `hack/down.sh` stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
mkdir -p .testbed
eval "$(.venv/bin/python hack/testbed.py up --dir .testbed)"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
# The local bed ships the Gateway API CRDs (the example's teleconsult app uses an HTTPRoute);
# on your own cluster, install them as you normally would.
gateway_crds="$(dirname "$(command -v kubectl)")/gateway-api-crds.yaml"
[[ -f "$gateway_crds" ]] && kubectl apply --server-side -f "$gateway_crds" >/dev/null
# The routes ask the portal through Traefik Middlewares (the default gateway flavour).
traefik_crds="$(bash hack/build-gateway.sh)/traefik-crds.yaml"
kubectl apply --server-side -f "$traefik_crds" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply --server-side -f examples/

running() { [[ -f ".testbed/$1.pid" ]] && kill -0 "$(cat ".testbed/$1.pid")" 2>/dev/null; }
# The portal, for local exploration: it believes identity headers from this machine
# only (a real install verifies OIDC tokens and asks oauth2-proxy; see docs/portal.md).
if running portal; then
  echo "[up] portal already running (pid $(cat .testbed/portal.pid))"
else
  DESKFLEET_PORTAL_TRUST_IDENTITY_HEADERS=true DESKFLEET_PORTAL_TRUSTED_PROXIES=127.0.0.1/32 \
    nohup .venv/bin/deskfleet portal --port 18081 --internal-port 19091 \
    > .testbed/portal.log 2>&1 &
  echo $! > .testbed/portal.pid
fi
if running operator; then
  echo "[up] operator already running (pid $(cat .testbed/operator.pid))"
else
  DESKFLEET_PORTAL_URL=http://127.0.0.1:18081 \
    DESKFLEET_PORTAL_STATS_URLS='["http://127.0.0.1:19091/v1/stats"]' \
    nohup .venv/bin/deskfleet run --liveness-port 18080 --metrics-port 19090 \
    > .testbed/operator.log 2>&1 &
  echo $! > .testbed/operator.pid
fi
for _ in $(seq 60); do
  curl -fs http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break
  sleep 0.5
done
sleep 3
kubectl get deskfleet -A
cat <<EOT

deskfleet is running: the operator (pid $(cat .testbed/operator.pid), .testbed/operator.log)
and the portal (pid $(cat .testbed/portal.pid), .testbed/portal.log). Look around with:

  eval "\$(.venv/bin/python hack/testbed.py env --dir .testbed)"
  kubectl get deskfleet -A
  kubectl get deploy,svc,httproute,middleware,ingress,networkpolicy,pdb -n northgate
  kubectl describe shp clinical-desktop -n northgate

Ask the portal as a nurse would (the gateway calls /authz on every request):

  curl -s -H 'X-Auth-Request-Email: nurse@northgate.example' \\
       -H 'X-Auth-Request-Groups: nurses' http://127.0.0.1:18081/     # the landing page
  curl -si -H 'X-Auth-Request-Email: nurse@northgate.example' \\
       -H 'X-Auth-Request-Groups: nurses' http://127.0.0.1:18081/authz/northgate/epr
  .venv/bin/deskfleet explain -n northgate --app epr --user nurse@northgate.example --group nurses

Stop everything with: hack/down.sh
EOT
