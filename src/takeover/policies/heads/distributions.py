"""Output distributions shared by heads: a diagonal Gaussian mixture over a flat action vector.

`MixtureParams` turns a network's raw output into mixture logits, means and stds; `GaussianMixture`
scores targets (with a per-dimension weight so padded steps drop out) and draws actions. A single
diagonal Gaussian is the one-component case, so heads that offer "gaussian" reuse the same code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class MixtureParams(nn.Module):
    """Raw (…, K + 2·K·D) -> GaussianMixture over D dims (robomimic: softplus std + min std)."""

    def __init__(self, num_modes: int, dim: int, min_std: float = 1e-4, tanh_means: bool = False):
        super().__init__()
        self.num_modes, self.dim = num_modes, dim
        self.min_std, self.tanh_means = min_std, tanh_means

    @property
    def raw_size(self) -> int:
        return self.num_modes * (1 + 2 * self.dim)

    def forward(self, raw: torch.Tensor) -> GaussianMixture:
        K, D = self.num_modes, self.dim
        logits, means, scales = raw.split([K, K * D, K * D], dim=-1)
        means = means.unflatten(-1, (K, D))
        if self.tanh_means:
            means = torch.tanh(means)
        stds = F.softplus(scales.unflatten(-1, (K, D))) + self.min_std
        return GaussianMixture(logits, means, stds)


@dataclass
class GaussianMixture:
    logits: torch.Tensor  # (…, K)
    means: torch.Tensor  # (…, K, D)
    stds: torch.Tensor  # (…, K, D)

    def log_prob(self, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """(…, D) -> (…,). Dimensions with weight 0 are marginalised out (exact for a diagonal
        mixture), so padded steps of a chunk neither help nor hurt."""
        z = (target.unsqueeze(-2) - self.means) / self.stds
        per_dim = -0.5 * z * z - self.stds.log() - _LOG_SQRT_2PI  # (…, K, D)
        if weights is not None:
            per_dim = per_dim * weights.unsqueeze(-2)
        return torch.logsumexp(F.log_softmax(self.logits, -1) + per_dim.sum(-1), dim=-1)

    def mode(self) -> torch.Tensor:
        """Mean of the most likely component (…, D)."""
        best = self.logits.argmax(-1)
        return self.means.gather(-2, best[..., None, None].expand(*best.shape, 1, self.means.shape[-1])).squeeze(-2)

    def sample(self, std_override: float | None = None) -> torch.Tensor:
        """Pick a component from the logits, then draw from it; `std_override` replaces every std
        (robomimic's low-noise evaluation keeps the component choice but nearly drops the noise)."""
        k = torch.distributions.Categorical(logits=self.logits).sample()
        idx = k[..., None, None].expand(*k.shape, 1, self.means.shape[-1])
        mean = self.means.gather(-2, idx).squeeze(-2)
        std = self.stds.gather(-2, idx).squeeze(-2) if std_override is None else torch.full_like(mean, std_override)
        return mean + std * torch.randn_like(mean)


def weighted_mean_nll(dist: GaussianMixture, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood per weighted action dimension. `weights` (…, D) >= 0: dimensions of
    weight 0 are marginalised out of the (joint) likelihood; each sample's NLL counts with the mean
    weight of its other dimensions, and the sum is divided by the sum of the weights. With 0/1
    weights that is the NLL per valid dimension; a sample of weight 0 adds nothing to either side."""
    present = (weights > 0).to(weights.dtype)
    sample_weight = weights.sum(-1) / present.sum(-1).clamp(min=1)
    nll = -dist.log_prob(target, present)
    return (sample_weight * nll).sum() / weights.sum().clamp(min=1)
