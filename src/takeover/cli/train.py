"""`takeover train`: behaviour cloning of any head on a demonstration file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from takeover.policies.train_config import TrainConfig

from .app import app, fail
from .options import HeadHelpCommand, config_argument, config_option


def parse_head_options(pairs: list[str]) -> dict:
    """--set key=value (value parsed as JSON when it parses: numbers, lists, true/false)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            fail(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command(cls=HeadHelpCommand)
def train(
    data: Path = config_argument(TrainConfig, "data"),
    head: str = config_option(TrainConfig, "head"),
    out: Path = config_option(TrainConfig, "out", "--out", "-o"),
    steps: int = config_option(TrainConfig, "steps"),
    max_minutes: Optional[float] = config_option(TrainConfig, "max_minutes"),
    batch_size: int = config_option(TrainConfig, "batch_size"),
    lr: Optional[float] = config_option(TrainConfig, "lr"),
    ema: float = config_option(TrainConfig, "ema_decay", "--ema",
                               help="EMA decay of the evaluated weights; 0 disables EMA."),
    eval_every: int = config_option(TrainConfig, "eval_every"),
    eval_episodes: int = config_option(TrainConfig, "eval_episodes"),
    eval_workers: int = config_option(TrainConfig, "eval_workers"),
    obs_key: Optional[List[str]] = config_option(TrainConfig, "obs_keys", "--obs-key",
                                                 help="Observation key to use (repeat); default: eef pose, gripper, object."),
    set_: Optional[List[str]] = config_option(TrainConfig, "head_options", "--set", default=None,
                                              help="Head option key=value (repeat), e.g. --set num_modes=5."),
    seed: int = config_option(TrainConfig, "seed"),
    device: str = config_option(TrainConfig, "device"),
    threads: Optional[int] = config_option(TrainConfig, "threads"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pt."),
    init_from: Optional[Path] = config_option(TrainConfig, "init_from"),
    quaternions: str = config_option(TrainConfig, "quaternions"),
    weighting: str = config_option(TrainConfig, "weighting"),
):
    """Train a policy; the best checkpoint (by rollout success) lands in OUT/checkpoints/best.pt."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from takeover.policies.train import Trainer

    if not data.exists():
        fail(f"{data}: no such file")
    cfg = TrainConfig(data=str(data), out=str(out), head=head, head_options=parse_head_options(set_ or []),
                      obs_keys=list(obs_key) if obs_key else None, steps=steps, max_minutes=max_minutes,
                      batch_size=batch_size, lr=lr, ema_decay=ema or None, eval_every=eval_every,
                      eval_episodes=eval_episodes, eval_workers=eval_workers, seed=seed, device=device, threads=threads,
                      init_from=str(init_from) if init_from else None, quaternions=quaternions,
                      weighting=weighting)
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
