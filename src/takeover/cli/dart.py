"""`takeover dart`: DART iterations on a demonstration file (the scripted expert collects with noise
fitted to the learner's error). Options, defaults and help come from `DartConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from takeover.correction.dart_config import DartConfig
from takeover.policies.train_config import TrainConfig

from .app import app
from .options import config_argument, config_option, limits


@app.command()
def dart(
    data: Path = config_argument(DartConfig, "data"),
    policy: Path = config_option(DartConfig, "policy", "--policy"),
    out: Path = config_option(DartConfig, "out", "--out", "-o"),
    iterations: int = config_option(DartConfig, "iterations"),
    episodes: int = config_option(DartConfig, "episodes"),
    noise: str = config_option(DartConfig, "noise"),
    target_trace: float = config_option(DartConfig, "target_trace"),
    train_steps: Optional[int] = typer.Option(None, callback=limits(min=1),
                                              help="Gradient steps per retraining (default: the learner's run)."),
    weighting: str = config_option(TrainConfig, "weighting"),
    from_scratch: bool = config_option(DartConfig, "from_scratch", "--from-scratch"),
    eval_episodes: int = config_option(DartConfig, "eval_episodes"),
    workers: int = config_option(DartConfig, "workers"),
    seed: int = config_option(DartConfig, "seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the scripted expert with Gaussian noise on the executed action (the clean action is the
    label), aggregate, retrain, refit the noise to the learner's error; one folder per iteration and a report."""
    from takeover.correction.dart import run_dart
    from takeover.correction.runs import success_text

    cfg = DartConfig(data=str(data), policy=str(policy), out=str(out), iterations=iterations, episodes=episodes,
                     noise=noise, target_trace=target_trace, workers=workers, eval_episodes=eval_episodes,
                     from_scratch=from_scratch, seed=seed,
                     train_overrides={"weighting": weighting, **({"steps": train_steps} if train_steps else {})})
    state = run_dart(cfg, resume=resume, say=lambda line: typer.echo(line, err=True))
    for e in state["iterations"]:
        noise_txt = "-" if e["noise_trace"] is None else f"{e['noise_trace']:.4f}"
        typer.echo(f"iteration {e['iteration']}: noise trace {noise_txt}, {e['expert_labels']} expert labels, "
                   f"{success_text(e)}")
    typer.echo(f"wrote {out / 'report.md'}")
