#!/usr/bin/env bash
# The whole test suite, after set-up on a fresh machine. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# the viewer's browser test needs Debian's chromium (installed when root and missing); the
# scale-out tests need the ray extra
CHORD_APT_EXTRA="${CHORD_APT_EXTRA:-chromium}" CHORD_EXTRAS="${CHORD_EXTRAS:-test,ray}" bash scripts/setup.sh
start=$(date +%s)
set +e
.venv/bin/python -m pytest -q --durations=25 "$@"
rc=$?
set -e
echo "[test] pytest exited $rc after $(( $(date +%s) - start )) s" >&2
exit $rc
