"""DaggerConfig: every setting of a DAgger run with its default, help and limits (the CLI's options
are built from it). Light on purpose: the CLI imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass, fields

from takeover.policies.config_fields import check_limits, config_field
from takeover.policies.train_config import TrainConfig

from .beta import BetaSchedule
from .errors import CorrectionError

DAGGER_SEED_START = 3_000_000  # after collection (0...), evaluation (1,000,000...), selection (2,000,000...)
SEED_BLOCK = 100_000  # rollout starts per run seed: DAGGER_SEED_START + seed * SEED_BLOCK + ...


@dataclass
class DaggerConfig:
    data: str = config_field(help="Demonstration HDF5 file (copied into the run folder; never modified).")
    policy: str = config_field(help="Run folder (its best checkpoint) or checkpoint of the round-0 learner.")
    out: str = config_field(help="Run folder: data.hdf5, round_<k>/, dagger.json, report.md.")
    rounds: int = config_field(5, help="DAgger rounds after the initial policy.", min=1)
    episodes_per_round: int = config_field(10, help="Episodes rolled out (and labelled) per round.", min=1)
    labeller: str = config_field("scripted", help="Who labels: 'scripted' (the expert labels every visited state; "
                                 "the beta-mixture drives), 'operator' (HG-DAgger: the scripted expert plays a person "
                                 "who takes over when the policy strays; only its steps are labels) or 'human' (live "
                                 "HG-DAgger in the window: a person takes over with a gamepad or the keyboard).",
                                 choices=("scripted", "operator", "human"))
    operator_threshold: float = config_field(0.5, help="Operator: take over when the policy's arm action differs from "
                                             "the expert's by more than this (L2, action units).", above=0)
    beta: str = config_field("exp:0.7", help="Probability the expert's action runs in round k: linear:R (1 - k/R), "
                             "exp:P (P^k) or const:B.")
    workers: int = config_field(2, help="Rollout worker processes (0 or 1: in this process).", min=0)
    eval_episodes: int = config_field(50, help="Evaluation episodes per round (fixed seeds); 0 skips the evaluation "
                                      "(a study that evaluates chosen rounds itself).", min=0)
    from_scratch: bool = config_field(False, help="Retrain from random weights on the aggregate each round "
                                      "(default: warm start from the previous round's policy).")
    train_overrides: dict = config_field(default_factory=dict, help="TrainConfig fields for the retraining (steps, ...).")
    retrain_every: int = config_field(0, help="Live take-over: retrain on the aggregate in a background process after "
                                      "every N saved episodes and swap the new policy in between episodes (0: never).",
                                      min=0)
    seed: int = config_field(0, help="Seed of the beta coin flips, the retraining and the block of rollout starts "
                             "(seed s rolls out from 3,000,000 + s * 100,000).", min=0, max=9)

    def __post_init__(self):
        check_limits(self, CorrectionError)
        BetaSchedule.parse(self.beta)
        if self.rounds * self.episodes_per_round > SEED_BLOCK:
            raise CorrectionError(f"{self.rounds} rounds of {self.episodes_per_round} episodes exceed the {SEED_BLOCK} "
                                  f"rollout seeds of one run")
        known = {f.name for f in fields(TrainConfig)} - {"data", "out", "init_from"}
        unknown = sorted(set(self.train_overrides) - known)
        if unknown:
            raise CorrectionError(f"training option(s) {unknown} do not exist; known: {', '.join(sorted(known))}")
