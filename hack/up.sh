#!/usr/bin/env bash
# Brings everything up: installs, starts a local control plane (or uses the cluster in
# KUBECONFIG), installs the CRDs, applies the example hospital, and leaves the operator
# running in the background. `hack/down.sh` stops it all.
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
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply --server-side -f examples/

if [[ -f .testbed/operator.pid ]] && kill -0 "$(cat .testbed/operator.pid)" 2>/dev/null; then
  echo "[up] operator already running (pid $(cat .testbed/operator.pid))"
else
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

deskfleet is running (pid $(cat .testbed/operator.pid), logs in .testbed/operator.log).
Look around with:

  eval "\$(.venv/bin/python hack/testbed.py env --dir .testbed)"
  kubectl get deskfleet -A
  kubectl get deploy,svc,ingress,networkpolicy,pdb -n northgate
  kubectl describe shp clinical-desktop -n northgate

Stop everything with: hack/down.sh
EOT
