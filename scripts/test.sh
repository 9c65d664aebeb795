#!/usr/bin/env bash
# The whole test suite, after set-up on a fresh machine. Extra arguments go to pytest.
# Two pytest workers (CHORD_TEST_WORKERS; 0 runs in this process), each taking whole files so a
# file's fixtures are built once: most tests keep one core busy, so two cores finish the suite
# in ~2/3 of the time (1270 s against 1850 s, session 36).
set -euo pipefail
cd "$(dirname "$0")/.."
# the viewer's browser test needs Debian's chromium (installed when root and missing); the
# scale-out tests need the ray extra
CHORD_APT_EXTRA="${CHORD_APT_EXTRA:-chromium}" CHORD_EXTRAS="${CHORD_EXTRAS:-test,ray}" bash scripts/setup.sh
start=$(date +%s)
set +e
.venv/bin/python -m pytest -q --durations=25 -n "${CHORD_TEST_WORKERS:-2}" --dist loadfile "$@"
rc=$?
set -e
echo "[test] pytest exited $rc after $(( $(date +%s) - start )) s" >&2
exit $rc
