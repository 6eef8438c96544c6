"""`takeover augment DATA --method NAME -o OUT.hdf5`: a new file from the input's demos by one of the
registered augmentation methods (correction/methods.py: ccil, generate). Each method's options, with
their defaults, help and limits, are built from its config class; an option of another method is
refused before anything runs."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from takeover.correction.methods import AUGMENT_METHODS

from .app import app, fail
from .options import chosen_config_options
from .vocabulary import help_text, out_option

_RESUMABLE = [name for name, m in AUGMENT_METHODS.items() if m.resumable]


@app.command()
@chosen_config_options("method", {name: m.config for name, m in AUGMENT_METHODS.items()},
                       decls={"lipschitz_k": ("--lipschitz-k", "-k"), "obs_keys": ("--obs-key",),
                              "episodes": ("-n", "--episodes")},
                       replace={"obs_keys": {"help": "Low-dim observation key to model (repeat); default: the training "
                                                     "default keys present in the file."}})
def augment(
    settings: dict,
    data: Path = typer.Argument(..., help="Demonstration HDF5 file (never modified)."),
    out: Path = out_option("the new HDF5 file: the input's demos and the label demos."),
    method: str = typer.Option("ccil", help="Augmentation: " + "; ".join(f"{name} ({m.help})" for name, m in
                               AUGMENT_METHODS.items()) + ". Noise-injected collection (DART) is "
                               "`takeover collect --noise`."),
    report: Optional[Path] = typer.Option(None, help="Also write the method's report (JSON) to this file."),
    resume: bool = typer.Option(False, "--resume", help=f"Continue a killed run into OUT ({', '.join(_RESUMABLE)})."),
):
    """Make a new demonstration file from DATA by the chosen method: CCIL's corrective labels
    (`source=ccil`) or generated demos (`source=generated`)."""
    chosen = AUGMENT_METHODS[method]
    if resume and not chosen.resumable:
        fail(f"--resume is an option of --method {' / '.join(_RESUMABLE)}, not {method}")
    if report is not None and report.exists():
        fail(f"--report {report}: already exists; choose a new file")
    if "obs_keys" in settings:
        settings["obs_keys"] = settings["obs_keys"] or None  # no --obs-key: the training default keys
    cfg = chosen.config(**settings)
    with _progress() as progress:
        result = chosen.run(data, out, cfg, resume=resume, progress=progress)
    for line in chosen.summary(result, out):
        typer.echo(line)
    if report is not None:
        report.write_text(json.dumps(result, indent=2))


@contextlib.contextmanager
def _progress():
    """progress(text, done=None, total=None): a line on stderr, or a bar counting towards `total`
    (drawn on a terminal only)."""
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not console.is_terminal) as bar:
        tasks = {}

        def progress(text, done=None, total=None):
            if done is None:
                typer.echo(text, err=True)
            elif "bar" not in tasks:
                tasks["bar"] = bar.add_task(text, total=total, completed=done)
            else:
                bar.update(tasks["bar"], description=text, completed=done)

        yield progress
