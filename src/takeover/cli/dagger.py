"""`takeover dagger`: DAgger rounds on a demonstration file (the scripted expert labels what the
learner visits), HG-DAgger with the simulated operator, or live take-over in the window
(`--expert human --input gamepad|keyboard`). Options, defaults and help come from `DaggerConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from takeover.correction.dagger_config import DaggerConfig
from takeover.policies.train_config import TrainConfig
from takeover.teleop.devices import person_devices

from .app import app, fail
from .options import config_option, config_options, retrain_overrides
from .vocabulary import limits, camera_option, episodes_option, input_option, parse_size, render_size_option, size_option

OPERATOR = "scripted-operator"  # the simulated operator: headless HG-DAgger, no device
PERSON_DEVICES = person_devices()


@app.command()
@config_options(DaggerConfig, arguments=("data",), skip=("labeller",), decls={"out": ("--out", "-o")})
def dagger(
    settings: dict,
    expert: str = typer.Option("scripted", help="Who labels: 'scripted' (the task's scripted expert labels every "
                               "visited state) or 'human' (HG-DAgger: takes over where the policy strays)."),
    input_: str = input_option(OPERATOR, f"with --expert human, who is at the take-over control: {OPERATOR} (the "
                               "scripted expert playing a person, headless) or a device a person holds (live in a "
                               "window: hold the take-over control to drive, let go to hand back): "
                               f"{', '.join(PERSON_DEVICES)}."),
    stick_takeover: Optional[bool] = typer.Option(None, "--stick-takeover/--no-stick-takeover",
                                                  help="Live: pushing a stick (any motion) past the deadzone takes over "
                                                       "too (default: on for the gamepad, off for the keyboard)."),
    camera: str = camera_option(),
    inset: bool = typer.Option(False, "--inset/--no-inset", help="Live: start with a side view inset (a second "
                                                                   "render per step)."),
    size: str = size_option("of the live window, N or WxH."),
    render_size: int = render_size_option(),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="Live: extra gamepad mapping JSON."),
    gripper: Optional[str] = typer.Option(None, help="Live: gripper control, toggle or hold (default: toggle on the "
                                                     "keyboard, hold on a gamepad)."),
    episodes: int = episodes_option(0, "live: stop after this many saved episodes (0: until quit).", min_value=0),
    realtime: bool = typer.Option(True, "--realtime/--no-realtime", hidden=True),
    max_frames: Optional[int] = typer.Option(None, hidden=True),
    train_steps: Optional[int] = typer.Option(None, callback=limits(min=1),
                                              help="Gradient steps per retraining (default: the learner's run)."),
    weighting: str = config_option(TrainConfig, "weighting"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the beta-mixture of expert and learner, label every visited state with the expert,
    aggregate, retrain, evaluate; one folder per round and a report.
    Live take-over (--expert human --input gamepad|keyboard): the policy drives in a window; hold the
    take-over control (pad: or push a stick) to drive, let go to hand back. Each attempt is saved;
    only your steps are labels. --retrain-every N retrains in the background; quit any time, --resume."""
    from takeover.correction.dagger import run_dagger
    from takeover.correction.runs import success_text

    if expert not in ("scripted", "human"):
        fail(f"--expert {expert!r}: expected 'scripted' or 'human'")
    live = expert == "human" and input_ in PERSON_DEVICES
    if expert == "human" and input_ != OPERATOR and not live:
        fail(f"--input {input_!r}: expected {OPERATOR}, {' or '.join(PERSON_DEVICES)}")
    if expert != "human" and input_ != OPERATOR:
        fail(f"--input {input_!r} needs --expert human")
    labeller = ("human" if live else "operator") if expert == "human" else "scripted"
    cfg = DaggerConfig(**settings, labeller=labeller, train_overrides=retrain_overrides(weighting, train_steps))
    out = Path(cfg.out)
    say = lambda line: typer.echo(line, err=True)  # noqa: E731
    if live:
        _live(cfg, resume, input_, stick_takeover, (camera, inset), size, render_size, mapping, gripper, episodes, realtime,
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
    from takeover.teleop.devices import DeviceOptions, open_device
    from takeover.teleop.session import SessionConfig
    from takeover.teleop.window import require_display

    require_display(device)  # before anything is made: a window nobody sees would wait forever
    run = DaggerRun(cfg, resume=resume)
    dev = open_device(device, DeviceOptions(mapping=mapping))  # no controller: one line, nothing written
    gains = ActionGains(gripper_mode=gripper or dev.gripper_mode)
    camera, inset = camera
    session = SessionConfig(camera=camera, inset=inset, window_size=parse_size(size), render_size=render_size, gains=gains,
                            episodes=episodes, realtime=realtime, max_frames=max_frames)
    state = run_live(run, dev, session, stick_takeover=stick_takeover, say=say)
    live = state.get("live") or {}
    typer.echo(f"{live.get('saved', 0)} live episode(s) saved in {cfg.out}; round {len(state['checkpoints'])} "
               f"policy {state['checkpoints'][-1]}")
