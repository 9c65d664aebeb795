#!/usr/bin/env bash
# The main job, after set-up on a fresh machine: for now, load and segment the shipped
# example scan and write its object list and a preview image into demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT="${1:-demo-out}"
mkdir -p "$OUT"
.venv/bin/chord-robot scene examples/tabletop/scan.ply --json "$OUT/scene.json" --preview "$OUT/scene.png"
