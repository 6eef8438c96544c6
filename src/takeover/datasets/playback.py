"""Play a recorded demonstration back by setting its stored simulator states, one per step.

The one state-replay loop: `takeover data replay` (video of the recorded states), the playback
window (`takeover replay`, teleop/demo_viewer.py) and the tests use `replay_states`. The first state
goes through `load_model`, so files recorded on another robosuite install (asset paths, or a model
given by file name) replay too.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .errors import DatasetError

log = logging.getLogger(__name__)


def demo_name(demo: str | int) -> str:
    text = str(demo)
    return f"demo_{text}" if text.isdigit() else text


def load_demo(path, demo):
    """(name, spec, episode, attrs) of demo `demo` (a number or a name) in `path`."""
    from .reader import DemoReader

    name = demo_name(demo)
    with DemoReader(path) as reader:
        if name not in reader:
            shown = ", ".join(reader.demos[:10]) + (" ..." if len(reader.demos) > 10 else "")
            raise DatasetError(f"{path} has no {name}; demos: {shown or 'none'}")
        if reader.spec is None:
            raise DatasetError(f"{path}: has no environment metadata (takeover_spec or a known env_args) to replay with")
        return name, reader.spec, reader.episode(name, check=False), reader.attrs(name)


def replay_states(env, episode, on_frame=None, where: str = "demo") -> bool:
    """Set every recorded state of `episode` in turn (calling `on_frame(t)` after each, t = 0..T-1),
    then execute the last executed action and call `on_frame(T)`; returns success at the end."""
    from .model_loading import load_model

    states = episode.states
    if states.ndim != 2 or len(states) == 0 or states.shape[1] == 0:
        raise DatasetError(f"{where}, key states: no recorded states to replay")
    executed = episode.extras.get("executed_actions", episode.actions)
    for t, state in enumerate(states):
        if t == 0:
            load_model(env, episode.model_file, state, where)
        else:
            env.set_state(state)
        if on_frame is not None:
            on_frame(t)
    env.step(np.asarray(executed[-1], dtype=np.float64))
    if on_frame is not None:
        on_frame(len(states))
    return env.check_success()


def replay_video(path, demo, out_mp4, camera: str = "agentview", size: int | tuple[int, int] = 256, fps: int = 20,
                 progress=None) -> Path:
    """Render demo `demo` of `path`, one frame per recorded state, to an H.264 mp4 (yuv420p,
    browser-playable) written via a temp file and a rename. Returns the mp4 path."""
    from takeover.sim import make_env
    from takeover.sim.errors import SimError
    from takeover.sim.video import write_mp4

    width, height = (size, size) if isinstance(size, int) else size
    name, spec, episode, _ = load_demo(path, demo)
    env = make_env(spec, seed=0)
    frames = []

    def grab(t):
        if t < len(episode):
            try:
                frames.append(env.render(width, height, camera))
            except SimError as exc:
                raise DatasetError(f"{path}, {name}: {exc}") from None
            if progress is not None:
                progress(t)

    try:
        replay_states(env, episode, grab, where=f"{path}, {name}")
    finally:
        env.close()
    return write_mp4(out_mp4, frames, fps=fps)
