"""Autoregressive discretised head: every dimension of the flattened action chunk gets a categorical
over `n_bins` bins, predicted in order with the earlier dimensions' values as input (teacher forcing
in training), decoded to the bin centre plus an optional learned per-bin offset (BeT).

Network: one MLP trunk on the observation history gives h; dimension d sees
relu(h + e_d + sum_{j<d} a_j w_j) (a learned embedding per dimension plus a running projection of
the earlier values), one shared hidden layer, then its own output layer. Training scores all
dimensions in one pass (the running sum is a cumsum); rollout runs D cheap steps after one trunk call.

Bins are given by their centres (D, n_bins), assigned by nearest centre. They start uniform over
the normalised action range of the statistics; `prepare(train_data)` calls
`fit_bins(normalised_actions)`, which re-places them from data ("quantile": centres at the (i + ½)/n quantiles, so dense regions get fine bins and a
two-valued gripper gets exact centres; "uniform": even over the data's range). The centres are
buffers, so they travel in the checkpoint.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from takeover.config import config_field, with_default

from ..base import Policy
from ..config import HeadConfig
from ..encoders import mlp
from ..errors import PolicyError
from ..registry import register_head

log = logging.getLogger(__name__)
_QUANTILE_MAX_SAMPLES = 1_000_000  # torch.quantile refuses very large inputs; a random subset is plenty


@dataclass
class AutoregressiveConfig(HeadConfig):
    head = "autoregressive"
    # A chunk of 8 actions, executed whole. Argmax decoding follows the most frequent action of a
    # state, so a memoryless head deadlocks where the demonstrator pauses at observations identical
    # to the ones where it moves on (the Lift expert waits ~4 steps for robosuite's gripper ramp,
    # which is not in the observation, then lifts): per step it waits forever (Lift 0.78 at 12k
    # steps, grasped cube never lifted); every chunk from that state ends in the lift (0.98 at 4k).
    # exec_horizon must cover the pause, or the chunk replays its waiting prefix.
    action_horizon: int = with_default(HeadConfig, "action_horizon", 8)
    exec_horizon: int = with_default(HeadConfig, "exec_horizon", 8)
    hidden_dims: tuple[int, ...] = config_field((256, 256), help="Trunk widths (all but the last) and the per-dimension "
                                                                "width (the last).")
    n_bins: int = config_field(64, min=2, help="Bins per action dimension.")
    # applied by fit_bins(); uniform over the stats' range until it is called
    binning: str = config_field("quantile", choices=("uniform", "quantile"), help="Bin edges: uniform or quantile.")
    offsets: bool = config_field(True, help="Predict an offset within the chosen bin.")
    # offsets are in units of bin spacing, so O(1) like the cross-entropy
    offset_weight: float = config_field(1.0, min=0, help="Weight of the offset loss.")
    temperature: float = config_field(1.0, above=0, help="Sampling temperature for predict(sample=True).")

    def validate(self):
        super().validate()
        if not self.hidden_dims:
            raise PolicyError("autoregressive hidden_dims needs at least one layer width")


@register_head
class AutoregressivePolicy(Policy):
    config_class = AutoregressiveConfig

    def __init__(self, config: AutoregressiveConfig, shapes, stats):
        super().__init__(config, shapes, stats)
        D, nb, H = config.action_horizon * self.action_dim, config.n_bins, config.hidden_dims[-1]
        self.chunk_dim = D
        self.trunk = mlp(self.feature_dim * config.obs_horizon, config.hidden_dims[:-1], H)
        self.dim_embed = nn.Parameter(torch.randn(D, H) * 0.02)
        self.prev_weight = nn.Parameter(torch.randn(D, H) / H ** 0.5)  # row j: how a_j feeds later dims
        self.hidden = nn.Sequential(nn.Linear(H, H), nn.ReLU())
        n_out = nb * (2 if config.offsets else 1)
        self.out_weight = nn.Parameter(torch.randn(D, H, n_out) / H ** 0.5)
        self.out_bias = nn.Parameter(torch.zeros(D, n_out))
        lo = self.normalizer.action(self.normalizer.action_min)
        hi = self.normalizer.action(self.normalizer.action_max)
        centers, scale = self._uniform_bins(lo, hi, nb)
        self.register_buffer("bin_centers", centers.repeat(config.action_horizon, 1))  # (D, nb)
        self.register_buffer("bin_scale", scale.repeat(config.action_horizon))  # (D,) offset unit
        self.register_buffer("bins_fitted", torch.tensor(False))
        self._warned = False

    @staticmethod
    def _uniform_bins(lo: torch.Tensor, hi: torch.Tensor, nb: int):
        hi = torch.maximum(hi, lo + 1e-6)
        steps = (torch.arange(nb, dtype=torch.float32) + 0.5) / nb
        return lo[:, None] + (hi - lo)[:, None] * steps, (hi - lo) / nb

    def prepare(self, train_data):
        """Place the bins on the training data's label actions (normalised)."""
        actions = train_data.labelled_actions().to(self.normalizer.action_mean.device)
        self.fit_bins(self.normalizer.action(actions))

    @torch.no_grad()
    def fit_bins(self, actions: torch.Tensor, seed: int = 0):
        """Place the bins from NORMALISED training actions (..., A), per action dimension."""
        a = torch.as_tensor(actions, dtype=torch.float32).reshape(-1, self.action_dim).cpu()
        if a.shape[0] == 0:
            raise PolicyError("fit_bins needs at least one action")
        nb = self.config.n_bins
        lo, hi = a.min(0).values, a.max(0).values
        centers, scale = self._uniform_bins(lo, hi, nb)
        if self.config.binning == "quantile":
            if a.shape[0] > _QUANTILE_MAX_SAMPLES:
                pick = torch.randperm(a.shape[0], generator=torch.Generator().manual_seed(seed))[:_QUANTILE_MAX_SAMPLES]
                a = a[pick]
            q = (torch.arange(nb, dtype=torch.float32) + 0.5) / nb
            centers = torch.quantile(a, q, dim=0).T.contiguous()  # (A, nb), sorted
        Ta = self.config.action_horizon
        self.bin_centers.copy_(centers.repeat(Ta, 1))
        self.bin_scale.copy_(scale.repeat(Ta))
        self.bins_fitted.fill_(True)

    def _bin_index(self, values: torch.Tensor) -> torch.Tensor:
        """(B, D) values -> (B, D) index of the nearest centre (centres are sorted per dimension)."""
        mids = (self.bin_centers[:, 1:] + self.bin_centers[:, :-1]) / 2
        return torch.searchsorted(mids, values.T.contiguous()).T

    def _split(self, out: torch.Tensor):
        nb = self.config.n_bins
        return (out[..., :nb], out[..., nb:]) if self.config.offsets else (out, None)

    def compute_loss(self, features, actions, weights):
        if self.config.binning == "quantile" and not bool(self.bins_fitted) and not self._warned:
            log.warning("autoregressive head: prepare() / fit_bins() was never called; training with uniform bins")
            self._warned = True
        target = actions.flatten(1)  # (B, D)
        weights = weights.repeat_interleave(self.action_dim, dim=1)
        h = self.trunk(features.flatten(1))
        # teacher forcing feeds the earlier dimensions' values; a non-target step's (padding, not a
        # label) feeds zero rather than a value the head must never imitate
        contrib = (target * (weights > 0))[..., None] * self.prev_weight  # (B, D, H)
        earlier = contrib.cumsum(1) - contrib  # sum over j < d
        x = self.hidden(F.relu(h[:, None] + self.dim_embed + earlier))
        out = torch.einsum("bdh,dho->bdo", x, self.out_weight) + self.out_bias
        logits, offsets = self._split(out)
        idx = self._bin_index(target)
        n = weights.sum().clamp(min=1)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx.reshape(-1), reduction="none").view_as(target)
        ce = (ce * weights).sum() / n
        result = {"ce": ce.detach()}
        loss = ce
        if offsets is not None:
            centre = self.bin_centers.gather(1, idx.T).T
            residual = (target - centre) / self.bin_scale
            pred = offsets.gather(-1, idx[..., None]).squeeze(-1)
            off = (((pred - residual) ** 2) * weights).sum() / n
            loss = loss + self.config.offset_weight * off
            result["offset_mse"] = off.detach()
        result["loss"] = loss
        return result

    @torch.no_grad()
    def predict(self, features, sample=False):
        # D sequential steps; everything that does not depend on earlier dimensions is hoisted out
        # and the rest is bare addmm calls (per-op overhead dominates at batch 1: ~3x faster than
        # going through the modules)
        if features.shape[0] == 1 and features.device.type == "cpu" and not sample:
            return self._greedy_one(features)
        nb = self.config.n_bins
        h = self.trunk(features.flatten(1))
        base = h[:, None] + self.dim_embed  # (B, D, H)
        w_hidden, b_hidden = self.hidden[0].weight.t(), self.hidden[0].bias
        running = torch.zeros_like(h)
        values = []
        for d in range(self.chunk_dim):
            x = torch.relu(torch.addmm(b_hidden, torch.relu(base[:, d] + running), w_hidden))
            out = torch.addmm(self.out_bias[d], x, self.out_weight[d])
            logits = out[:, :nb]
            if sample:
                k = torch.multinomial(F.softmax(logits / self.config.temperature, -1), 1)
            else:
                k = logits.argmax(-1, keepdim=True)
            v = self.bin_centers[d][k]
            if self.config.offsets:
                v = v + out[:, nb:].gather(-1, k) * self.bin_scale[d]
            values.append(v)
            running = running + v * self.prev_weight[d]
        return torch.cat(values, dim=-1).view(-1, self.config.action_horizon, self.action_dim)

    @torch.no_grad()
    def _greedy_one(self, features):
        """Batch-1 argmax decode on CPU (every rollout step): the same loop in numpy, whose per-call
        overhead is a fraction of torch's; 2x faster again (a 56-dim Lift chunk in 0.87 ms idle)."""
        nb = self.config.n_bins
        h = self.trunk(features.flatten(1).float())
        base = (h[:, None] + self.dim_embed)[0].numpy()
        w_hidden, b_hidden = self.hidden[0].weight.numpy().T, self.hidden[0].bias.numpy()
        out_w, out_b = self.out_weight.numpy(), self.out_bias.numpy()
        centers, scale, prev = self.bin_centers.numpy(), self.bin_scale.numpy(), self.prev_weight.numpy()
        running = np.zeros(base.shape[1], np.float32)
        x = np.empty_like(running)
        values = np.empty(self.chunk_dim, np.float32)
        for d in range(self.chunk_dim):
            np.add(base[d], running, out=x)
            np.maximum(x, 0, out=x)
            y = x @ w_hidden
            y += b_hidden
            np.maximum(y, 0, out=y)
            out = y @ out_w[d]
            out += out_b[d]
            k = int(out[:nb].argmax())
            v = centers[d, k] + (out[nb + k] * scale[d] if self.config.offsets else 0.0)
            values[d] = v
            running += v * prev[d]
        return torch.from_numpy(values).view(1, self.config.action_horizon, self.action_dim).to(features.dtype)
