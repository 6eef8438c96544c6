"""Diagonal Gaussian head: an MLP on the observation history gives a mean and a state-dependent std
for the whole action chunk; trained by negative log-likelihood, the mean is taken at evaluation."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from takeover.config import config_field

from ..base import Policy
from ..config import HeadConfig
from ..encoders import mlp
from ..registry import register_head


@dataclass
class GaussianConfig(HeadConfig):
    head = "gaussian"
    min_std: float = config_field(1e-3, above=0, help="Floor of the std (normalised units).")
    max_std: float = config_field(10.0, above=0, help="Ceiling of the std (normalised units).")


@register_head
class GaussianPolicy(Policy):
    config_class = GaussianConfig

    def __init__(self, config: GaussianConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        self.chunk_dim = config.action_horizon * self.action_dim
        self.net = mlp(self.feature_dim * config.obs_horizon, config.hidden_dims, 2 * self.chunk_dim)

    def _distribution(self, features: torch.Tensor):
        out = self.net(features.flatten(1))
        mean, log_std = out.chunk(2, dim=-1)
        c = self.config
        std = log_std.clamp(math.log(c.min_std), math.log(c.max_std)).exp()
        return mean, std

    def compute_loss(self, features, actions, weights):
        mean, std = self._distribution(features)
        target = actions.flatten(1)
        nll = -torch.distributions.Normal(mean, std).log_prob(target)  # (B, Ta*A)
        weights = weights.repeat_interleave(self.action_dim, dim=1)
        loss = (nll * weights).sum() / weights.sum().clamp(min=1)
        mse = (((mean - target) ** 2) * weights).sum() / weights.sum().clamp(min=1)
        return {"loss": loss, "mse": mse.detach(), "std": std.mean().detach()}

    def predict(self, features, sample=False):
        mean, std = self._distribution(features)
        out = mean + std * torch.randn_like(std) if sample else mean
        return out.view(-1, self.config.action_horizon, self.action_dim)
