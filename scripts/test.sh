#!/usr/bin/env bash
# The whole test suite, after set-up on a fresh machine. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
set +e
.venv/bin/python -m pytest -q "$@"
rc=$?
set -e
echo "[test] pytest exited $rc after $(( $(date +%s) - start )) s" >&2
exit $rc
