"""Observation encoders: normalised low-dim vector (+ optional camera images) -> feature vector.

The low-dim path is the normalised flat observation itself (the heads put their own MLP on top). A
camera image goes through a small conv net with spatial softmax-free global pooling; its features
are concatenated to the low-dim ones, so heads see one feature vector either way.
"""
from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation=nn.ReLU, layer_norm: bool = False) -> nn.Sequential:
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Linear(d, h)] + ([nn.LayerNorm(h)] if layer_norm else []) + [activation()]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ImageEncoder(nn.Module):
    """uint8 (..., H, W, 3) -> (..., feature_dim)."""

    def __init__(self, feature_dim: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, 5, stride=2), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, feature_dim),
        )
        self.feature_dim = feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        lead = images.shape[:-3]
        x = images.reshape(-1, *images.shape[-3:]).permute(0, 3, 1, 2).float() / 255.0
        return self.net(x).reshape(*lead, self.feature_dim)


class ObsEncoder(nn.Module):
    """Features of one observation step: normalised low-dim vector, then one block per camera."""

    def __init__(self, obs_dim: int, image_keys: tuple[str, ...] = (), image_feature_dim: int = 64):
        super().__init__()
        self.image_keys = tuple(image_keys)
        self.images = nn.ModuleDict({k: ImageEncoder(image_feature_dim) for k in self.image_keys})
        self.feature_dim = obs_dim + image_feature_dim * len(self.image_keys)

    def forward(self, obs: torch.Tensor, images: dict | None = None) -> torch.Tensor:
        if not self.image_keys:
            return obs
        return torch.cat([obs] + [self.images[k](images[k]) for k in self.image_keys], dim=-1)
