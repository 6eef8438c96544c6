#!/usr/bin/env bash
# The main job on built-in defaults: scripted Lift demos -> train -> evaluate -> report (CPU, headless).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} SDL_VIDEODRIVER=${SDL_VIDEODRIVER:-dummy}
exec takeover quickstart --out "${1:-runs/quickstart}"
