"""`takeover dagger`: DAgger rounds on a demonstration file (the scripted expert labels what the
learner visits), HG-DAgger with the simulated operator, or live take-over in the window
(`--expert human --device gamepad|keyboard`). Options, defaults and help come from `DaggerConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from takeover.correction.dagger_config import DaggerConfig
from takeover.policies.train_config import TrainConfig

from .app import app, fail
from .options import config_option, config_options, limits, retrain_overrides

LIVE_DEVICES = ("gamepad", "keyboard")


@app.command()
@config_options(DaggerConfig, arguments=("data",), skip=("labeller",), decls={"out": ("--out", "-o")})
def dagger(
    settings: dict,
    expert: str = typer.Option("scripted", help="Who labels: 'scripted' (the task's scripted expert labels every "
                               "visited state) or 'human' (HG-DAgger: takes over where the policy strays)."),
    device: str = typer.Option("scripted-operator", help="With --expert human: who is at the take-over control; "
                               "'scripted-operator' (the scripted expert playing a person, headless), 'gamepad' or "
                               "'keyboard' (live in a window: hold the take-over control to drive, let go to hand back)."),
    stick_takeover: Optional[bool] = typer.Option(None, "--stick-takeover/--no-stick-takeover",
                                                  help="Live: pushing a stick (any motion) past the deadzone takes over "
                                                       "too (default: on for the gamepad, off for the keyboard)."),
    camera: str = typer.Option("agentview", help="Live: main camera (the camera control cycles the views)."),
    inset: bool = typer.Option(False, "--inset/--no-inset", help="Live: start with a side view inset (a second "
                                                                   "render per step)."),
    size: str = typer.Option("512", help="Live: window view size, N or WxH."),
    render_size: int = typer.Option(256, help="Live: camera render resolution.", callback=limits(min=8)),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="Live: extra gamepad mapping JSON."),
    gripper: Optional[str] = typer.Option(None, help="Live: gripper control, toggle or hold (default: toggle on the "
                                                     "keyboard, hold on a gamepad)."),
    episodes: int = typer.Option(0, help="Live: stop after this many saved episodes (0: until quit).",
                                 callback=limits(min=0)),
    realtime: bool = typer.Option(True, "--realtime/--no-realtime", hidden=True),
    max_frames: Optional[int] = typer.Option(None, hidden=True),
    train_steps: Optional[int] = typer.Option(None, callback=limits(min=1),
                                              help="Gradient steps per retraining (default: the learner's run)."),
    weighting: str = config_option(TrainConfig, "weighting"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the beta-mixture of expert and learner, label every visited state with the expert,
    aggregate, retrain, evaluate; one folder per round and a report.
    Live take-over (--expert human --device gamepad|keyboard): the policy drives in a window; hold the
    take-over control (pad: or push a stick) to drive, let go to hand back. Each attempt is saved;
    only your steps are labels. --retrain-every N retrains in the background; quit any time, --resume."""
    from takeover.correction.dagger import run_dagger
    from takeover.correction.runs import success_text

    if expert not in ("scripted", "human"):
        fail(f"--expert {expert!r}: expected 'scripted' or 'human'")
    live = expert == "human" and device in LIVE_DEVICES
    if expert == "human" and device != "scripted-operator" and not live:
        fail(f"--device {device!r}: expected scripted-operator, gamepad or keyboard")
    if expert != "human" and device != "scripted-operator":
        fail(f"--device {device!r} needs --expert human")
    labeller = ("human" if live else "operator") if expert == "human" else "scripted"
    cfg = DaggerConfig(**settings, labeller=labeller, train_overrides=retrain_overrides(weighting, train_steps))
    out = Path(cfg.out)
    say = lambda line: typer.echo(line, err=True)  # noqa: E731
    if live:
        _live(cfg, resume, device, stick_takeover, (camera, inset), size, render_size, mapping, gripper, episodes, realtime,
              max_frames, say)
        typer.echo(f"wrote {out / 'report.md'}; continue with --resume")
        return
    state = run_dagger(cfg, resume=resume, say=say)
    for r in state["rounds"]:
        typer.echo(f"round {r['round']}: beta {r['beta']:.3f}, {r['expert_labels']} expert labels, {success_text(r)}")
    typer.echo(f"wrote {out / 'report.md'}")


def _live(cfg, resume, device, stick_takeover, camera, size, render_size, mapping, gripper, episodes, realtime,
          max_frames, say):
    """Checks everything (run folder, inputs, the device) before anything is written, then opens the window."""
    from takeover.correction.dagger import DaggerRun
    from takeover.correction.live import run_live
    from takeover.teleop.action import ActionGains
    from takeover.teleop.session import SessionConfig

    from .record import _parse_size

    run = DaggerRun(cfg, resume=resume)
    if device == "gamepad":
        from takeover.teleop.gamepad import GamepadDevice
        dev = GamepadDevice(mapping_file=mapping)  # no controller: one line, nothing written
    else:
        from takeover.teleop.keyboard import KeyboardDevice
        dev = KeyboardDevice()
    gains = ActionGains(gripper_mode=gripper or ("hold" if device == "gamepad" else "toggle"))
    camera, inset = camera
    session = SessionConfig(camera=camera, inset=inset, window_size=_parse_size(size), render_size=render_size, gains=gains,
                            episodes=episodes, realtime=realtime, max_frames=max_frames)
    state = run_live(run, dev, session, stick_takeover=stick_takeover, say=say)
    live = state.get("live") or {}
    typer.echo(f"{live.get('saved', 0)} live episode(s) saved in {cfg.out}; round {len(state['checkpoints'])} "
               f"policy {state['checkpoints'][-1]}")
