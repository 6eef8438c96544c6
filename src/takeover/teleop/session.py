"""The recording session: a device drives the simulator in a pygame window at the control frequency
and finished episodes go through the crash-safe DemoWriter.

    session = RecordingSession(SessionConfig(task="Lift", output="demos.hdf5"), device)
    result = session.run()

Episode flow: READY (scene shown, the simulator waits) -> start (the start control, or any motion)
-> RECORDING (one env step per frame) -> save / discard / reset. At the horizon recording stops
(DONE) until the operator saves or discards. A device that goes away (unplugged gamepad) pauses the
episode (PAUSED); once it is back the start control resumes it, with every step kept. `--auto-save S`
saves once success has held for S seconds.

Views: the camera control (C, or the pad's right-stick click) cycles the layouts: the main camera
alone; the main camera with a second one (a side view by default: the gripper's height over the
object is hard to judge from the front) inset in its corner; each other camera as the main view with
the first inset. A layout with an inset renders twice per step (llvmpipe's cost per render is mostly
the scene's geometry, so a small inset costs nearly a full render): the single view is the default, so
the recording loop keeps its frame-time bar, and `inset=True` starts with the inset.

Extension points (public, so a subclass such as the live take-over in correction/live.py overrides
documented methods, not private ones): `episode_agent` (who acts each step), `new_episode`,
`save_episode`, `discard_episode`, `step` (one env step from a device state), `end_of_frame`, and the
window's text: `banner`, `hud_lines`, `help_lines`.

Per step the recorder stores the label `actions` (the operator's clean command), `executed_actions`
when noise is injected, and the input log (`device_input`, `device_events`; see input_log.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import numpy as np

from takeover.sim.noise import ActionNoise

from .action import DEFAULT_GAINS, ActionGains
from .device_agent import DeviceAgent
from .input_log import EVENTS_LOG_KEY, INPUT_LOG_KEY
from .state import DeviceState, InputDevice
from .window import DIM, FG, GREEN, RED, YELLOW, Window
from ._pygame import pygame

logger = logging.getLogger(__name__)

class SessionState(str, Enum):
    READY = "ready"  # scene shown, the simulator waits for the start control or any motion
    RECORDING = "recording"  # one env step per frame
    PAUSED = "paused"  # the device went away; once it is back, the start control resumes (every step kept)
    DONE = "done"  # horizon reached: save or discard


READY, RECORDING, PAUSED, DONE = SessionState.READY, SessionState.RECORDING, SessionState.PAUSED, SessionState.DONE


@dataclass
class SessionConfig:
    task: str = "Lift"
    output: str | Path = "demos.hdf5"
    append: bool = False
    episodes: int = 0  # stop after this many saved episodes; 0 = until quit
    seed: int = 0  # episode k starts from seed + k (a discard retries the same seed)
    camera: str = "agentview"
    cameras: tuple[str, ...] = ("sideview", "robot0_eye_in_hand")  # more views; the camera control cycles them
    inset: bool = False  # start with the second view inset in a corner of the main one
    render_size: int = 256
    window_size: tuple[int, int] = (512, 512)
    auto_save: float | None = None  # seconds of continuous success before saving by itself
    realtime: bool = True  # pace frames at the control frequency
    gains: ActionGains = DEFAULT_GAINS
    noise: ActionNoise | None = None
    max_frames: int | None = None  # stop after this many frames (tests, benchmarks)
    spec: object = None  # an EnvSpec; None = EnvSpec(task=task)
    title: str | None = None
    # render the window on a worker thread: the control loop keeps its period however long a render
    # takes; the image shown is the newest finished one (a frame or two old)
    render_thread: bool = True

    def env_spec(self):
        from takeover.sim.spec import EnvSpec
        return self.spec if self.spec is not None else EnvSpec(task=self.task)


@dataclass
class SessionResult:
    saved: list[str] = field(default_factory=list)
    discarded: int = 0
    frames: int = 0
    # events + step + display, pacing excluded; + the render itself when render_thread is off
    frame_ms: list[float] = field(default_factory=list)
    renders: int = 0  # window images rendered (with the render thread, fewer than frames when renders are slow)
    quit: bool = False


class Pacer:
    """Frames at a fixed period: `wait()` sleeps to the next tick; running late, it does not catch up."""

    def __init__(self, period: float):
        self.period = period
        self.next_tick = time.perf_counter()

    def wait(self):
        self.next_tick += self.period
        delay = self.next_tick - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            self.next_tick = time.perf_counter()


class RecordingSession:
    def __init__(self, config: SessionConfig, device: InputDevice, env=None, writer=None, window: Window | None = None):
        from takeover.datasets import DemoWriter, EpisodeRecorder
        from takeover.sim import make_env
        from takeover.sim.render_thread import BackgroundRenderer
        from takeover.sim.rollout import EpisodeRun

        self.config = config
        self.device = device
        spec = config.env_spec()
        self._own_writer = writer is None
        self._own_window = window is None
        self._resume_state = READY
        self.writer = None
        # the simulator before the writer, so a new file records the `object` part layout; both before
        # the window, so a file of another task is refused before any window opens
        self.env = env if env is not None else make_env(spec, seed=config.seed)
        try:
            if config.noise is not None and config.noise.action_dim != self.env.action_dim:
                from .errors import TeleopError
                raise TeleopError(f"noise is {config.noise.action_dim}-dimensional; {spec.task} actions have "
                                  f"{self.env.action_dim} dimensions")
            self.writer = writer if writer is not None else DemoWriter(config.output, spec, append=config.append)
            self.window = window if window is not None else Window(
                config.window_size, config.title or f"takeover record - {spec.task} ({device.name})")
        except BaseException:
            if self._own_writer and self.writer is not None:
                self.writer.close()
            if env is None:
                self.env.close()
            raise
        self.renderer = BackgroundRenderer(self.env) if config.render_thread else None
        self._shown = None  # the (main, inset) images on screen
        self.agent = DeviceAgent(device, config.gains)
        self.views = self._layouts(self._available_views([config.camera, *config.cameras]))
        self.view = 1 if config.inset and len(self.views) > 1 else 0
        if self.renderer is not None:  # every layout's renderers now, not at its first use mid-session
            self.renderer.prepare({(w, h) for layout in range(len(self.views)) for _, w, h in self._requests(layout)})
        self.episode_run = EpisodeRun(self.env, self.episode_agent(), max_steps=self.env.max_steps,
                                      recorder=EpisodeRecorder,
                              action_noise=config.noise.apply if config.noise is not None else None)
        self.result = SessionResult()
        self.period = 1.0 / self.env.spec.control_freq
        self.auto_save_steps = None if config.auto_save is None else max(1, round(config.auto_save / self.period))
        self.show_help = True
        self.attempt = 0  # seed offset of the current episode
        self.finished = False
        self.env.warm_up()
        self.new_episode(advance=False)

    def episode_agent(self):
        """What drives the episode: the person (a take-over session mixes in a policy)."""
        return self.agent

    def _available_views(self, names) -> list[str]:
        model = self.env.raw.sim.model
        known = {model.camera_id2name(i) for i in range(model.ncam)}
        views = list(dict.fromkeys(n for n in names if n in known))
        missing = [n for n in names if n not in known]
        if missing:
            logger.warning("no camera(s) %s in %s; views: %s", missing, self.env.spec.task, views or [names[0]])
        return views or [names[0]]  # an unknown main camera still fails with the list at the first render

    @staticmethod
    def _layouts(cameras) -> list[tuple[str, str | None]]:
        """(main, inset) pairs the camera control cycles through."""
        main, others = cameras[0], cameras[1:]
        if not others:
            return [(main, None)]
        return [(main, None), (main, others[0])] + [(c, main) for c in others]

    # --- episode control ----------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return self.config.seed + self.attempt

    @property
    def recorder(self):
        """The current episode's recorder (EpisodeRecorder)."""
        return self.episode_run.recorder

    @property
    def steps(self) -> int:
        """Steps recorded in the current episode."""
        return len(self.episode_run.recorder)

    @property
    def obs(self) -> dict:
        """The current observation."""
        return self.episode_run.obs

    @property
    def success(self) -> bool:
        return self.episode_run.last_success

    @property
    def success_run(self) -> int:
        return self.episode_run.streak

    @property
    def latch(self):
        return self.agent.latch

    def new_episode(self, advance: bool):
        if advance:
            self.attempt += 1
        self.episode_run.reset(self.seed)  # resets the device too (DeviceAgent.reset)
        self.state = READY
        self.last_step_ms = 0.0
        self._scene_changed = True

    def save_episode(self):
        if self.steps == 0:
            logger.info("nothing recorded yet: save ignored")
            return
        steps = self.steps
        attrs = {"device": self.device.name}
        if self.config.noise is not None:
            attrs["noise_std"] = self.config.noise.std.tolist()
        episode = self.episode_run.episode(source=getattr(self.device, "source", "human"), success=bool(self.success), **attrs)
        name = self.writer.save(episode)
        self.result.saved.append(name)
        logger.info("saved %s: %d steps, success=%s, seed=%d", name, steps, self.success, self.seed)
        if self.config.episodes and len(self.result.saved) >= self.config.episodes:
            self.finished = True
            return
        self.new_episode(advance=True)

    def discard_episode(self, advance: bool):
        if self.steps:
            self.result.discarded += 1
            logger.info("discarded an episode of %d steps (seed %d)", self.steps, self.seed)
        self.new_episode(advance=advance)

    # --- one frame ----------------------------------------------------------------------------
    def _handle_events(self, ds: DeviceState):
        if ds.has("quit"):
            if self.steps:
                logger.warning("quit: the unsaved episode of %d steps is discarded", self.steps)
            self.result.quit = True
            self.finished = True
            return
        if ds.has("help"):
            self.show_help = not self.show_help
        if ds.has("camera") and len(self.views) > 1:
            self.view = (self.view + 1) % len(self.views)
            self._scene_changed = True
        if ds.has("save") and self.state in (RECORDING, DONE, PAUSED):
            self.save_episode()
        elif ds.has("discard"):
            self.discard_episode(advance=False)
        elif ds.has("reset"):
            self.discard_episode(advance=True)
        elif self.state == READY and (ds.has("start") or ds.moving or ds.gripper > 0.5 or ds.takeover_held):
            self.state = RECORDING
            logger.info("recording episode (seed %d)", self.seed)

    def step(self, ds: DeviceState):
        self.agent.state = ds
        _, _, _, truncated = self.episode_run.step(**{INPUT_LOG_KEY: ds.to_row(), EVENTS_LOG_KEY: np.uint32(ds.event_mask())})
        self._scene_changed = True
        if self.auto_save_steps is not None and self.success_run >= self.auto_save_steps:
            logger.info("success held for %d steps: auto-save", self.success_run)
            self.save_episode()
        elif truncated:
            self.state = DONE

    def frame(self) -> DeviceState:
        """One iteration: events -> device -> (step) -> render -> display."""
        t0 = time.perf_counter()
        events = pygame.event.get()
        ds = self.device.poll(events)
        if any(ev.type == pygame.QUIT for ev in events):  # window closed, or SIGINT/SIGTERM (SDL turns them into QUIT)
            ds = ds.with_events({"quit"})
        if not ds.connected and self.state in (RECORDING, READY, PAUSED):
            if self.state != PAUSED:
                self._resume_state = self.state
                logger.warning("device disconnected: episode paused at step %d", self.steps)
            self.state = PAUSED
        elif ds.connected and self.state == PAUSED and (self._resume_state == READY or ds.has("start")):
            # a device back (a pad plugged in again) resumes on the start control only: whoever holds
            # it says they are ready, the robot does not move (nor a policy drive) the frame it comes back
            self.state = self._resume_state
            logger.info("device back: resuming at step %d", self.steps)
        self._handle_events(ds)
        if not self.finished and self.state == RECORDING:
            self.step(ds)
        if not self.finished:
            self._draw(ds)
            if self.result.frames == 0:
                logger.info("window up: first frame shown")
            self.end_of_frame()
        elapsed = (time.perf_counter() - t0) * 1000.0
        self.result.frames += 1
        self.result.frame_ms.append(elapsed)
        if self.config.max_frames is not None and self.result.frames >= self.config.max_frames:
            self.finished = True
        return ds

    def end_of_frame(self):
        """Per-frame work of a subclass, inside the measured frame time (a live session's retrain poll)."""

    @property
    def main_camera(self) -> str:
        return self.views[self.view][0]

    @property
    def inset_camera(self) -> str | None:
        return self.views[self.view][1]

    def _draw(self, ds: DeviceState):
        r = self.renderer
        if r is not None and r.done():
            self._show(r.result())
        # the scene changes only when the simulator steps or resets, or the view changes
        if self._scene_changed and (r is None or not r.pending):
            self._scene_changed = False
            requests = self._requests(self.view)
            if r is None:
                self._show([self.env.render(w, h, camera) for camera, w, h in requests])
            else:
                # rendered on the thread while the next frames step: the control loop never waits for a
                # render; while one is still running, the newest scene waits for it to finish
                r.submit(requests)
        if self._shown is None:  # the first frame waits for its image
            self._show(r.result())
        main, inset = self._shown
        self.window.draw(main, self.hud_lines(ds), *self.banner(ds), inset=inset, inset_label=self.inset_camera or "",
                         help=self.help_lines())

    def _requests(self, layout: int) -> list[tuple[str, int, int]]:
        """(camera, width, height) of each image layout `layout` shows: the main view, and its inset."""
        main, inset = self.views[layout]
        size, small = self.config.render_size, max(8, self.config.render_size // 2)
        return [(main, size, size)] + ([(inset, small, small)] if inset else [])

    def _show(self, images):
        if images is not None:
            self._shown = (images[0], images[1] if len(images) > 1 else None)
            self.result.renders += 1

    def banner(self, ds: DeviceState):
        if self.state == PAUSED:
            if ds.connected:
                return "paused: press start to resume", YELLOW
            return (ds.status or "device disconnected") + " - paused", RED
        if self.state == DONE:
            return "horizon reached: save or discard", YELLOW
        if self.state == READY:
            return "ready: start or move to record", GREEN
        return None, YELLOW

    def hud_lines(self, ds: DeviceState) -> list:
        spec = self.env.spec
        rec = {READY: ("READY", GREEN), RECORDING: ("REC", RED), PAUSED: ("PAUSED", YELLOW), DONE: ("DONE", YELLOW)}[self.state]
        frame_ms = self.result.frame_ms[-1] if self.result.frame_ms else 0.0
        lines = [
            (f"{spec.task}  ->  {Path(str(self.config.output)).name}", FG),
            (f"saved {len(self.result.saved)}" + (f"/{self.config.episodes}" if self.config.episodes else "")
             + f"   discarded {self.result.discarded}", FG),
            (f"state {rec[0]}   seed {self.seed}", rec[1]),
            (f"step {self.steps}/{spec.max_steps}", FG),
            (f"success {'YES' if self.success else 'no'}" + (f" (held {self.success_run})" if self.success else ""),
             GREEN if self.success else DIM),
            (f"gripper {'closed' if self.latch.command > 0 else 'open'}"
             f"{'   PRECISION' if ds.precision else ''}", FG),
            (f"device {ds.status or self.device.name}", FG if ds.connected else RED),
            *([(f"noise std {np.round(self.config.noise.std, 3).tolist()}", DIM)] if self.config.noise is not None else []),
            (f"view {self.main_camera}" + (f" + {self.inset_camera}" if self.inset_camera else "  (camera: more)"), DIM),
            (f"frame {frame_ms:.0f} ms", DIM),
        ]
        return lines

    def help_lines(self) -> list:
        """The controls' lines under the HUD (the help control hides them)."""
        return [(line, DIM) for line in self.device.help_lines()] if self.show_help else []

    # --- loop ---------------------------------------------------------------------------------
    def run(self) -> SessionResult:
        try:
            pacer = Pacer(self.period)
            while not self.finished:
                self.frame()
                if self.config.realtime:
                    pacer.wait()
        finally:
            self.close()
        return self.result

    def close(self):
        if self._own_writer and self.writer is not None:
            self.writer.close()
            self.writer = None
        self.device.close()
        if self.renderer is not None:
            self.renderer.close()
            self.renderer = None
        if self._own_window:
            self.window.close()


def run_session(config: SessionConfig, device: InputDevice, **kwargs) -> SessionResult:
    return RecordingSession(config, device, **kwargs).run()
