"""`takeover quickstart`: the main job end to end on built-in defaults (no download, display or GPU)."""
from __future__ import annotations

from pathlib import Path

import typer

from .app import app


@app.command()
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), help="Folder for the data, the run and report.md."),
    task: str = typer.Option("Lift"),
    demos: int = typer.Option(50),
    head: str = typer.Option("gaussian"),
    steps: int = typer.Option(3000),
    episodes: int = typer.Option(50, help="Evaluation episodes."),
    workers: int = typer.Option(2),
):
    """Collect scripted demos -> train -> evaluate in parallel -> report.md."""
    from takeover.policies.quickstart import QuickstartConfig, run_quickstart

    summary = run_quickstart(QuickstartConfig(out=str(out), task=task, demos=demos, head=head, steps=steps,
                                              eval_episodes=episodes, workers=workers), say=typer.echo)
    lo, hi = summary["ci95"]
    typer.echo(f"success rate {summary['success_rate']:.2f} over {summary['episodes']} episodes "
               f"(95% CI [{lo:.2f}, {hi:.2f}]); report: {out / 'report.md'}")
