#!/usr/bin/env bash
# Stops the operator and the portal started by hack/up.sh and the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
for component in operator portal; do
  if [[ -f ".testbed/$component.pid" ]]; then
    kill "$(cat ".testbed/$component.pid")" 2>/dev/null || true
    rm -f ".testbed/$component.pid"
  fi
done
python3 hack/testbed.py down --dir .testbed
