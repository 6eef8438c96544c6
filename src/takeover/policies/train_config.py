"""TrainConfig: every setting of a training run, with its default, help text and limits (the one
source the `takeover train` options are built from). Import-light: no torch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field

from .errors import PolicyError
from .seeds import SELECTION_SEED_START


@dataclass
class TrainConfig(Config):
    error: ClassVar[type[Exception]] = PolicyError
    data: str = config_field(help="Demonstration HDF5 file.")
    out: str = config_field(help="Output: the run folder.")
    head: str = config_field("gaussian", help="Action head.")
    head_options: dict = config_field(default_factory=dict, help="Head config fields to change, e.g. {'num_modes': 5}.")
    obs_keys: list | None = config_field(None, help="Observation keys to use; default: eef pose, gripper, object "
                                                    "(robomimic's low-dim set).")
    image_encoder: dict = config_field(default_factory=dict, help="Camera encoder fields to change "
                                       "(policies/vision.EncoderConfig), e.g. {'trunk': 'resnet18', 'crop': 0.9}.")
    steps: int = config_field(5000, help="Gradient steps (budget).", min=1)
    max_minutes: float | None = config_field(None, help="Wall-clock budget; training stops and evaluates when reached.",
                                             above=0)
    batch_size: int = config_field(256, help="Samples per gradient step.", min=1)
    lr: float | None = config_field(None, help="Learning rate (default: the head's).", above=0)
    weight_decay: float = config_field(1e-4, help="AdamW weight decay.", min=0)
    warmup_steps: int = config_field(200, help="Steps of linear learning-rate warm-up.", min=0)
    grad_clip: float = config_field(10.0, help="Gradient norm clip.", above=0)
    ema_decay: float | None = config_field(0.995, help="EMA decay of the evaluated weights (None: no EMA).",
                                           min=0, below=1)
    log_every: int = config_field(100, help="Steps between training-loss log lines.", min=1)
    valid_every: int = config_field(500, help="Steps between validation losses.", min=1)
    eval_every: int = config_field(2500, help="Steps between rollout evaluations (and one at the end).", min=1)
    eval_episodes: int = config_field(20, help="Episodes per rollout evaluation (0: none; best = last).", min=0)
    eval_workers: int = config_field(2, help="Worker processes for rollout evaluation.", min=0)
    eval_seed_start: int = config_field(SELECTION_SEED_START, min=0,
                                        help="First seed of checkpoint selection; final evaluation uses others.")
    checkpoint_every: int = config_field(1000, help="Steps between saves of the training state (last.pt).", min=1)
    seed: int = config_field(0, help="Seed of the weights and of the batches.", min=0)
    device: str = config_field("auto", help="Torch device: auto (CUDA when present), cpu, cuda, cuda:1.")
    threads: int | None = config_field(None, help="torch CPU threads (default: torch's).", min=1)
    init_from: str | None = config_field(None, help="Warm start from this checkpoint's weights (same head and keys), "
                                                    "with a fresh optimiser and schedule; the normalisation is fitted to "
                                                    "this run's data.")
    weighting: str = config_field("none", choices=("none", "iwr", "sirius"),
                                  help="Take-over episodes: none (only a person's steps are labels), iwr (the same, "
                                       "and intervention steps make up half of each batch) or sirius (every step a "
                                       "label; interventions x2, the 15 robot steps before a take-over x0).")
    quaternions: str = config_field("matrix", choices=("matrix", "raw"),
                                    help="matrix: quaternion observations enter as rotation matrices (sign-free; "
                                         "robosuite flips q to -q near w=0); raw: as stored.")

    #: fields a retraining inside a correction run may change (the run sets data, out and the warm start)
    RETRAIN_FIXED: ClassVar[tuple[str, ...]] = ("data", "out", "init_from")

    @classmethod
    def check_retrain_overrides(cls, overrides: dict, error: type[Exception]):
        cls.check_keys(overrides, exclude=cls.RETRAIN_FIXED, what="retraining", error=error)
