"""RunConfig: the settings every correction run (DAgger, DART, ...) shares: its inputs, its folder,
the rollout workers, the per-round evaluation, how it retrains and its seed. A method's config derives
from it and adds its own fields (`DaggerConfig`, `DartConfig`). Light on purpose: the CLI imports it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field
from takeover.policies.train_config import TrainConfig

from .errors import CorrectionError

SEED_BLOCK = 100_000  # rollout starts per run seed: <method's seed start> + seed * SEED_BLOCK + ...


@dataclass
class RunConfig(Config):
    error: ClassVar[type[Exception]] = CorrectionError
    data: str = config_field(help="Demonstration HDF5 file (copied into the run folder; never modified).")
    policy: str = config_field(help="Run folder (its best checkpoint) or checkpoint of the round-0 learner.")
    out: str = config_field(help="Output: the run folder (data.hdf5, one folder per round, the run's JSON "
                                    "state, report.md).")
    workers: int = config_field(2, help="Rollout worker processes (0 or 1: in this process).", min=0)
    eval_episodes: int = config_field(50, help="Evaluation episodes per round (fixed seeds); 0 skips the evaluation "
                                      "(a study that evaluates chosen rounds itself).", min=0)
    from_scratch: bool = config_field(False, help="Retrain from random weights on the aggregate each round "
                                      "(default: warm start from the previous round's policy).")
    train_overrides: dict = config_field(default_factory=dict, help="TrainConfig fields for the retraining (steps, ...).")
    seed: int = config_field(0, help="Seed of the run's randomness and of its block of rollout starts "
                             "(seed s rolls out from the method's first seed + s * 100,000).", min=0, max=9)

    def validate(self):
        TrainConfig.check_retrain_overrides(self.train_overrides, CorrectionError)

    def check_rollout_budget(self, rounds: int, episodes: int, unit: str):
        """Refuse more rollout starts than one run's seed block holds."""
        if rounds * episodes > SEED_BLOCK:
            raise CorrectionError(f"{rounds} {unit} of {episodes} episodes exceed the {SEED_BLOCK} "
                                  f"rollout seeds of one run")
