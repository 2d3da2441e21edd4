#!/usr/bin/env bash
# Builds the real gateway pieces the end-to-end tests put in front of the test bed, from
# published Go modules, into a cache outside the repository keyed by version; copies the
# CRDs those gateways read. A second run with everything present does nothing.
#
#   hack/build-gateway.sh        # build what is missing, print the bin dir (last line)
#
# What lands in the bin dir:
#   traefik                 Traefik, reads Gateway API, traefik.io and Ingress objects
#   oauth2-proxy            the authenticating proxy deskfleet's routes point at
#   traefik-crds.yaml       traefik.io/v1alpha1 CRDs (Middleware, IngressRoute, ...)
#   traefik-rbac.yaml       the ClusterRoles Traefik's Kubernetes providers need
#   gateway-api-experimental-crds.yaml   Gateway API experimental channel CRDs (ExternalAuth)
#   envoy-gateway-crds.yaml Envoy Gateway's CRDs (SecurityPolicy), for the chart's dry-run
#
# Why Traefik needs a scratch module (see shared/GATEWAY_E2E.md): its go.mod has replace
# directives, so `go install ...@v3.7.13` refuses it, and three things it needs are not
# served by the Go module proxy. Everything below is generated in the cache's build dir
# at build time; none of Traefik's or lego's source is kept in this repository:
#   1. github.com/traefik/traefik/dynamic/ext (a nested module of Traefik's repository)
#      -> a generated stub module with the three empty types Traefik embeds;
#   2. github.com/go-acme/lego/v5: thirteen of its ACME DNS providers import SDKs the
#      proxy refuses -> a copy of lego from the module cache without those providers
#      (ACME DNS challenges are no part of these tests);
#   3. the containous fork of go-http-auth -> upstream abbot/go-http-auth v0.4.0 plus
#      the two functions Traefik calls, written here.
set -euo pipefail

TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.7.13}"
OAUTH2_PROXY_VERSION="${OAUTH2_PROXY_VERSION:-v7.15.6}"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
ENVOY_GATEWAY_VERSION="${ENVOY_GATEWAY_VERSION:-v1.9.1}"
GO_HTTP_AUTH_VERSION="v0.4.0"

CACHE="${DESKFLEET_CACHE:-$HOME/.cache/deskfleet}"
BIN="$CACHE/bin/gateway-traefik-$TRAEFIK_VERSION-oauth2-proxy-$OAUTH2_PROXY_VERSION-gwapi-$GATEWAY_API_VERSION-eg-$ENVOY_GATEWAY_VERSION"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"
export CGO_ENABLED=0 GOFLAGS="-trimpath" GOTOOLCHAIN=local

log() { echo "[build-gateway] $*" >&2; }

mod_dir() {  # where the module cache holds module@version
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'
}

# lego's DNS providers whose SDK modules the proxy answers "403: not available".
REFUSED_PROVIDERS="alidns aliesa azion dnsimple edgedns edgeone huaweicloud oraclecloud
  regfish sakuracloud tencentcloud ucloud yandexcloud"
# ... and those SDK modules, dropped from every go.mod of the build.
REFUSED_MODULES="github.com/akamai/AkamaiOPEN-edgegrid-golang/v13
  github.com/aziontech/azionapi-go-sdk github.com/dnsimple/dnsimple-go/v9
  github.com/go-acme/alidns-20150109/v5 github.com/go-acme/esa-20240910/v3
  github.com/go-acme/tencentclouddnspod github.com/go-acme/tencentedgdeone
  github.com/huaweicloud/huaweicloud-sdk-go-v3 github.com/nrdcg/oci-go-sdk/common/v1065
  github.com/nrdcg/oci-go-sdk/dns/v1065 github.com/regfish/regfish-dnsapi-go
  github.com/sacloud/sacloud-sdk-go github.com/ucloud/ucloud-sdk-go
  github.com/yandex-cloud/go-sdk/services/dns"

drop_refused_requirements() {  # go.mod on stdin -> without requirements of refused modules
  local pattern
  pattern="$(for m in $REFUSED_MODULES; do printf '%s\n' "$m"; done | sed 's/[.]/\\./g' \
    | paste -sd'|')"
  grep -Ev "^[[:space:]]*(require[[:space:]]+)?($pattern)[[:space:]]"
}

