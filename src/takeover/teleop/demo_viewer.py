"""`takeover replay`: show a recorded demonstration in the window (or write the same frames to an mp4)
by setting its stored simulator states in turn (`takeover.datasets.playback.replay_states`). The last
stored action is executed from the last state, so the final frame is where the demonstration ended
and `success` is checked there."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from takeover.datasets.playback import load_demo, replay_states

logger = logging.getLogger(__name__)


@dataclass
class PlaybackResult:
    demo: str
    steps: int
    success: bool  # robosuite's success at the end of the replay
    recorded_success: bool | None


def play(path, demo, camera: str = "agentview", render_size: int = 256, window_size=(512, 512),
         speed: float = 1.0, video: str | Path | None = None) -> PlaybackResult:
    from takeover.sim import make_env

    name, spec, episode, attrs = load_demo(path, demo)
    env = make_env(spec)
    recorded = attrs.get("success")
    try:
        if video is not None:
            return _to_video(path, name, env, episode, camera, render_size, video, recorded)
        from ._pygame import pygame
        from .window import DIM, FG, GREEN, Window

        window = Window(window_size, f"takeover replay - {Path(path).name} {name}")
        period = 1.0 / (spec.control_freq * max(speed, 1e-3))
        next_tick = [time.perf_counter()]
        quit_requested = [False]

        def show(t):
            for ev in pygame.event.get():
                if ev.type == pygame.QUIT or (ev.type == pygame.KEYDOWN and ev.key == pygame.K_ESCAPE):
                    quit_requested[0] = True
            if quit_requested[0]:
                raise _Stop
            ok = env.check_success()
            window.draw(env.render(render_size, render_size, camera),
                        [(f"{Path(path).name}  {name}", FG), (f"step {t}/{len(episode)}", FG),
                         (f"success {'YES' if ok else 'no'}", GREEN if ok else DIM),
                         (f"source {attrs.get('source', '?')}  seed {attrs.get('seed', '?')}", DIM),
                         ("Esc  quit", DIM)])
            next_tick[0] += period
            delay = next_tick[0] - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

        try:
            success = replay_states(env, episode, show)
        except _Stop:
            success = env.check_success()
        finally:
            window.close()
        return PlaybackResult(name, len(episode), bool(success), recorded)
    finally:
        env.close()


class _Stop(Exception):
    pass


def _to_video(path, name, env, episode, camera, render_size, video, recorded) -> PlaybackResult:
    """One pass over the recorded states renders the video and checks success at the end."""
    from takeover.sim.video import write_mp4

    frames = []
    success = replay_states(env, episode, lambda t: frames.append(env.render(render_size, render_size, camera)))
    write_mp4(video, frames, fps=env.spec.control_freq)
    logger.info("wrote %s", video)
    return PlaybackResult(name, len(episode), bool(success), recorded)
