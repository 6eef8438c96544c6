"""DartConfig: every setting of a DART run with its default, help and limits (the CLI's options are
built from it; it is a JSON-able dataclass a benchmark can build directly). Light on purpose: the CLI
imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass

from takeover.policies.config_fields import check_limits, config_field

from .dagger_config import SEED_BLOCK
from .errors import CorrectionError

DART_SEED_START = 4_000_000  # after collection, evaluation (1,000,000), selection (2,000,000), DAgger (3,000,000)


@dataclass
class DartConfig:
    data: str = config_field(help="Demonstration HDF5 file (copied into the run folder; never modified).")
    policy: str = config_field(help="Run folder (its best checkpoint) or checkpoint of the iteration-0 learner.")
    out: str = config_field(help="Run folder: data.hdf5, iter_<k>/, dart.json, report.md.")
    iterations: int = config_field(3, help="DART iterations (noisy collection, retraining, refit) after the initial "
                                   "policy.", min=1)
    episodes: int = config_field(10, help="Noisy expert episodes per iteration (every step is a label).", min=1)
    noise: str = config_field("fit", help="'fit': the noise covariance is refitted each iteration to the learner's "
                              "error against the expert; otherwise fixed noise for every iteration: a std ('0.1'), "
                              "per-dimension stds or a .npy/.json std vector or covariance (as `collect --noise`).")
    target_trace: float = config_field(0.0, help="Scale each fitted covariance to this trace (the expected squared "
                                       "error, action units^2); 0: use the fit as it is.", min=0)
    workers: int = config_field(2, help="Rollout worker processes (0 or 1: in this process).", min=0)
    eval_episodes: int = config_field(50, help="Evaluation episodes per iteration (fixed seeds); 0 skips the "
                                      "evaluation (a study that evaluates chosen iterations itself).", min=0)
    from_scratch: bool = config_field(False, help="Retrain from random weights on the aggregate each iteration "
                                      "(default: warm start from the previous iteration's policy).")
    train_overrides: dict = config_field(default_factory=dict, help="TrainConfig fields for the retraining (steps, ...).")
    seed: int = config_field(0, help="Seed of the noise, the retraining and the block of rollout starts "
                             "(seed s rolls out from 4,000,000 + s * 100,000).", min=0, max=9)

    def __post_init__(self):
        from dataclasses import fields

        from takeover.policies.train_config import TrainConfig

        check_limits(self, CorrectionError)
        if self.iterations * self.episodes > SEED_BLOCK:
            raise CorrectionError(f"{self.iterations} iterations of {self.episodes} episodes exceed the {SEED_BLOCK} "
                                  f"rollout seeds of one run")
        known = {f.name for f in fields(TrainConfig)} - {"data", "out", "init_from"}
        unknown = sorted(set(self.train_overrides) - known)
        if unknown:
            raise CorrectionError(f"training option(s) {unknown} do not exist; known: {', '.join(sorted(known))}")

    @property
    def fitted(self) -> bool:
        return self.noise.strip() == "fit"
