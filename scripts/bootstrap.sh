#!/usr/bin/env bash
# Creates .venv (once) and installs takeover into it with the tested dependency versions
# (constraints.txt). Safe to run again: it re-installs only when pyproject.toml or constraints.txt
# changed since the last install. TAKEOVER_UNPINNED=1 installs from pyproject's open ranges instead
# (what `pip install -e .` in your own environment does).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.takeover-installed
unpinned=${TAKEOVER_UNPINNED:-0}
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1) unpinned=$unpinned"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python -m pip install --quiet --upgrade pip
  lock=(-c constraints.txt)
  [ "$unpinned" = 1 ] && lock=()
  # torch first, pinned: this CPU build installs from local disk; a bare "torch" would fetch a CUDA build.
  if ! python -m pip install --quiet ${lock[@]+"${lock[@]}"} "torch==2.13.0"; then
    python -m pip install --quiet "torch>=2.4"
    grep -v '^torch==' constraints.txt > .venv/constraints-without-torch.txt  # keep the torch that installed
    [ "$unpinned" = 1 ] || lock=(-c .venv/constraints-without-torch.txt)
  fi
  python -m pip install --quiet ${lock[@]+"${lock[@]}"} -e ".[test]"
  echo "$want" > "$stamp"
fi
