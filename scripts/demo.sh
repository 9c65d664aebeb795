#!/usr/bin/env bash
# The main job, after set-up on a fresh machine: the whole chain on the shipped close-laptop
# example (scan + video -> flow -> plan -> PyBullet execution -> report), on a CPU, in minutes.
# Writes flow.zarr, plan.zarr, flow.mp4, execution.mp4, report.md and trajectory.png into
# the directory given (default demo-out/); exits 1 if the laptop is not closed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/chord-robot demo -o "${1:-demo-out}"
