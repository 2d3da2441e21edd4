#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the test bed from published Go
# modules, into a cache outside the repository keyed by version. A second run with
# the binaries present does nothing. See docs/development.md for timings.
#
#   hack/build-controlplane.sh        # build what is missing, print the bin dir
#
# Why a scratch module per component: k8s.io/kubernetes and etcd's server module
# carry `replace` directives pointing into their own source trees, so
# `go install pkg@version` refuses them. A scratch main module that requires them
# and replaces each staging module by its published version builds the same code.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"   # what k8s.io/kubernetes v1.36.3 pins
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"  # CRDs only, for HTTPRoute tests

CACHE="${DESKFLEET_CACHE:-$HOME/.cache/deskfleet}"
BIN="$CACHE/bin/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath" GOTOOLCHAIN=local

log() { echo "[build-controlplane] $*" >&2; }

have() { for b in "$@"; do [[ -x "$BIN/$b" ]] || return 1; done; }

mod_dir() {  # where the module cache holds module@version
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

build_kubernetes() {
  have kube-apiserver kube-controller-manager kube-scheduler kubectl && return
  log "building Kubernetes $K8S_VERSION (cold: ~20 min on 2 cores)"
  local src minor staging_ver d="$WORK/kubernetes-$K8S_VERSION"
  src="$(mod_dir "k8s.io/kubernetes@$K8S_VERSION")"
  minor="$(echo "$K8S_VERSION" | cut -d. -f2)"
  staging_ver="v0.${K8S_VERSION#v1.}"
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  {
    echo "module deskfleet.local/k8sbuild"
    grep -E '^(go|godebug) ' "$src/go.mod"
    echo "replace ("
    # every staging module, derived from upstream's go.mod (the list changes per release)
    grep -E '^\s*k8s.io/[a-z0-9-]+ => ./staging/' "$src/go.mod" \
      | awk -v v="$staging_ver" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  local pkgs="k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl"
  # shellcheck disable=SC2086
  go get $(for p in $pkgs; do echo "$p@$K8S_VERSION"; done)
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  # shellcheck disable=SC2086
  go build -tags "selinux,notest,grpcnotrace" -ldflags "$ld" -o "$BIN/" $pkgs
}

build_etcd() {
  have etcd && return
  log "building etcd $ETCD_VERSION"
  local src d="$WORK/etcd-$ETCD_VERSION"
  src="$(mod_dir "go.etcd.io/etcd/server/v3@$ETCD_VERSION")"
  rm -rf "$d" && mkdir -p "$d" && cd "$d"
  {
    echo "module deskfleet.local/etcdbuild"
    grep -E '^go ' "$src/go.mod"
    echo "replace ("
    grep -E '^\s*go.etcd.io/etcd/[a-z0-9/]+ => \.\./' "$src/go.mod" \
      | awk -v v="$ETCD_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > go.mod
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

build_installable() {  # modules without replace directives install directly
  local name="$1" pkg="$2"
  have "$name" && return
  log "installing $pkg"
  GOBIN="$BIN" go install -ldflags "-s -w" "$pkg"
}

kwok_stages() {  # kwok simulates nodes and pods through "stages" shipped in its module
  [[ -s "$BIN/kwok-stages.yaml" ]] && return
  local src s
  src="$(mod_dir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage"
  : > "$BIN/kwok-stages.yaml.tmp"
  for s in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    { echo "---"; cat "$src/$s"; } >> "$BIN/kwok-stages.yaml.tmp"
  done
  mv "$BIN/kwok-stages.yaml.tmp" "$BIN/kwok-stages.yaml"
}

gateway_api_crds() {  # the standard-channel Gateway API CRDs, shipped in its Go module
  [[ -s "$BIN/gateway-api-crds.yaml" ]] && return
  local src f
  src="$(mod_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")/config/crd/standard"
  : > "$BIN/gateway-api-crds.yaml.tmp"
  for f in "$src"/*.yaml; do { echo "---"; cat "$f"; } >> "$BIN/gateway-api-crds.yaml.tmp"; done
  mv "$BIN/gateway-api-crds.yaml.tmp" "$BIN/gateway-api-crds.yaml"
}

build_etcd
build_installable kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
build_installable helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
kwok_stages
gateway_api_crds
build_kubernetes
"$BIN/kube-apiserver" --version >&2
echo "$BIN"
