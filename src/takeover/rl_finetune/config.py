"""FinetuneConfig: every run-level setting of `takeover finetune` (the algorithm's own hyperparameters
are `RLPDConfig` / `DAPGConfig` at the top of rlpd.py / dapg.py, changed with --set key=value).
Import-light: no torch, so the CLI builds its options from it cheaply."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field

from .errors import FinetuneError


@dataclass
class FinetuneConfig(Config):
    error: ClassVar[type[Exception]] = FinetuneError
    checkpoint: str = config_field(help="Checkpoint to start from (`takeover train`; rlpd and dapg need a gaussian head).")
    demos: list = config_field(default_factory=list, help="Demonstration file(s) seeding the demo buffer "
                                                          "(DAgger take-over files too).")
    out: str = config_field("", help="Output: the run folder.")
    algo: str = config_field("rlpd", choices=("rlpd", "dapg", "residual"),
                             help="rlpd (off-policy SAC with a demo buffer, gaussian heads), dapg (PPO with a "
                                  "decaying demo term, gaussian heads) or residual (SAC on a small correction "
                                  "added to any frozen head's action).")
    env_steps: int = config_field(50_000, min=1, help="Environment steps to collect (budget).")
    reward: str = config_field("sparse", choices=("sparse", "shaped"),
                               help="sparse: 1 at success, which ends the episode; shaped: robosuite's shaped "
                                    "reward, success ends the episode with 1/(1-gamma).")
    horizon: int | None = config_field(None, min=1, help="Episode length limit for collection and evaluation "
                                                         "(default: the task's).")
    workers: int = config_field(2, min=0, help="Rollout worker processes (0: in this process).")
    episodes_per_round: int | None = config_field(None, min=1, help="Episodes per round: collected between updates "
                                                                   "(default: one per worker).")
    eval_every: int = config_field(5000, min=1, help="Env steps between evaluations (and one at start and end).")
    eval_episodes: int = config_field(20, min=0, help="Episodes per evaluation, on the fixed evaluation seeds.")
    eval_sample: bool = config_field(False, help="Evaluate also with actions drawn from the policy (what SAC and PPO "
                                                 "optimise) next to its mean action; best.pt still follows the mean.")
    max_minutes: float | None = config_field(None, above=0, help="Wall-clock budget; the run evaluates and stops "
                                                                  "after the round that passes it.")
    seed: int = config_field(0, min=0, help="Seed of the updates and the collection episodes.")
    threads: int = config_field(1, min=1, help="torch CPU threads of the learner.")
    algo_options: dict = config_field(default_factory=dict, help="Algorithm hyperparameters to change.")