stub_ext_module() {  # 1. github.com/traefik/traefik/dynamic/ext
  local d="$1/ext"
  mkdir -p "$d"
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' > "$d/go.mod"
  cat > "$d/ext.go" <<'EOF'
// Package ext stands in for Traefik's nested module of the same path, which the Go
// module proxy does not serve. Traefik embeds these types inline in its dynamic
// configuration; upstream's open-source build has them empty as well.
package ext

// HTTP is embedded in dynamic.HTTPConfiguration.
type HTTP struct{}

// Router is embedded in dynamic.Router.
type Router struct{}

// RouterIng is the annotation-side counterpart of Router.
type RouterIng struct{}

// ToRouter converts annotation settings into router settings (none here).
func (RouterIng) ToRouter() Router { return Router{} }
EOF
}

trimmed_lego() {  # 2. lego without the providers whose SDKs are refused
  local d="$1/lego" src p
  src="$(mod_dir "github.com/go-acme/lego/v5@$2")"
  rm -rf "$d" && cp -r "$src" "$d" && chmod -R u+w "$d"
  for p in $REFUSED_PROVIDERS; do
    rm -rf "${d:?}/providers/dns/$p"
  done
  rm -rf "$d/cmd" "$d/e2e"  # the lego CLI and its tests name every provider
  python3 - "$d/providers/dns/zz_gen_dns_providers.go" $REFUSED_PROVIDERS <<'EOF'
import re, sys
path, names = sys.argv[1], sys.argv[2:]
text = open(path).read()
for name in names:
    text, n_import = re.subn(rf'\n\t"github.com/go-acme/lego/v5/providers/dns/{name}"', "", text)
    text, n_case = re.subn(rf'\n\tcase [^\n]*:\n\t\treturn {name}\.NewDNSProvider\(\)', "", text)
    assert n_import == 1 and n_case == 1, (name, n_import, n_case)
open(path, "w").write(text)
EOF
  drop_refused_requirements < "$src/go.mod" > "$d/go.mod"
  rm -f "$d/go.sum"
}

go_http_auth() {  # 3. upstream go-http-auth plus what Traefik's fork adds
  local d="$1/go-http-auth" src
  src="$(mod_dir "github.com/abbot/go-http-auth@$GO_HTTP_AUTH_VERSION")"
  rm -rf "$d" && cp -r "$src" "$d" && chmod -R u+w "$d"
  rm -rf "$d/examples"
  printf 'module github.com/abbot/go-http-auth\n\ngo 1.24\n' > "$d/go.mod"
  cat > "$d/zz_deskfleet_additions.go" <<'EOF'
package auth

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// CheckSecret reports whether password matches secret, an htpasswd-style hash (MD5
// crypt, {SHA}, bcrypt), choosing the comparison by the hash's prefix as CheckAuth does.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale asks the client to authenticate again with a fresh nonce, telling it
// that its previous nonce was stale (RFC 7616, section 3.3) rather than its credentials
// wrong.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.mutex.Lock()
	if len(a.clients) > a.ClientCacheSize+a.ClientCacheTolerance {
		a.Purge(a.ClientCacheTolerance * 2)
	}
	nonce := RandomKey()
	a.clients[nonce] = &digest_client{nc: 0, last_seen: time.Now().UnixNano()}
	a.mutex.Unlock()
	w.Header().Set(contentType, a.Headers.V().UnauthContentType)
	w.Header().Set(a.Headers.V().Authenticate,
		fmt.Sprintf(`Digest realm="%s", nonce="%s", opaque="%s", algorithm="MD5", qop="auth", stale=true`,
			a.Realm, nonce, a.Opaque))
	w.WriteHeader(a.Headers.V().UnauthCode)
	_, _ = w.Write([]byte(a.Headers.V().UnauthResponse))
}
EOF
}

