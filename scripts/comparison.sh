#!/usr/bin/env bash
# The paper's robot comparison in simulation (issue #17): 8 trials x the four tasks x the flow
# sources, at seeds 100-107 (no tuning looked at them), two worker processes. Writes one
# folder per source and comparison.md / comparison.png into the directory given (default
# comparison-out/). About 70 min on a 2-core machine (chord ~2.7 min a trial, video ~1.5,
# video-baseline ~1.2, oracle ~0.3). Sources can be narrowed: SOURCES=chord,oracle.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/chord-robot eval -o "${1:-comparison-out}" --flow-source "${SOURCES:-oracle,video,chord,video-baseline}" \
    --trials 8 --seed 100 --workers 2
