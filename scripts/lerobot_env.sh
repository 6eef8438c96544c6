#!/usr/bin/env bash
# Builds (once) the separate venv in which LeRobot's own loader checks our LeRobot exports
# (tests marked `lerobot`, tests/test_lerobot.py). lerobot 0.4.4 is the last line that installs on
# Python 3.11, and it needs torch 2.10 + torchvision 0.25 from PyPI, which do not load beside the
# project's CPU torch: hence a venv of its own, outside the repo (~7 GB, ~6 minutes the first time).
# Safe to run again: it reinstalls only when the pinned set below changes. Prints the venv's python.
# TAKEOVER_LEROBOT_VENV overrides the location.
set -euo pipefail
VENV=${TAKEOVER_LEROBOT_VENV:-$HOME/.cache/takeover/lerobot-venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
SPEC=("lerobot==0.4.4" "torch==2.10.*" "torchvision==0.25.*")
want="${SPEC[*]}"
stamp="$VENV/.takeover-lerobot-installed"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  mkdir -p "$(dirname "$VENV")"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  # only the default index: the host's local wheel folders carry a CPU torch 2.13 that PyPI's torchvision cannot load beside
  PIP_FIND_LINKS= PIP_EXTRA_INDEX_URL= "$VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
    --isolated "${SPEC[@]}" >&2  # isolated: no host config, so only the default index
  "$VENV/bin/python" -c "from lerobot.datasets.lerobot_dataset import LeRobotDataset" >&2
  echo "$want" > "$stamp"
fi
echo "$VENV/bin/python"
