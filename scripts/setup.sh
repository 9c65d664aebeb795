#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: a virtual environment in .venv with torch (CPU 2.13.0
# when no torch is present), the project with the extras in CHORD_EXTRAS (default: its test
# tools; scripts/test.sh adds ray); Debian's libusb for open3d.
# Re-running it is cheap: it installs only what is missing or what pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${CHORD_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PIP=("$VENV/bin/python" -m pip)

# torch first: an unpinned torch from PyPI is a multi-GB CUDA build. Users with their own
# torch (CUDA or CPU) keep it.
if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    log "installing torch==2.13.0 (CPU build)"
    "${PIP[@]}" install -q "torch==2.13.0"
fi

# open3d loads libusb-1.0 at import time
if ! ldconfig -p 2>/dev/null | grep -q "libusb-1.0.so.0"; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        log "installing Debian's libusb-1.0-0 (needed by open3d)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null
    else
        log "warning: libusb-1.0 is missing; install it (apt-get install libusb-1.0-0) or open3d will not import"
    fi
fi

# optional extra system packages for some tests (e.g. chromium for the viewer's browser test)
if [ -n "${CHORD_APT_EXTRA:-}" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in $CHORD_APT_EXTRA; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

stamp="$VENV/.chord-robot-installed"
extras="${CHORD_EXTRAS:-test}"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd) [$extras]"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing chord-robot and its dependencies into $VENV"
    "${PIP[@]}" install -q -e ".[$extras]"
    echo "$want" > "$stamp"
fi
