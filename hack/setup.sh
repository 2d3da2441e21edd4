#!/usr/bin/env bash
# Installs everything deskfleet's commands and tests need, idempotently:
# Debian packages (Chromium and fonts for the browser tests among them), a virtualenv
# with the package and its test tools (.venv), the Kubernetes control plane binaries and
# the gateway binaries (both built from Go modules into ~/.cache/deskfleet).
#   hack/setup.sh                 # everything
#   hack/setup.sh --skip-builds   # packages and .venv only (.ci/run times the builds)
set -euo pipefail
cd "$(dirname "$0")/.."
builds=1
[[ "${1:-}" == "--skip-builds" ]] && builds=0

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v git >/dev/null || need_apt+=(git)
command -v promtool >/dev/null || need_apt+=(prometheus)  # alert rule tests, e2e scrape
# Browser tests: Debian's Chromium, driven by Playwright (which never downloads a
# browser of its own), and fonts so that pages render text.
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
for font in fonts-liberation fonts-dejavu-core; do
  dpkg -s "$font" >/dev/null 2>&1 || need_apt+=("$font")
done
# The reference VNC session host (hosts/vnc-desktop) the desktop end-to-end test runs:
# TigerVNC's Xvnc, websockify and noVNC, and Tk for the programs inside its desktops.
for pkg in tigervnc-standalone-server websockify python3-websockify novnc python3-tk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  echo "[setup] installing Debian packages: ${need_apt[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
if [[ ! -x .venv/bin/python ]]; then
  echo "[setup] creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [[ ! -e "$stamp" ]]; then
  echo "[setup] installing deskfleet and its test tools into .venv" >&2
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

((builds)) || exit 0
command -v go >/dev/null || { echo "[setup] Go is needed to build the control plane and the gateways" >&2; exit 1; }
if [[ -z "${KUBECONFIG:-}" ]]; then
  started=$(date +%s)
  bash hack/build-controlplane.sh >/dev/null
  echo "[setup] control plane binaries ready in $(( $(date +%s) - started ))s" >&2
fi
# Traefik and oauth2-proxy run on this machine even in front of an external cluster.
started=$(date +%s)
bash hack/build-gateway.sh >/dev/null
echo "[setup] gateway binaries ready in $(( $(date +%s) - started ))s" >&2
