"""Observation encoders: normalised low-dim vector (+ optional camera images) -> feature vector.

The low-dim path is the normalised flat observation itself (the heads put their own MLP on top). Each
camera has its own encoder (policies/vision.py: crop, conv trunk, spatial-softmax keypoints); its
features are concatenated to the low-dim ones, so every head sees one feature vector per observation
step, histories included ((..., To, H, W, 3) images give (..., To, F) features).
"""
from __future__ import annotations

import torch
from torch import nn

from .vision import LEGACY_ENCODER, CameraEncoder, EncoderConfig


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int, activation=nn.ReLU, layer_norm: bool = False) -> nn.Sequential:
    layers, d = [], in_dim
    for h in hidden:
        layers += [nn.Linear(d, h)] + ([nn.LayerNorm(h)] if layer_norm else []) + [activation()]
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ObsEncoder(nn.Module):
    """Features of one observation step: normalised low-dim vector, then one block per camera."""

    def __init__(self, obs_dim: int, image_keys: tuple[str, ...] = (), image_shapes: tuple[tuple[int, ...], ...] = (),
                 config: EncoderConfig | None = None):
        super().__init__()
        self.image_keys = tuple(image_keys)
        config = config or LEGACY_ENCODER
        shapes = dict(zip(self.image_keys, image_shapes))
        self.images = nn.ModuleDict({k: CameraEncoder(shapes.get(k, (0, 0, 3)), config.trunk_for(k), config)
                                     for k in self.image_keys})
        self.feature_dim = obs_dim + sum(enc.feature_dim for enc in self.images.values())

    def forward(self, obs: torch.Tensor, images: dict | None = None) -> torch.Tensor:
        if not self.image_keys:
            return obs
        return torch.cat([obs] + [self.images[k](images[k]) for k in self.image_keys], dim=-1)
