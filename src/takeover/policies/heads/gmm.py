"""Gaussian-mixture head (robomimic BC-GMM): an MLP on the observation history gives K mixture
logits, means and stds over the whole flattened action chunk; trained by negative log-likelihood.

Evaluation: `predict(sample=False)` returns the mean of the most likely component; `sample=True`
picks a component and draws from it, with the std shrunk to `low_noise_std` when `low_noise_eval`
is on (robomimic's default: the mode choice stays random, the Gaussian jitter goes away).
"""
from __future__ import annotations

from dataclasses import dataclass

from takeover.config import config_field

from ..base import Policy
from ..config import HeadConfig
from ..encoders import mlp
from ..registry import register_head
from .distributions import MixtureParams, weighted_mean_nll


@dataclass
class GMMConfig(HeadConfig):
    head = "gmm"
    num_modes: int = config_field(5, min=1, help="Mixture components.")
    min_std: float = config_field(1e-4, above=0, help="Floor of each component's std (normalised units).")
    # robomimic squashes means with tanh because its actions live in [-1, 1]. Ours are normalised:
    # None = tanh only under "minmax" (bounded); under "zscore" a tanh would cap means at ±1 std.
    tanh_means: bool | None = config_field(None, help="Squash means with tanh (default: only under minmax).")
    low_noise_eval: bool = config_field(True, help="Sampling at evaluation shrinks the std to low_noise_std.")
    low_noise_std: float = config_field(1e-4, above=0, help="The std of low-noise evaluation samples.")


@register_head
class GMMPolicy(Policy):
    config_class = GMMConfig

    def __init__(self, config: GMMConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        self.chunk_dim = config.action_horizon * self.action_dim
        tanh = config.tanh_means if config.tanh_means is not None else config.action_norm == "minmax"
        self.params = MixtureParams(config.num_modes, self.chunk_dim, config.min_std, tanh)
        self.net = mlp(self.feature_dim * config.obs_horizon, config.hidden_dims, self.params.raw_size)

    def _distribution(self, features):
        return self.params(self.net(features.flatten(1)))

    def compute_loss(self, features, actions, weights):
        dist = self._distribution(features)
        target = actions.flatten(1)
        weights = weights.repeat_interleave(self.action_dim, dim=1)
        loss = weighted_mean_nll(dist, target, weights)
        mse = (((dist.mode() - target) ** 2) * weights).sum() / weights.sum().clamp(min=1)
        return {"loss": loss, "mse": mse.detach(), "std": dist.stds.mean().detach()}

    def predict(self, features, sample=False):
        dist = self._distribution(features)
        if sample:
            out = dist.sample(self.config.low_noise_std if self.config.low_noise_eval else None)
        else:
            out = dist.mode()
        return out.view(-1, self.config.action_horizon, self.action_dim)
