"""DartConfig: every setting of a DART run with its default, help and limits (the CLI's options are
built from it; it is a JSON-able dataclass a benchmark can build directly). Light on purpose: the CLI
imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass

from takeover.config import config_field

from .run_config import RunConfig

DART_SEED_START = 4_000_000  # after collection, evaluation (1,000,000), selection (2,000,000), DAgger (3,000,000)


@dataclass
class DartConfig(RunConfig):
    policy: str = config_field(help="Run folder (its best checkpoint) or checkpoint of the iteration-0 learner.")
    out: str = config_field(help="Output: the run folder (data.hdf5, iter_<k>/, dart.json, report.md).")
    iterations: int = config_field(3, help="DART iterations (noisy collection, retraining, refit) after the initial "
                                   "policy.", min=1)
    episodes: int = config_field(10, help="Episodes per round: noisy expert episodes per iteration (every step is a "
                                          "label).", min=1)
    noise: str = config_field("fit", help="'fit': the noise covariance is refitted each iteration to the learner's "
                              "error against the expert; otherwise fixed noise for every iteration: a std ('0.1'), "
                              "per-dimension stds or a .npy/.json std vector or covariance (as `collect --noise`).")
    target_trace: float = config_field(0.0, help="Scale each fitted covariance to this trace (the expected squared "
                                       "error, action units^2); 0: use the fit as it is.", min=0)
    seed: int = config_field(0, help="Seed of the noise, the retraining and the block of rollout starts "
                             "(seed s rolls out from 4,000,000 + s * 100,000).", min=0, max=9)

    def validate(self):
        super().validate()
        self.check_rollout_budget(self.iterations, self.episodes, "iterations")

    @property
    def fitted(self) -> bool:
        return self.noise.strip() == "fit"