build_traefik() {
  [[ -x "$BIN/traefik" ]] && return
  log "building Traefik $TRAEFIK_VERSION (cold: 8-10 min on 2 cores)"
  local src d="$WORK/traefik-$TRAEFIK_VERSION" lego_version mux
  src="$(mod_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")"
  rm -rf "$d" && mkdir -p "$d"
  lego_version="$(awk '$1 == "github.com/go-acme/lego/v5" {print $2; exit}' "$src/go.mod")"
  mux="$(grep -E '^\s*github.com/gorilla/mux => ' "$src/go.mod" | sed -E 's/.*=> *//')"
  stub_ext_module "$d"
  trimmed_lego "$d" "$lego_version"
  go_http_auth "$d"
  {
    echo "module deskfleet.local/traefikbuild"
    echo
    grep -E '^(go|godebug) ' "$src/go.mod"
    echo
    echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
    echo
    # Traefik's own requirements, so that the build selects the versions it was
    # released with; less the three substituted below and the refused SDKs.
    sed -n '/^require (/,/^)/p' "$src/go.mod" \
      | grep -Ev 'github.com/(traefik/traefik/dynamic/ext|abbot/go-http-auth|go-acme/lego/v5) ' \
      | drop_refused_requirements
    echo
    grep -E '^exclude ' "$src/go.mod" || true
    echo
    echo "replace ("
    echo "	github.com/traefik/traefik/dynamic/ext => ./ext"
    echo "	github.com/go-acme/lego/v5 => ./lego"
    echo "	github.com/abbot/go-http-auth => ./go-http-auth"
    [[ -n "$mux" ]] && echo "	github.com/gorilla/mux => $mux"
    echo ")"
  } > "$d/go.mod"
  (
    cd "$d"
    local ld="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
    ld="$ld -X github.com/traefik/traefik/v3/pkg/version.BuildDate=1970-01-01T00:00:00Z"
    # -mod=mod: go.sum is filled in for just the modules this build's packages need.
    go build -mod=mod -ldflags "$ld" -o "$BIN/traefik.tmp" \
      github.com/traefik/traefik/v3/cmd/traefik
  )
  mv "$BIN/traefik.tmp" "$BIN/traefik"
}

build_oauth2_proxy() {
  [[ -x "$BIN/oauth2-proxy" ]] && return
  log "installing oauth2-proxy $OAUTH2_PROXY_VERSION"
  GOBIN="$BIN" go install \
    -ldflags "-s -w -X github.com/oauth2-proxy/oauth2-proxy/v7/pkg/version.VERSION=$OAUTH2_PROXY_VERSION" \
    "github.com/oauth2-proxy/oauth2-proxy/v7@$OAUTH2_PROXY_VERSION"
}

concat_yaml() {  # concat_yaml OUT FILE... : one multi-document YAML, written atomically
  local out="$1" f
  shift
  : > "$out.tmp"
  for f in "$@"; do
    { echo "---"; cat "$f"; echo; } >> "$out.tmp"
  done
  mv "$out.tmp" "$out"
}

traefik_manifests() {  # the traefik.io CRDs and the RBAC its Kubernetes providers need
  [[ -s "$BIN/traefik-crds.yaml" && -s "$BIN/traefik-rbac.yaml" ]] && return
  local ref
  ref="$(mod_dir "github.com/traefik/traefik/v3@$TRAEFIK_VERSION")/docs/content/reference/dynamic-configuration"
  # One file of `---`-separated documents already: copied as it is (by cat, not cp,
  # which would keep the module cache's read-only mode).
  cat "$ref/kubernetes-crd-definition-v1.yml" > "$BIN/traefik-crds.yaml.tmp"
  mv "$BIN/traefik-crds.yaml.tmp" "$BIN/traefik-crds.yaml"
  {
    for f in kubernetes-crd-rbac.yml kubernetes-gateway-rbac.yml \
             kubernetes-ingress-nginx-rbac.yml; do
      echo "---"; cat "$ref/$f"; echo
    done
  } > "$BIN/traefik-rbac.yaml.tmp"
  mv "$BIN/traefik-rbac.yaml.tmp" "$BIN/traefik-rbac.yaml"
}

gateway_api_experimental_crds() {
  [[ -s "$BIN/gateway-api-experimental-crds.yaml" ]] && return
  local src
  src="$(mod_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")/config/crd/experimental"
  # The CRDs only: not the kustomization, nor the safe-upgrades admission policy (the
  # standard channel the bed installs has it already, and it refuses experimental CRDs
  # over standard ones: tests/support/gateway_api.py takes it away first).
  concat_yaml "$BIN/gateway-api-experimental-crds.yaml" \
    $(ls "$src"/gateway.networking.*.yaml | grep -v _vap_)
}

envoy_gateway_crds() {
  [[ -s "$BIN/envoy-gateway-crds.yaml" ]] && return
  local src
  src="$(mod_dir "github.com/envoyproxy/gateway@$ENVOY_GATEWAY_VERSION")/charts/gateway-helm/charts/crds/crds/generated"
  concat_yaml "$BIN/envoy-gateway-crds.yaml" "$src"/*.yaml
}

traefik_manifests
gateway_api_experimental_crds
envoy_gateway_crds
build_oauth2_proxy
build_traefik
"$BIN/traefik" version >&2
"$BIN/oauth2-proxy" --version >&2
echo "$BIN"
