#!/usr/bin/env bash
# The whole test suite: fast unit tests of the pure core, then the cluster tests against
# a real control plane that the test session starts on 127.0.0.1 and stops at the end.
#   hack/test.sh                 # everything
#   hack/test.sh -m "not cluster"  # only the tests that need no cluster
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
exec .venv/bin/pytest -p no:cacheprovider "$@"
