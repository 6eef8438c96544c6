"""`takeover quickstart`: the main job end to end on built-in defaults (no download, display or GPU)."""
from __future__ import annotations

from pathlib import Path

import typer

from takeover.policies.quickstart import QuickstartConfig

from .app import app
from .options import HeadHelpCommand, config_options


@app.command(cls=HeadHelpCommand)
@config_options(QuickstartConfig, decls={"out": ("--out", "-o"), "demos": ("--num-demos",)})
def quickstart(settings: dict):
    """Collect scripted demos -> train -> evaluate in parallel -> report.md."""
    from takeover.policies.quickstart import run_quickstart

    summary = run_quickstart(QuickstartConfig(**settings), say=typer.echo)
    out = Path(settings["out"])
    lo, hi = summary["ci95"]
    typer.echo(f"success rate {summary['success_rate']:.2f} over {summary['episodes']} episodes "
               f"(95% CI [{lo:.2f}, {hi:.2f}]); report: {out / 'report.md'}")
