"""`takeover train`: behaviour cloning of any head on a demonstration file."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from takeover.config import parse_assignments
from takeover.policies.train_config import TrainConfig

from .app import app, fail
from .options import HeadHelpCommand, config_option, config_options


@app.command(cls=HeadHelpCommand)
@config_options(TrainConfig, arguments=("data",), skip=("eval_seed_start",),
                decls={"out": ("--out", "-o"), "obs_keys": ("--obs-key",), "ema_decay": ("--ema",)},
                replace={"obs_keys": {"help": "Observation key to use (repeat); default: eef pose, gripper, object."},
                         "ema_decay": {"help": "EMA decay of the evaluated weights; 0 disables EMA."}})
def train(
    ctx: typer.Context,
    settings: dict,
    set_: Optional[List[str]] = config_option(TrainConfig, "head_options", "--set", default=None,
                                              help="Head option key=value (repeat), e.g. --set num_modes=5."),
    image_encoder: Optional[List[str]] = config_option(
        TrainConfig, "image_encoder", "--image-encoder", default=None,
        help="Camera encoder option key=value (repeat), e.g. --image-encoder trunk=resnet18 --image-encoder crop=0.9 "
             "--image-encoder pretrained=resnet18.pth; trunks: small (default, for the CPU), resnet18. With a camera "
             "key, unset --batch-size, --steps, --eval-every and --eval-episodes take the CPU image defaults."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pt."),
):
    """Train a policy; the best checkpoint (by rollout success) lands in OUT/checkpoints/best.pt."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from takeover.policies.train import Trainer
    from takeover.policies.vision import with_image_defaults

    if not Path(settings["data"]).exists():
        fail(f"{settings['data']}: no such file")
    cfg = TrainConfig(**{**settings, "ema_decay": settings["ema_decay"] or None, "obs_keys": settings["obs_keys"] or None},
                      head_options=parse_assignments(set_ or []),
                      image_encoder=parse_assignments(image_encoder or [], "--image-encoder"))
    cfg = with_image_defaults(cfg, {name for name in settings if ctx.get_parameter_source(name).name != "DEFAULT"})
    head, steps, out = cfg.head, cfg.steps, Path(cfg.out)
    trainer = Trainer(cfg, resume=resume)
    if int(os.environ.get("RANK", "0")) != 0:
        trainer.run()
        return
    with Progress(TextColumn(f"[bold]train {head}"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                  TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        tid = bar.add_task("train", total=steps, completed=trainer.step, loss="-")

        def progress(step, loss):
            if step % 20 == 0:
                bar.update(tid, completed=step, loss=f"{loss:.4f}")

        result = trainer.run(progress=progress)
    best = result.get("best", {})
    rate = best.get("success_rate")
    typer.echo(f"done at step {result['step']}; best checkpoint {out}/checkpoints/best.pt"
               + (f" (success {rate:.2f} at step {best.get('step')})" if rate is not None and rate >= 0 else ""))
