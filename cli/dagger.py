"""`takeover dagger`: DAgger rounds on a demonstration file (the scripted expert labels what the
learner visits). Options, defaults and help come from `DaggerConfig`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from takeover.correction.dagger_config import DaggerConfig
from takeover.policies.train_config import TrainConfig

from .app import app, fail
from .options import config_argument, config_option, limits


@app.command()
def dagger(
    data: Path = config_argument(DaggerConfig, "data"),
    policy: Path = config_option(DaggerConfig, "policy", "--policy"),
    out: Path = config_option(DaggerConfig, "out", "--out", "-o"),
    expert: str = typer.Option("scripted", help="Who labels: 'scripted' (the task's scripted expert labels every "
                               "visited state) or 'human' (HG-DAgger: takes over where the policy strays)."),
    device: str = typer.Option("scripted-operator", help="With --expert human: who is at the take-over control; "
                               "'scripted-operator' (the scripted expert playing a person, headless)."),
    operator_threshold: float = config_option(DaggerConfig, "operator_threshold"),
    rounds: int = config_option(DaggerConfig, "rounds"),
    episodes_per_round: int = config_option(DaggerConfig, "episodes_per_round"),
    beta: str = config_option(DaggerConfig, "beta"),
    train_steps: Optional[int] = typer.Option(None, callback=limits(min=1),
                                              help="Gradient steps per retraining (default: the learner's run)."),
    weighting: str = config_option(TrainConfig, "weighting"),
    from_scratch: bool = config_option(DaggerConfig, "from_scratch", "--from-scratch"),
    eval_episodes: int = config_option(DaggerConfig, "eval_episodes"),
    workers: int = config_option(DaggerConfig, "workers"),
    seed: int = config_option(DaggerConfig, "seed"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out where it stopped."),
):
    """Roll out the beta-mixture of expert and learner, label every visited state with the expert,
    aggregate, retrain, evaluate; one folder per round and a report."""
    from takeover.correction.dagger import run_dagger

    if expert not in ("scripted", "human"):
        fail(f"--expert {expert!r}: expected 'scripted' or 'human'")
    if expert == "human" and device != "scripted-operator":
        fail(f"--device {device!r}: live take-over with a gamepad or keyboard is not in this version; "
             f"--device scripted-operator runs HG-DAgger with the simulated operator")
    cfg = DaggerConfig(data=str(data), policy=str(policy), out=str(out), rounds=rounds,
                       episodes_per_round=episodes_per_round, beta=beta, workers=workers, eval_episodes=eval_episodes,
                       from_scratch=from_scratch, seed=seed,
                       labeller="operator" if expert == "human" else "scripted", operator_threshold=operator_threshold,
                       train_overrides={"weighting": weighting, **({"steps": train_steps} if train_steps else {})})
    state = run_dagger(cfg, resume=resume, say=lambda line: typer.echo(line, err=True))
    for r in state["rounds"]:
        typer.echo(f"round {r['round']}: beta {r['beta']:.3f}, {r['expert_labels']} expert labels, "
                   f"success {r['success_rate']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]")
    typer.echo(f"wrote {out / 'report.md'}")
