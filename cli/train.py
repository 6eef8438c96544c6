"""`takeover train`: behaviour cloning of any head on a demonstration file."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from .app import app, fail


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


@app.command()
def train(
    data: Path = typer.Argument(..., help="Demonstration HDF5 file."),
    head: str = typer.Option("gaussian", help="gaussian, gmm, cvae, autoregressive, lstm or diffusion."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder."),
    steps: int = typer.Option(5000, help="Gradient steps (budget)."),
    max_minutes: Optional[float] = typer.Option(None, help="Wall-clock budget; training stops and evaluates when reached."),
    batch_size: int = typer.Option(256),
    lr: Optional[float] = typer.Option(None, help="Learning rate (default: the head's)."),
    ema: float = typer.Option(0.995, help="EMA decay of the evaluated weights; 0 disables EMA."),
    eval_every: int = typer.Option(2500, help="Steps between rollout evaluations."),
    eval_episodes: int = typer.Option(20, help="Episodes per rollout evaluation (0: none; best = last)."),
    eval_workers: int = typer.Option(2, help="Worker processes for rollout evaluation."),
    obs_key: Optional[List[str]] = typer.Option(None, "--obs-key", help="Observation key to use (repeat); default: eef pose, gripper, object."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Head option key=value (repeat), e.g. --set num_modes=5."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu, cuda, cuda:1."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last.pt."),
    init_from: Optional[Path] = typer.Option(None, help="Warm start from this checkpoint's weights (same head and keys), "
                                             "with a fresh optimiser and schedule: fine-tuning, longer training."),
    quaternions: str = typer.Option("matrix", help="matrix: quaternion observations enter as rotation matrices "
                                    "(sign-free; robosuite flips q to -q near w=0); raw: as stored."),
):
    """Train a policy; the best checkpoint (by rollout success) lands in OUT/checkpoints/best.pt."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from takeover.policies.train import TrainConfig, Trainer

    if not data.exists():
        fail(f"{data}: no such file")
    cfg = TrainConfig(data=str(data), out=str(out), head=head, head_options=parse_head_options(set_ or []),
                      obs_keys=list(obs_key) if obs_key else None, steps=steps, max_minutes=max_minutes,
                      batch_size=batch_size, lr=lr, ema_decay=ema or None, eval_every=eval_every,
                      eval_episodes=eval_episodes, eval_workers=eval_workers, seed=seed, device=device, threads=threads,
                      init_from=str(init_from) if init_from else None, quaternions=quaternions)
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
