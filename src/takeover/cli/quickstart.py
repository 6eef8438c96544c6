"""`takeover quickstart`: the main job end to end on built-in defaults (no download, display or GPU)."""
from __future__ import annotations

from pathlib import Path

import typer

from takeover.policies.quickstart import QuickstartConfig

from .app import app
from .options import HeadHelpCommand, config_option


@app.command(cls=HeadHelpCommand)
def quickstart(
    out: Path = config_option(QuickstartConfig, "out"),
    task: str = config_option(QuickstartConfig, "task"),
    demos: int = config_option(QuickstartConfig, "demos"),
    head: str = config_option(QuickstartConfig, "head"),
    steps: int = config_option(QuickstartConfig, "steps"),
    episodes: int = config_option(QuickstartConfig, "eval_episodes", "--episodes"),
    workers: int = config_option(QuickstartConfig, "workers"),
):
    """Collect scripted demos -> train -> evaluate in parallel -> report.md."""
    from takeover.policies.quickstart import run_quickstart

    summary = run_quickstart(QuickstartConfig(out=str(out), task=task, demos=demos, head=head, steps=steps,
                                              eval_episodes=episodes, workers=workers), say=typer.echo)
    lo, hi = summary["ci95"]
    typer.echo(f"success rate {summary['success_rate']:.2f} over {summary['episodes']} episodes "
               f"(95% CI [{lo:.2f}, {hi:.2f}]); report: {out / 'report.md'}")
