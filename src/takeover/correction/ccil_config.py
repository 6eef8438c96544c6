"""CcilConfig: every setting of a CCIL augmentation with its default, help and limits (the CLI's options
are built from it; JSON via to_dict / from_dict). Light on purpose: the CLI imports it at start-up.

Distances and errors (epsilon, max_model_error, the report's one-step errors) are L2 norms in
normalised observation units: each dimension of the dynamics' observation vector divided by its
standard deviation over the demonstrations, so one threshold means the same on every task.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field

from .errors import CorrectionError


@dataclass
class CcilConfig(Config):
    error: ClassVar[type[Exception]] = CorrectionError
    obs_keys: list | None = config_field(None, help="Low-dim observation keys the dynamics model predicts and the "
                                         "output holds (default: the training default, eef pose, gripper, object).")
    labels: str = config_field("both", choices=("both", "backtrack", "disturbed"),
                               help="Which corrective labels: BackTrack (a state from which the expert's action leads "
                                    "to the expert's state), DisturbedAction (a noisy action from a state that leads "
                                    "to the expert's next state), or both.")
    lipschitz: str = config_field("spectral", choices=("spectral", "soft"),
                                  help="Lipschitz bound of the dynamics model: spectral (each layer's spectral norm "
                                       "clipped so their product is at most K) or soft (a penalty on sampled local "
                                       "Lipschitz ratios above K).")
    lipschitz_k: float = config_field(6.0, help="Lipschitz bound K of the residual network (normalised units).",
                                      above=0)
    soft_weight: float = config_field(1.0, help="Soft mode: weight of the local-Lipschitz penalty.", min=0)
    soft_radius: float = config_field(0.1, help="Soft mode: std of the sampled input perturbations "
                                      "(normalised units).", above=0)
    hidden: int = config_field(256, help="Width of the dynamics MLP's hidden layers.", min=8)
    layers: int = config_field(3, help="Linear layers of the dynamics MLP.", min=2, max=8)
    epochs: int = config_field(300, help="Training epochs of the dynamics model.", min=1)
    batch_size: int = config_field(256, help="Dynamics training batch size.", min=1)
    lr: float = config_field(1e-3, help="Dynamics learning rate (Adam).", above=0)
    valid_fraction: float = config_field(0.1, help="Transitions held out to measure the model's one-step error.",
                                         min=0, below=1)
    solver: str = config_field("newton", choices=("newton", "fixed-point"),
                               help="How s_G = s* - f(s_G, a) is solved: Newton's method or fixed-point iteration.")
    solver_iters: int = config_field(20, help="Solver iterations.", min=1)
    solver_tol: float = config_field(1e-4, help="A solution counts when |s_G + f(s_G, a) - s*| is below this "
                                     "(normalised units).", above=0)
    epsilon: float = config_field(1.0, help="Keep a label only if its state is closer than this to the expert's "
                                  "(normalised units).", above=0)
    max_model_error: float = config_field(0.5, help="Keep a label only if the model's one-step error at its expert "
                                          "transition is below this (normalised units).", above=0)
    noise_scale: float = config_field(0.1, help="DisturbedAction: std of the Gaussian noise added to the expert's "
                                      "action (action units; the result is clipped to [-1, 1]).", above=0)
    disturbed_per_step: int = config_field(1, help="DisturbedAction labels tried per expert step.", min=1)
    history: int = config_field(2, help="Steps per written label episode: the label last, before it the expert's "
                                "previous observations shifted by the label's offset (observation history; not "
                                "training targets). 1: the label alone.", min=1, max=16)
    device: str = config_field("cpu", help="torch device for the dynamics model.")
    seed: int = config_field(0, help="Seed of the split, the model's initialisation and the action noise.", min=0)

    def validate(self):
        if self.obs_keys is not None:
            self.obs_keys = list(self.obs_keys)
            if not self.obs_keys:
                raise CorrectionError("CcilConfig.obs_keys is empty; give at least one low-dim key or leave it unset")
