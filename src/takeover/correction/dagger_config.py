"""DaggerConfig: every setting of a DAgger run with its default, help and limits (the CLI's options
are built from it). Light on purpose: the CLI imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass

from takeover.config import config_field

from .beta import BetaSchedule
from .labellers import LABELLERS
from .run_config import SEED_BLOCK, RunConfig  # noqa: F401  (dagger.py and live.py read SEED_BLOCK here)

DAGGER_SEED_START = 3_000_000  # after collection (0...), evaluation (1,000,000...), selection (2,000,000...)


@dataclass
class DaggerConfig(RunConfig):
    out: str = config_field(help="Output: the run folder (data.hdf5, round_<k>/, dagger.json, report.md).")
    rounds: int = config_field(5, help="DAgger rounds after the initial policy.", min=1)
    episodes_per_round: int = config_field(10, help="Episodes per round: rolled out and labelled.", min=1)
    labeller: str = config_field("scripted", help="Who labels: 'scripted' (the expert labels every visited state; "
                                 "the beta-mixture drives), 'operator' (HG-DAgger: the scripted expert plays a person "
                                 "who takes over when the policy strays; only its steps are labels) or 'human' (live "
                                 "HG-DAgger in the window: a person takes over with a gamepad or the keyboard).",
                                 choices=tuple(LABELLERS))
    operator_threshold: float = config_field(0.5, help="Operator: take over when the policy's arm action differs from "
                                             "the expert's by more than this (L2, action units).", above=0)
    beta: str = config_field("exp:0.7", help="Probability the expert's action runs in round k: linear:R (1 - k/R), "
                             "exp:P (P^k) or const:B.")
    retrain_every: int = config_field(0, help="Live take-over: retrain on the aggregate in a background process after "
                                      "every N saved episodes and swap the new policy in between episodes (0: never).",
                                      min=0)
    seed: int = config_field(0, help="Seed of the beta coin flips, the retraining and the block of rollout starts "
                             "(seed s rolls out from 3,000,000 + s * 100,000).", min=0, max=9)

    def validate(self):
        super().validate()
        BetaSchedule.parse(self.beta)
        self.check_rollout_budget(self.rounds, self.episodes_per_round, "rounds")
