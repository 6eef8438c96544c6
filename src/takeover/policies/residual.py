"""A frozen base policy plus a learnt residual: residual policy learning (Silver et al. 2018; Policy
Decorator, ResiP) for any head, chunked and recurrent ones included.

    base_action = base.act(obs)                       the head's own history and chunk queue, unchanged
    residual    = tanh(mean(normalised obs, base_action))
    executed    = clip(base_action + scale * residual, -1, 1)

The residual network's last layer starts at zero, so before any training `act` returns exactly what
the base returns: fine-tuning can only start from the base's own behaviour. The network reads the
low-dim observation (normalised with the base's statistics) and the base's proposal, so the same
correction works whatever produced the proposal; the base is never differentiated through.

A residual policy is a standard checkpoint: the base's config, shapes and weights as usual, plus a
`residual` entry (its config as JSON and its weights), so `takeover eval` and `takeover dagger` load
it as they load any policy (`checkpoint.load_checkpoint` wraps the base).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from takeover.config import Config, config_field

from .encoders import mlp
from .errors import PolicyError

LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0


@dataclass
class ResidualConfig(Config):
    error: ClassVar[type[Exception]] = PolicyError
    scale: float = config_field(0.2, above=0, help="Largest correction per action dimension, in action units.")
    hidden: tuple = config_field((256, 256), help="Hidden widths of the residual network.")

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "ResidualConfig":
        return cls.from_dict(json.loads(text))


class ResidualNet(nn.Module):
    """(normalised obs features, base action) -> pre-tanh mean and log-std of the residual."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: tuple):
        super().__init__()
        self.trunk = mlp(obs_dim + action_dim, tuple(hidden[:-1]), hidden[-1], layer_norm=True)
        self.mean = nn.Linear(hidden[-1], action_dim)
        self.log_std = nn.Linear(hidden[-1], action_dim)
        for layer in (self.mean, self.log_std):  # zero residual (and a small, equal std) at the start
            nn.init.zeros_(layer.weight)
        nn.init.zeros_(self.mean.bias)
        nn.init.constant_(self.log_std.bias, -1.0)

    def forward(self, features: torch.Tensor, base_action: torch.Tensor):
        h = torch.relu(self.trunk(torch.cat([features, base_action], -1)))
        return self.mean(h), self.log_std(h).clamp(LOG_STD_MIN, LOG_STD_MAX)


class ResidualPolicy(nn.Module):
    """Acts as the base does, plus `scale * tanh(mean)`. Everything else (shapes, config, normaliser,
    observation flattening) is the base's: attributes this class lacks are read from the base."""

    def __init__(self, base: nn.Module, config: ResidualConfig | None = None):
        super().__init__()
        if base.shapes.obs_dim == 0:
            raise PolicyError("a residual reads the low-dim observation; this policy has none (camera images only)")
        self.base = base.requires_grad_(False)
        self.residual_config = config or ResidualConfig()
        self.net = ResidualNet(base.obs_features.out_dim, base.action_dim, self.residual_config.hidden)
        self.use_residual = True  # off: act exactly as the base (what collection does on non-residual steps)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("base"), name)

    @property
    def scale(self) -> float:
        return self.residual_config.scale

    def features(self, flat_obs: torch.Tensor) -> torch.Tensor:
        """Raw flat observations (B, D) -> the normalised vector the residual (and a critic) reads."""
        return self.base.normalize_obs(flat_obs)

    def distribution(self, flat_obs: torch.Tensor, base_action: torch.Tensor):
        """-> pre-tanh mean and std of the residual, (B, A) each."""
        mean, log_std = self.net(self.features(flat_obs), base_action)
        return mean, log_std.exp()

    def execute(self, base_action: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return (base_action + self.scale * residual).clamp(-1.0, 1.0)

    def reset(self):
        self.base.reset()

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        base_action = np.asarray(self.base.act(obs), np.float32)
        if not self.use_residual:
            return base_action
        flat = self.base.flatten_obs(obs)[None]
        base_t = torch.from_numpy(base_action)[None]
        mean, _ = self.distribution(flat, base_t)
        return self.execute(base_t, torch.tanh(mean))[0].numpy()

    # ----- checkpoint ------------------------------------------------------------------------------
    def base_state_dict(self) -> dict:
        return self.base.state_dict()

    def checkpoint_extras(self) -> dict:
        return {"residual": {"config": self.residual_config.to_json(),
                             "state_dict": {k: v.detach().cpu() for k, v in self.net.state_dict().items()}}}

    @classmethod
    def from_checkpoint(cls, base: nn.Module, entry: dict) -> "ResidualPolicy":
        policy = cls(base, ResidualConfig.from_json(entry["config"]))
        policy.net.load_state_dict(entry["state_dict"])
        return policy
