"""`takeover augment DATA --method generate -n N -o OUT.hdf5`: object-centric demo generation
(correction/generation.py). Called from cli/augment.py, which owns the command line."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .app import fail


def run_generate(data: Path, out: Path, *, episodes: int | None, select: str, noise: float, workers: int,
                 bridge_steps: int, first_seed: int | None, resume: bool, subtask_override: Path | None,
                 report: Path | None):
    from takeover.correction.generation import FIRST_SEED, GenerationConfig, check_output, generate
    from takeover.correction.segments import load_library

    if episodes is None:
        fail("--method generate needs -n N (the number of demos to generate)")
    if episodes < 1:
        fail(f"-n {episodes}: generate at least 1 demo")
    if not data.exists():
        fail(f"{data}: no such file")
    if report is not None and report.exists():
        fail(f"--report {report}: already exists; choose a new file")
    cfg = GenerationConfig(episodes=episodes, select=select, noise=noise, workers=workers, bridge_steps=bridge_steps,
                           seed=FIRST_SEED if first_seed is None else first_seed)
    cfg.check()
    check_output(out, resume)
    library = load_library(data, subtask_override)  # every input problem is found before OUT is created
    console = Console(stderr=True)
    with Progress(TextColumn(f"[bold]generate {library.task}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("tried {task.fields[tried]}"), TimeElapsedColumn(), console=console,
                  disable=not console.is_terminal) as bar:
        tid = bar.add_task("generate", total=episodes, tried=0)
        result = generate(data, out, cfg, overrides=subtask_override, resume=resume, library=library,
                          progress=lambda kept, tried: bar.update(tid, completed=kept, tried=tried))
    failures = ", ".join(f"{k} {v}" for k, v in result["failures_by_subtask"].items())
    surplus = f", {result['surplus']} more successes than wanted dropped" if result["surplus"] else ""
    typer.echo(f"{result['kept']} kept of {result['attempts']} attempts ({100 * result['success_rate']:.0f}% succeeded"
               f"{surplus}; failed at: {failures}); {result['demos_per_minute']:.1f} demos/min over "
               f"{result['seconds']:.0f} s")
    typer.echo(f"sources: {len(result['source_demos'])} demos" + (f", left out: {', '.join(result['left_out'])}"
                                                                    if result["left_out"] else ""))
    typer.echo(f"wrote {out}: {result['total_in_file']} generated demos")
    if report is not None:
        report.write_text(json.dumps(result, indent=2))
