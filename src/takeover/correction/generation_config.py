"""GenerateConfig: the settings of object-centric demo generation (correction/generation.py), with
their defaults, help and limits: the one config of the library (`generate(src, out, GenerateConfig(...))`)
and of `takeover augment --method generate`, whose options are built from it. Light on purpose: the CLI
imports it at start-up."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field

from .errors import CorrectionError

SELECTIONS = ("nearest", "random")
# generated episodes' seeds start here: away from collection (0, 1, ...), evaluation (policies/seeds.py,
# 1,000,000), checkpoint selection (2,000,000) and DAgger (3,000,000): no policy is scored on a start it
# trained on
FIRST_SEED = 4_000_000


@dataclass
class GenerateConfig(Config):
    error: ClassVar[type[Exception]] = CorrectionError
    episodes: int | None = config_field(None, help="Episode budget: successful demos to write (required).", min=1)
    select: str = config_field("nearest", choices=SELECTIONS, help="Source segment per subtask: 'nearest' "
                               "(reference-object pose) or 'random'.")
    nearest_k: int = config_field(3, help="With --select nearest: pick at random among this many nearest sources.",
                                  min=1)
    action_noise: float = config_field(0.05, help="Std of Gaussian noise on executed arm actions.", min=0)
    workers: int = config_field(1, help="Worker processes (0 or 1: this process).", min=0)
    bridge_steps: int = config_field(5, help="Minimum interpolation steps into each segment.", min=1)
    settle_steps: int = config_field(15, help="After the last segment, steps to wait for the task's success.",
                                     min=0)
    max_attempts: int | None = config_field(None, help="Give up after this many attempts (default: 20 x episodes).",
                                            min=1)
    first_seed: int = config_field(FIRST_SEED, help="Seed of the first new episode (apart from evaluation and "
                                   "DAgger seeds).", min=0)
    subtask_override: str | None = config_field(None, help='JSON file {"demo_3": [end step per subtask]} '
                                                "correcting the found subtask boundaries.")

    def validate(self):
        if self.episodes is None:
            raise CorrectionError("generate needs -n N (episodes: the number of demos to generate)")
