"""`takeover finetune`: demo-seeded RL fine-tuning of a behaviour-cloned policy (RLPD-style SAC or
DAPG-style PPO on a gaussian head; residual SAC on any head). Options, defaults and help come from `FinetuneConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from takeover.config import parse_assignments
from takeover.rl_finetune.config import FinetuneConfig

from .app import app, fail
from .options import config_options


@app.command()
@config_options(FinetuneConfig, decls={"out": ("--out", "-o")}, replace={"out": {"default": ...}})
def finetune(
    settings: dict,
    checkpoint: Path = typer.Argument(..., help="Checkpoint to start from (`takeover train`; rlpd/dapg: a gaussian head), "
                                                "or its run folder."),
    demos: Optional[List[Path]] = typer.Option(None, "--demos", help="Demonstration file seeding the demo buffer "
                                                                      "(repeat; `takeover dagger` files too)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Algorithm option key=value (repeat), e.g. "
                                                                 "--set utd=4 --set bc_weight=0.1 (see rl_finetune/rlpd.py, dapg.py, residual.py)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Fine-tune with RL; evaluations on the fixed seeds, checkpoints in OUT/checkpoints (best.pt)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from takeover.policies.evaluate import resolve_checkpoint
    from takeover.rl_finetune.run import Finetuner

    for path in demos or []:
        if not path.exists():
            fail(f"{path}: no such demonstration file")
    cfg = FinetuneConfig(**settings, checkpoint=str(resolve_checkpoint(checkpoint)), demos=[str(p) for p in demos or []],
                         algo_options=parse_assignments(set_ or []))
    algo, env_steps, out = cfg.algo, cfg.env_steps, Path(cfg.out)
    runner = Finetuner(cfg, resume=resume)
    with Progress(TextColumn(f"[bold]finetune {algo}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        tid = bar.add_task("env steps", total=env_steps, completed=runner.env_steps, status="")

        def progress(steps, record):
            status = bar.tasks[0].fields["status"]
            if record["kind"] == "eval":
                lo, hi = record["ci95"]
                status = f"eval success {record['success_rate']:.2f} [{lo:.2f}, {hi:.2f}]"
                if "sampled" in record:
                    status += f", sampled {record['sampled']['success_rate']:.2f}"
            bar.update(tid, completed=min(steps, env_steps), status=status)

        result = runner.run(progress=progress)
    start, final, best = result["start"], result["final"], result["best"]
    if start and final:
        typer.echo(f"success {start['success_rate']:.2f} at start -> {final['success_rate']:.2f} after "
                   f"{result['env_steps']} env steps (best {best['success_rate']:.2f} at {best['env_steps']}); "
                   f"{out}/checkpoints/best.pt, {out}/plots/learning_curve.png")
    else:
        typer.echo(f"done after {result['env_steps']} env steps; {out}/checkpoints/last_policy.pt")
