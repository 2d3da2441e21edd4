#!/usr/bin/env bash
# Stops the operator started by hack/up.sh and the local control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -f .testbed/operator.pid ]]; then
  kill "$(cat .testbed/operator.pid)" 2>/dev/null || true
  rm -f .testbed/operator.pid
fi
python3 hack/testbed.py down --dir .testbed
