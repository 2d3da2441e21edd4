#!/usr/bin/env bash
# Installs everything deskfleet's commands and tests need, idempotently:
# Debian packages, a virtualenv with the package and its test tools (.venv), and the
# Kubernetes control plane binaries (built from Go modules into ~/.cache/deskfleet).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v git >/dev/null || need_apt+=(git)
command -v promtool >/dev/null || need_apt+=(prometheus)  # alert rule tests, e2e scrape
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

if [[ -z "${KUBECONFIG:-}" ]]; then
  command -v go >/dev/null || { echo "[setup] Go is needed to build the local control plane" >&2; exit 1; }
  bash hack/build-controlplane.sh >/dev/null
fi
