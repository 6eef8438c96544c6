#!/usr/bin/env bash
# Creates .venv (once) and installs takeover into it. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.takeover-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  # torch first, pinned: this CPU build installs from local disk; a bare "torch" would fetch a CUDA build.
  python -m pip install --quiet "torch==2.13.0" || python -m pip install --quiet "torch>=2.4"
  python -m pip install --quiet -e ".[test]"
  touch "$stamp"
fi
