#!/usr/bin/env bash
# The whole test suite (unit + slow end-to-end), headless. Extra arguments go to pytest.
# Two passes: the tests run two at a time under pytest-xdist (most use one core, so on the 2-core CI
# host this halves the wall time; slow ones start first, see tests/conftest.py), then the few marked
# `alone` run by themselves: they need the host's idle time (a nice-19 background retrain, frame
# times). The LeRobot loader check (marker `lerobot`, its own venv) is a step of .ci/run, not of these
# passes. TAKEOVER_TEST_WORKERS=0 runs everything in one process, in one pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
. .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
workers=${TAKEOVER_TEST_WORKERS:-2}
if [ "$workers" = 0 ]; then
  exec python -m pytest -q --durations=15 "$@"
fi
# pytest exits 5 when a pass selects no test (arguments that pick only one kind): not a failure
parallel=0; python -m pytest -q --durations=15 -n "$workers" --dist worksteal -m "not alone and not lerobot" "$@" || parallel=$?
alone=0; python -m pytest -q --durations=5 -m alone "$@" || alone=$?
[ "$parallel" = 5 ] && [ "$alone" != 5 ] && parallel=0
[ "$alone" = 5 ] && [ "$parallel" != 5 ] && alone=0
[ "$parallel" = 0 ] && exit "$alone"
exit "$parallel"
