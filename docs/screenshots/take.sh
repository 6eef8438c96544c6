#!/usr/bin/env bash
# Screenshots of the real windows for the tutorials, taken under Xvfb (no window manager; the window is
# found with xwininfo, keys are sent with xdotool): the recording window driven by the scripted expert
# (the same window and HUD a person sees) and the live take-over window while the keyboard holds T.
# Writes docs/screenshots/*.png; run it again after the window changes.
#   bash docs/screenshots/take.sh            (needs Xvfb, x11-utils and imagemagick's `import`)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/screenshots
work=$(mktemp -d)
display=:${TAKEOVER_SHOT_DISPLAY:-77}
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
app=""
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export DISPLAY=$display MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} OMP_NUM_THREADS=1
sleep 1

# shot NAME ACTION COMMAND...: start the window, wait until it shows its first frame, run ACTION (a
# shell function given the window id, which may press keys), grab the window, stop it
shot() {
  local name=$1 action=$2 id
  shift 2
  "$@" >"$work/$name.log" 2>&1 &
  app=$!
  for _ in $(seq 360); do  # up to 3 minutes: building the scene and the first render take a while on a CPU
    id=$(xwininfo -root -tree | awk '/"takeover/ {print $1; exit}')
    [ -n "$id" ] && break
    kill -0 "$app" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$id" ]; then
    echo "no window for $name:" >&2
    tail -5 "$work/$name.log" >&2
    exit 1
  fi
  for _ in $(seq 240); do  # the window is blank until its first frame is drawn
    import -window "$id" "$work/probe.png" 2>/dev/null || true
    [ "$(convert "$work/probe.png" -format '%[fx:standard_deviation>0.02]' info: 2>/dev/null)" = 1 ] && break
    sleep 0.5
  done
  "$action" "$id"
  kill -0 "$app" 2>/dev/null || { echo "the window for $name closed before the shot" >&2; exit 1; }
  import -window "$id" "$out/$name.png"
  xdotool keyup t 2>/dev/null || true
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  app=""
  for _ in $(seq 40); do  # the next shot must not find this window while the X server removes it
    xwininfo -root -tree | grep -q '"takeover' || break
    sleep 0.25
  done
  echo "wrote $out/$name.png"
}

mid_episode() { sleep "${TAKEOVER_SHOT_WAIT:-3}"; }

# the person takes over: start the episode, let the policy drive, then hold T (take over) and R (up)
hold_takeover() {
  xdotool windowfocus --sync "$1"
  xdotool key Return
  sleep 4
  xdotool keydown t
  sleep 1
  xdotool keydown r
  sleep 2
  xdotool keyup r
}

# the recording window with the scripted expert at the controls, mid-episode (grasping the cube)
shot record mid_episode takeover record --task Lift --input scripted -o "$work/rec.hdf5" --episodes 3

# the live take-over window: a small policy (or TAKEOVER_SHOT_POLICY, a run folder) drives until the
# keyboard takes over
policy=${TAKEOVER_SHOT_POLICY:-}
if [ -z "$policy" ]; then
  takeover collect --task Lift -n 5 -o "$work/demos.hdf5" --workers 1 >/dev/null
  takeover train "$work/demos.hdf5" --head gaussian --steps 300 --eval-episodes 0 --out "$work/policy" >/dev/null
  policy=$work/policy
fi
[ -f "$work/demos.hdf5" ] || takeover collect --task Lift -n 2 -o "$work/demos.hdf5" --workers 1 >/dev/null
shot takeover hold_takeover takeover dagger "$work/demos.hdf5" --policy "$policy" --expert human --input keyboard \
  --episodes 1 --out "$work/live"
