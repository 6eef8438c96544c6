"""`takeover eval`: success rate of a checkpoint over fixed seeds, with videos."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from takeover.config import parse_assignments
from takeover.policies.seeds import EVAL_SEED_START

from .app import app, fail
from .vocabulary import limits, episodes_option, help_text, horizon_option, out_option


@app.command("eval")
def eval_(
    checkpoint: Path = typer.Argument(..., help="Checkpoint file, or a run folder (its best checkpoint)."),
    episodes: int = episodes_option(50, "episodes evaluated (fixed seeds, disjoint from collection seeds)."),
    workers: int = typer.Option(2, help="Worker processes (0: in this process).", callback=limits(min=0)),
    videos: int = typer.Option(0, "--videos", help=help_text("--videos", "the first N."), callback=limits(min=0)),
    out: Optional[Path] = out_option("the folder for eval.json and videos (default: the run folder or next to the "
                                     "checkpoint).", default=None),
    seed_start: int = typer.Option(EVAL_SEED_START, help="First evaluation seed.", callback=limits(min=0)),
    horizon: Optional[int] = horizon_option(),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Inference-time head option key=value (repeat), "
                                             "e.g. --set inference_scheduler=ddpm --set inference_steps=100."),
    sample: bool = typer.Option(False, "--sample", help="Draw actions from the head's distribution instead of "
                                "its mode (gmm: a random component; gaussian: mean + std noise)."),
):
    """Roll the policy out in the simulator rebuilt from the checkpoint's EnvSpec."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from takeover.policies.checkpoint import read_checkpoint, refuse_non_checkpoint
    from takeover.policies.evaluate import eval_seeds, evaluate, require_rendering, resolve_checkpoint
    from takeover.sim.spec import EnvSpec

    ckpt = resolve_checkpoint(checkpoint)
    refuse_non_checkpoint(ckpt)  # a demonstration file (or any other) is named before anything starts
    require_rendering(EnvSpec.from_json(read_checkpoint(ckpt)["env_spec"]), str(ckpt))  # before out/ is made
    overrides = parse_assignments(set_ or [])
    out = out or (checkpoint if checkpoint.is_dir() else ckpt.parent)
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file; give a folder (eval.json and videos go in it)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where a parent folder should be, no permission
        fail(f"--out {out}: cannot create the folder ({exc.strerror})")
    seeds = eval_seeds(episodes, seed_start)
    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[ok]} ok"),
                  TimeElapsedColumn()) as bar:
        tid = bar.add_task("eval", total=episodes, ok=0)
        counts = {"done": 0, "ok": 0}

        def progress(res):
            counts["done"] += 1
            counts["ok"] += res.success
            bar.update(tid, completed=counts["done"], ok=counts["ok"])

        report = evaluate(ckpt, seeds=seeds, workers=workers, video_dir=out / "videos" if videos else None,
                          videos=videos, progress=progress, max_steps=horizon,
                          overrides=overrides or None, sample=sample)
    tmp = out / ".eval.json.tmp"
    tmp.write_text(report.to_json())
    tmp.replace(out / "eval.json")
    settings = "".join(f" {k}={v}" for k, v in overrides.items()) + (" (sampled actions)" if sample else "")
    table = Table(title=f"{report.task}: {ckpt}{settings}")
    for col in ("episodes", "success rate", "95% CI (Wilson)", "mean length", "horizon"):
        table.add_column(col)
    table.add_row(str(report.episodes), f"{report.success_rate:.3f}", f"[{report.ci95[0]:.3f}, {report.ci95[1]:.3f}]",
                  f"{report.mean_length:.1f}", str(report.horizon))
    Console().print(table)
    for v in report.videos:
        typer.echo(f"video: {v}")
    typer.echo(f"wrote {out / 'eval.json'}")
