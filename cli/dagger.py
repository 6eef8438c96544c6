"""`takeover dagger`: DAgger rounds on a demonstration file (the scripted expert labels what the
learner visits)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, fail


@app.command()
def dagger(
    data: Path = typer.Argument(..., help="Demonstration HDF5 file (copied into OUT; never modified)."),
    policy: Path = typer.Option(..., "--policy", help="Run folder (its best checkpoint) or checkpoint of the round-0 learner."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: data.hdf5, round_<k>/, dagger.json, report.md."),
    expert: str = typer.Option("scripted", help="Who labels: 'scripted' (the task's scripted expert)."),
    rounds: int = typer.Option(5, help="DAgger rounds after the initial policy."),
    episodes_per_round: int = typer.Option(10, help="Episodes rolled out (and labelled) per round."),
    beta: str = typer.Option("exp:0.7", help="Probability the expert's action runs in round k: linear:R "
                             "(1 - k/R), exp:P (P^k) or const:B."),
    train_steps: Optional[int] = typer.Option(None, help="Gradient steps per retraining (default: the learner's run)."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Retrain from random weights on the aggregate "
                                      "(default: warm start from the previous round)."),
    eval_episodes: int = typer.Option(50, help="Evaluation episodes per round (fixed seeds)."),
    workers: int = typer.Option(2, help="Rollout worker processes."),
    seed: int = typer.Option(0, help="Seed of the beta coin flips and the retraining."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the beta-mixture of expert and learner, label every visited state with the expert,
    aggregate, retrain, evaluate; one folder per round and a report."""
    from takeover.correction.dagger import DaggerConfig, run_dagger

    if expert != "scripted":
        fail(f"--expert {expert!r}: this version labels with the scripted expert only (--expert scripted)")
    if train_steps is not None and train_steps < 1:
        fail(f"--train-steps must be >= 1, got {train_steps}")
    cfg = DaggerConfig(data=str(data), policy=str(policy), out=str(out), rounds=rounds,
                       episodes_per_round=episodes_per_round, beta=beta, workers=workers, eval_episodes=eval_episodes,
                       from_scratch=from_scratch, seed=seed,
                       train_overrides={"steps": train_steps} if train_steps is not None else {})
    state = run_dagger(cfg, resume=resume, say=lambda line: typer.echo(line, err=True))
    for r in state["rounds"]:
        typer.echo(f"round {r['round']}: beta {r['beta']:.3f}, {r['expert_labels']} expert labels, "
                   f"success {r['success_rate']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]")
    typer.echo(f"wrote {out / 'report.md'}")
