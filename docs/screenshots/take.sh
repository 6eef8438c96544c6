#!/usr/bin/env bash
# Screenshots of the real windows for the tutorials, taken under Xvfb (no window manager; the
# window is found with xwininfo): the recording window driven by
# the scripted expert (the same window and HUD a person sees) and the live take-over window with the
# simulated operator. Writes docs/screenshots/*.png; run it again after the window changes.
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

# shot NAME SECONDS COMMAND...: start the window, wait until it is mapped and SECONDS more, grab the window
shot() {
  local name=$1 wait=$2 id
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
  sleep "$wait"
  kill -0 "$app" 2>/dev/null || { echo "the window for $name closed before the shot" >&2; exit 1; }
  import -window "$id" "$out/$name.png"
  kill "$app" 2>/dev/null || true
  wait "$app" 2>/dev/null || true
  app=""
  echo "wrote $out/$name.png"
}

# the recording window with the scripted expert at the controls, mid-episode (reaching for the cube)
shot record "${TAKEOVER_SHOT_WAIT:-3}" takeover record --task Lift --device scripted -o "$work/rec.hdf5" --episodes 3
