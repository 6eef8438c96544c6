"""`takeover record` (teleoperate and record demonstrations) and `takeover replay` (play one back)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from takeover.config import default_of
from takeover.sim.spec import EnvSpec
from takeover.sim.tasks import TASKS
from takeover.teleop.devices import DEVICES

from .app import app
from .vocabulary import (limits, camera_option, episodes_option, help_text, input_option, out_option, parse_size,
                         render_size_option, size_option)

logger = logging.getLogger(__name__)


@app.command()
def record(
    out: Path = out_option("the demonstration file (HDF5) to write."),
    task: str = typer.Option(default_of(EnvSpec, "task"), help=f"Task to teleoperate: {', '.join(TASKS)}."),
    input_: str = input_option("keyboard", f"{', '.join(DEVICES)} (scripted: the scripted expert)."),
    append: bool = typer.Option(False, "--append", help="Add to an existing file (it must hold the same task)."),
    episodes: int = episodes_option(0, "stop after this many saved episodes (0: until quit).", min_value=0),
    seed: int = typer.Option(0, help="Seed of the first episode; episode k starts from seed + k."),
    camera: str = camera_option("the view in the window (the camera control, C or the pad's right-stick click, "
                                "cycles views: side view inset, side, eye-in-hand)."),
    inset: bool = typer.Option(False, "--inset/--no-inset", help="Start with a side view inset in the main view "
                                                                   "(costs a second render per step)."),
    size: str = size_option("of the window, N or WxH (the HUD panel is added on the right)."),
    render_size: int = render_size_option(),
    auto_save: Optional[float] = typer.Option(None, "--auto-save", metavar="SECONDS",
                                              help="Save by itself once success has held this long.",
                                              callback=limits(min=0)),
    noise: Optional[str] = typer.Option(None, "--noise", metavar="SIGMA",
                                        help="DART noise on the executed action: a std (arm dims), a comma list, "
                                             "a .npy/.json std vector or covariance, or fit:CKPT (the covariance of "
                                             "that policy's error against the demos of --noise-data). Labels stay clean."),
    noise_data: Optional[Path] = typer.Option(None, "--noise-data", help="With --noise fit:CKPT: the demos to fit "
                                              "on (default: the output file, when appending to one with demos)."),
    noise_trace: float = typer.Option(0.0, help="With --noise fit:CKPT: scale the fitted covariance to this trace "
                                      "(expected squared error); 0: as fitted.", callback=limits(min=0)),
    noise_seed: int = typer.Option(0, help="Seed of the noise generator."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="Extra gamepad mapping JSON (tried before the built-ins)."),
    gripper: Optional[str] = typer.Option(None, help="Gripper control: toggle or hold (default: toggle on the "
                                                     "keyboard, hold on a gamepad)."),
    gain: float = typer.Option(1.0, "--gain", help="Scale of the motion gains (translation and rotation).",
                               callback=limits(above=0)),
    realtime: bool = typer.Option(True, "--realtime/--no-realtime", hidden=True),
    max_frames: Optional[int] = typer.Option(None, hidden=True),
):
    """Teleoperate TASK in a window and record demonstrations (source=human) crash-safely.

    Keyboard: W/S A/D R/F move, U/O I/K J/L rotate, Shift slow, Space gripper, Enter start, Y save,
    N discard (retry), Backspace reset, Esc quit. Headless: SDL_VIDEODRIVER=dummy.
    """
    from takeover.sim.noise import ActionNoise
    from takeover.teleop.action import ActionGains
    from takeover.teleop.devices import DeviceOptions, device_class, open_device
    from takeover.teleop.session import RecordingSession, SessionConfig

    kind, person = device_class(input_), DEVICES[input_].person
    if person:  # a person at the window: it must be able to open
        from takeover.teleop.window import require_display
        require_display(input_)
    if gripper is None:
        gripper = kind.gripper_mode
    spec = EnvSpec(task=task)
    base = ActionGains() if person else ActionGains(translation=1.0, rotation=1.0)
    gains = ActionGains(min(1.0, base.translation * gain), min(1.0, base.rotation * gain), base.precision_scale, gripper)
    if noise is not None and noise.startswith("fit:"):
        action_noise = _fitted_noise(noise[len("fit:"):], noise_data, out, append, task, noise_trace, noise_seed)
    else:
        action_noise = ActionNoise.from_option(noise, 7, seed=noise_seed) if noise is not None else None
    config = SessionConfig(task=task, output=out, append=append, episodes=episodes, seed=seed, camera=camera, inset=inset,
                           render_size=render_size, window_size=parse_size(size), auto_save=auto_save,
                           realtime=realtime, gains=gains, noise=action_noise, max_frames=max_frames, spec=spec)
    env = None
    if not person:  # the scripted expert reads the environment the session steps
        from takeover.sim import make_env

        env = make_env(spec, seed=seed)
    dev = open_device(input_, DeviceOptions(mapping=mapping, env=env, seed=seed,
                                            save_after_success=None if auto_save is not None else 10))
    session = RecordingSession(config, dev, env=env)
    result = session.run()
    typer.echo(f"saved {len(result.saved)} episode(s) to {out}" + (f": {', '.join(result.saved)}" if result.saved else "")
               + (f"; discarded {result.discarded}" if result.discarded else ""))


def _fitted_noise(checkpoint: str, noise_data: Path | None, out: Path, append: bool, task: str, trace: float,
                 seed: int):
    """--noise fit:CKPT: the demos to fit on are --noise-data, or the file being appended to (a person
    adds noisy demos to the file a policy was trained on); a fresh output has none, so it is refused."""
    from takeover.correction.dart import describe_cov, fit_noise_for_recording
    from takeover.sim.noise import ActionNoise
    from takeover.teleop.errors import TeleopError

    if not checkpoint:
        raise TeleopError("--noise fit:CKPT: name the policy checkpoint or run folder after 'fit:'")
    if noise_data is None:
        if not (append and out.exists()):
            raise TeleopError("--noise fit:CKPT needs demos to fit on: pass --noise-data FILE "
                              "(or --append to a file that holds demos)")
        noise_data = out
    cov, fit = fit_noise_for_recording(checkpoint, noise_data, task, trace)
    typer.echo(f"noise fitted to {checkpoint} on {fit['steps']} steps of {noise_data}: {describe_cov(cov)}")
    return ActionNoise(cov, seed=seed)


@app.command()
def replay(
    file: Path = typer.Argument(..., help="Demonstration file."),
    demo: str = typer.Option("0", "--demo", help="Demo number or name (3 or demo_3)."),
    camera: str = camera_option("the view played back."),
    size: str = size_option("of the window, N or WxH."),
    render_size: int = render_size_option(),
    speed: float = typer.Option(1.0, help="Playback speed (1 = real time).", callback=limits(above=0)),
    video: Optional[Path] = typer.Option(None, "--video", help=help_text("--video", "instead of opening a window.")),
):
    """Play a recorded demonstration in a window (or to --video out.mp4)."""
    from takeover.teleop.errors import TeleopError
    from takeover.teleop.demo_viewer import play

    if not file.exists():
        raise TeleopError(f"{file}: no such file")
    result = play(file, demo, camera=camera, render_size=render_size, window_size=parse_size(size), speed=speed,
                  video=video)
    where = f" -> {video}" if video is not None else ""
    typer.echo(f"{result.demo}: {result.steps} steps, success at the end: {result.success}"
               + (f" (recorded: {result.recorded_success})" if result.recorded_success is not None else "") + where)
