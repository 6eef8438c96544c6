"""Critics: an ensemble of Q-networks evaluated in one batched matmul per layer (10 small MLPs on a
CPU cost about as much as one wide one), with LayerNorm after every hidden layer (RLPD: it keeps
Q-values of out-of-distribution actions bounded, which is what makes high update-to-data ratios
stable), and a plain state-value network for the on-policy method."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from takeover.policies.encoders import mlp


class EnsembleLinear(nn.Module):
    def __init__(self, members: int, in_dim: int, out_dim: int):
        super().__init__()
        bound = 1 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (E, B, in) -> (E, B, out)
        return torch.baddbmm(self.bias, x, self.weight)


class CriticEnsemble(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, members: int = 10, hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.members = members
        dims = (obs_dim + action_dim, *hidden)
        self.hidden = nn.ModuleList(EnsembleLinear(members, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = EnsembleLinear(members, dims[-1], 1)

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B, D) normalised observations, (B, A) actions -> (E, B) Q-values."""
        x = torch.cat([obs, action], -1).unsqueeze(0).expand(self.members, -1, -1)
        for layer in self.hidden:
            x = F.relu(F.layer_norm(layer(x), (layer.weight.shape[-1],)))
        return self.out(x).squeeze(-1)


def value_net(obs_dim: int, hidden: tuple[int, ...] = (256, 256)) -> nn.Module:
    return mlp(obs_dim, tuple(hidden), 1, activation=nn.Tanh, layer_norm=True)
