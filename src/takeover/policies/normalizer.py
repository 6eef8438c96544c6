"""Normalisation statistics stored as buffers beside the weights (they travel in the checkpoint)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

STAT_KEYS = ("obs_mean", "obs_std", "obs_min", "obs_max", "action_mean", "action_std", "action_min", "action_max")


# An observation dimension that barely moves in the demonstrations (a quaternion component of an object
# that never tilts) would be blown up by its tiny std the moment a rollout moves it; this floor keeps
# such dimensions near their raw scale instead.
OBS_STD_FLOOR = 1e-2


class Normalizer(nn.Module):
    def __init__(self, stats: dict, action_norm: str = "zscore"):
        super().__init__()
        self.action_norm = action_norm
        for key in STAT_KEYS:
            self.register_buffer(key, torch.as_tensor(np.asarray(stats[key]), dtype=torch.float32).clone())
        self.obs_std.clamp_(min=OBS_STD_FLOOR)
        # min-max ranges narrower than this are treated as constants (a dimension that never moves)
        span = (self.action_max - self.action_min) / 2
        self.register_buffer("action_half_range", torch.where(span < 1e-6, torch.ones_like(span), span))
        self.register_buffer("action_center", (self.action_max + self.action_min) / 2)

    def obs(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.obs_mean) / self.obs_std

    def action(self, a: torch.Tensor) -> torch.Tensor:
        if self.action_norm == "minmax":
            return (a - self.action_center) / self.action_half_range
        return (a - self.action_mean) / self.action_std

    def unaction(self, a: torch.Tensor) -> torch.Tensor:
        if self.action_norm == "minmax":
            return a * self.action_half_range + self.action_center
        return a * self.action_std + self.action_mean

    @staticmethod
    def stats_from_state_dict(state_dict: dict, prefix: str = "normalizer.") -> dict:
        return {k: state_dict[prefix + k].numpy() for k in STAT_KEYS}
