"""Conditional VAE head (robomimic BC-VAE / ACT style, with MLPs): an encoder q(z | obs, chunk), an
N(0, I) prior, and a decoder p(chunk | obs, z) scored by L1 or L2 reconstruction.

Loss scale: reconstruction is summed over a sample's valid action dimensions and the KL is counted
once per sample, so `kl_weight = 1` is the evidence lower bound of a unit-scale Laplace (L1) or
unit-variance Gaussian (L2, hence the 0.5) decoder; both are then divided by the number of valid
action dimensions in the batch so the loss has the per-dimension size of the other heads. In those
terms ACT's "KL weight 10 on a per-element mean L1" is 10 / (Ta·A) per sample: 1.4 for one 7-D
action, 0.007 for its 100×14 chunks. We default to 1 (robomimic's value, and close to ACT's for
single-step 7-D actions); lower it for long chunks if the latent goes unused.

At evaluation `predict(sample=False)` decodes z = 0 (the prior mean, as ACT does); `sample=True`
draws z ~ N(0, I).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from takeover.config import config_field

from ..base import Policy
from ..config import HeadConfig
from ..encoders import mlp
from ..registry import register_head


@dataclass
class CVAEConfig(HeadConfig):
    head = "cvae"
    # ACT's size; dimensions the data does not need collapse to the prior
    latent_dim: int = config_field(32, min=1, help="Size of the style latent.")
    kl_weight: float = config_field(1.0, min=0, help="Weight of the KL term.")
    reconstruction: str = config_field("l1", choices=("l1", "l2"), help="Reconstruction loss: l1 (ACT) or l2.")


@register_head
class CVAEPolicy(Policy):
    config_class = CVAEConfig

    def __init__(self, config: CVAEConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        self.chunk_dim = config.action_horizon * self.action_dim
        obs_in = self.feature_dim * config.obs_horizon
        # the encoder sees the chunk with non-target steps (padding, non-labels) zeroed plus the step mask
        self.encoder_net = mlp(obs_in + self.chunk_dim + config.action_horizon, config.hidden_dims, 2 * config.latent_dim)
        self.decoder_net = mlp(obs_in + config.latent_dim, config.hidden_dims, self.chunk_dim)

    def _decode(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.decoder_net(torch.cat([obs, z], dim=-1))

    def compute_loss(self, features, actions, weights):
        obs = features.flatten(1)
        present = (weights > 0).to(weights.dtype)  # steps that are targets
        sample_weight = weights.sum(1) / present.sum(1).clamp(min=1)  # KL counts once per sample, at this weight
        weights = weights.repeat_interleave(self.action_dim, dim=1)
        target = actions.flatten(1) * present.repeat_interleave(self.action_dim, dim=1)
        mu, log_var = self.encoder_net(torch.cat([obs, target, present], dim=-1)).chunk(2, dim=-1)
        log_var = log_var.clamp(-12.0, 6.0)
        z = mu + (0.5 * log_var).exp() * torch.randn_like(mu)
        recon = self._decode(obs, z)
        err = (recon - target).abs() if self.config.reconstruction == "l1" else 0.5 * (recon - target) ** 2
        kl = 0.5 * (mu ** 2 + log_var.exp() - 1.0 - log_var).sum(-1)  # KL(q || N(0, I)) per sample
        n_dims = weights.sum().clamp(min=1)
        recon_loss = (err * weights).sum() / n_dims
        kl_loss = (kl * sample_weight).sum() / n_dims
        return {"loss": recon_loss + self.config.kl_weight * kl_loss, "recon": recon_loss.detach(),
                "kl": ((kl * sample_weight).sum() / sample_weight.sum().clamp(min=1e-12)).detach()}

    def predict(self, features, sample=False):
        obs = features.flatten(1)
        shape = (obs.shape[0], self.config.latent_dim)
        z = torch.randn(shape, device=obs.device) if sample else torch.zeros(shape, device=obs.device)
        return self._decode(obs, z).view(-1, self.config.action_horizon, self.action_dim)
