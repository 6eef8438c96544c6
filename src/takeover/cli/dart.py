"""`takeover dart`: DART iterations on a demonstration file (the scripted expert collects with noise
fitted to the learner's error). Options, defaults and help come from `DartConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from takeover.correction.dart_config import DartConfig
from takeover.policies.train_config import TrainConfig

from .app import app
from .options import config_option, config_options, retrain_overrides
from .vocabulary import limits


@app.command()
@config_options(DartConfig, arguments=("data",), decls={"out": ("--out", "-o"), "episodes": ("--episodes-per-round",)})
def dart(
    settings: dict,
    train_steps: Optional[int] = typer.Option(None, callback=limits(min=1),
                                              help="Gradient steps per retraining (default: the learner's run)."),
    weighting: str = config_option(TrainConfig, "weighting"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the scripted expert with Gaussian noise on the executed action (the clean action is the
    label), aggregate, retrain, refit the noise to the learner's error; one folder per iteration and a report."""
    from takeover.correction.dart import run_dart
    from takeover.correction.runs import success_text

    cfg = DartConfig(**settings, train_overrides=retrain_overrides(weighting, train_steps))
    out = Path(cfg.out)
    state = run_dart(cfg, resume=resume, say=lambda line: typer.echo(line, err=True))
    for e in state["iterations"]:
        noise_txt = "-" if e["noise_trace"] is None else f"{e['noise_trace']:.4f}"
        typer.echo(f"iteration {e['iteration']}: noise trace {noise_txt}, {e['expert_labels']} expert labels, "
                   f"{success_text(e)}")
    typer.echo(f"wrote {out / 'report.md'}")
