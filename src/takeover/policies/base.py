"""The Policy interface every head implements (docs/architecture.md, adding a head).

Preparing: the trainer calls `policy.prepare(train_data)` once, after building the policy and any
           warm start (whose normalisation is this data's), before a resume (which replaces it): a head
           fits what it needs from the data (the autoregressive head places its bins); the default
           does nothing. `train_data` is a DemoDataset; `labelled_actions()` gives the raw label
           actions (n, A).
Training:  `policy.loss(batch) -> {"loss": tensor, ...}` on raw (unnormalised) batches from
           DemoDataset.get_batch: obs (B, To, D), actions (B, Ta, A), action_mask (B, Ta), and
           optionally weights (B, Ta) or (B,). Every head sees the same per-step weights: the mask
           times the weights; a step with weight 0 is never a target (it may still be an input).
Rollout:   `policy.reset()` at episode start, then `policy.act(obs_dict) -> np.ndarray (A,)`; the
           policy keeps its own observation history and action-chunk queue (receding horizon:
           predict `action_horizon` actions, execute the first `exec_horizon`, then replan).

A head implements `compute_loss(features, actions, weights)` and `predict(features, sample)` on
normalised tensors; its loss is the weights' weighted mean over action steps, so a zero weight is the
same as leaving the step (or the sample) out. Normalisation, history and chunk bookkeeping live here, once.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from takeover.sim.observations import ObsLayout

from .config import HeadConfig
from .encoders import ObsEncoder
from .errors import PolicyError
from .normalizer import Normalizer
from .rotations import ObsFeatures
from .vision import EncoderConfig


@dataclass(frozen=True)
class PolicyShapes:
    obs_keys: tuple[str, ...]
    obs_shapes: tuple[tuple[int, ...], ...]
    action_dim: int
    image_keys: tuple[str, ...] = field(default=())
    quat_starts: tuple[int, ...] = field(default=())  # quaternions in the flat vector, fed as matrices
    image_shapes: tuple[tuple[int, ...], ...] = field(default=())  # (H, W, 3) per image key
    image_encoder: EncoderConfig | None = None  # None: checkpoints from before vision.py (pooled encoder)

    @property
    def layout(self) -> ObsLayout:
        return ObsLayout(tuple(self.obs_keys), tuple(tuple(s) for s in self.obs_shapes))

    @property
    def obs_dim(self) -> int:
        return self.layout.dim

    def to_dict(self) -> dict:
        return {"obs_keys": list(self.obs_keys), "obs_shapes": [list(s) for s in self.obs_shapes],
                "action_dim": self.action_dim, "image_keys": list(self.image_keys),
                "quat_starts": list(self.quat_starts), "image_shapes": [list(s) for s in self.image_shapes],
                "image_encoder": self.image_encoder.to_dict() if self.image_encoder else None}

    @classmethod
    def from_dict(cls, d: dict) -> PolicyShapes:
        return cls(tuple(d["obs_keys"]), tuple(tuple(s) for s in d["obs_shapes"]), int(d["action_dim"]),
                   tuple(d.get("image_keys", ())), tuple(int(i) for i in d.get("quat_starts", ())),
                   tuple(tuple(int(n) for n in s) for s in d.get("image_shapes", ())),
                   EncoderConfig.from_dict(d["image_encoder"]) if d.get("image_encoder") else None)


def step_weights(batch: dict, actions: torch.Tensor) -> torch.Tensor:
    """(B, T) loss weight of every action step of a batch: action_mask (padding, non-labels) times the
    optional weights, given per step (B, T) or per sample (B,)."""
    mask = batch.get("action_mask")
    weights = torch.ones(actions.shape[:2], device=actions.device) if mask is None else mask.to(actions.dtype)
    extra = batch.get("weights")
    if extra is not None:
        extra = extra.to(actions.dtype)
        weights = weights * (extra[:, None] if extra.dim() == 1 else extra)
    return weights


class Policy(nn.Module):
    config_class: ClassVar[type[HeadConfig]] = HeadConfig

    def __init__(self, config: HeadConfig, shapes: PolicyShapes, stats: dict):
        super().__init__()
        self.config = config
        self.shapes = shapes
        self.obs_features = ObsFeatures(shapes.obs_dim, shapes.quat_starts)
        self.normalizer = Normalizer(stats, config.action_norm)  # obs stats are over obs_features' output
        self.encoder = ObsEncoder(self.obs_features.out_dim, shapes.image_keys, shapes.image_shapes, shapes.image_encoder)
        self.feature_dim = self.encoder.feature_dim
        self.action_dim = shapes.action_dim
        self.sample_actions = False  # act(): deterministic mode of the head unless set
        self._layout = shapes.layout
        self._obs_history: deque = deque(maxlen=config.obs_horizon)
        self._action_queue: deque = deque()

    # ----- training --------------------------------------------------------------------------
    def forward(self, batch: dict) -> dict:
        """= loss(batch); DistributedDataParallel synchronises gradients only through forward()."""
        return self.loss(batch)

    def prepare(self, train_data) -> None:
        """Fit whatever the head takes from the training data, once before training (see the module
        docstring); the default needs nothing."""

    def loss(self, batch: dict) -> dict:
        obs = self.normalize_obs(batch["obs"])
        actions = self.normalizer.action(batch["actions"])
        features = self.encoder(obs, batch.get("images"))
        return self.compute_loss(features, actions, step_weights(batch, actions))

    def normalize_obs(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw flat observations (..., D) -> the normalised vector the encoder reads."""
        return self.normalizer.obs(self.obs_features(raw))

    def compute_loss(self, features: torch.Tensor, actions: torch.Tensor, weights: torch.Tensor) -> dict:
        """(B, To, F) features, (B, T, A) normalised actions, (B, T) weights >= 0 -> {"loss": ...}."""
        raise NotImplementedError

    def predict(self, features: torch.Tensor, sample: bool = False) -> torch.Tensor:
        """(B, To, F) features -> (B, Ta, A) normalised actions."""
        raise NotImplementedError

    # ----- rollout -----------------------------------------------------------------------------
    def reset(self):
        self._obs_history.clear()
        self._action_queue.clear()

    def flatten_obs(self, obs) -> torch.Tensor:
        if isinstance(obs, dict):
            flat = self._layout.flatten(obs)
        else:
            flat = np.asarray(obs, dtype=np.float32).reshape(-1)
            if flat.shape[0] != self._layout.dim:
                raise PolicyError(f"observation has {flat.shape[0]} values; this policy expects {self._layout.dim} "
                                  f"({', '.join(self._layout.keys)})")
        return torch.from_numpy(flat)

    def obs_images(self, obs) -> dict | None:
        """Camera images of one observation step, {key: (H, W, 3) uint8 tensor}; None without cameras."""
        keys = self.shapes.image_keys
        if not keys:
            return None
        if not isinstance(obs, dict):
            raise PolicyError(f"this policy reads camera images ({', '.join(keys)}); pass the observation dict")
        missing = [k for k in keys if k not in obs]
        if missing:
            raise PolicyError(f"observation lacks camera image(s) {missing}; it has {sorted(obs)} "
                              f"(rebuild the environment with camera_names set, as the checkpoint's EnvSpec does)")
        for k, expected in zip(keys, self.shapes.image_shapes):
            if tuple(np.shape(obs[k])) != tuple(expected):
                raise PolicyError(f"camera image {k} is {'x'.join(map(str, np.shape(obs[k])))}; this policy was trained on "
                                  f"{'x'.join(map(str, expected))} (render at the checkpoint's camera size)")
        return {k: torch.from_numpy(np.ascontiguousarray(obs[k], dtype=np.uint8)) for k in keys}

    def _features(self, flat: torch.Tensor, images: dict | None) -> torch.Tensor:
        """Raw (..., D) observations (+ {key: (..., H, W, 3)} images) -> a batch of one: (1, ..., F)."""
        device = self.normalizer.obs_mean.device
        images = {k: v.to(device)[None] for k, v in images.items()} if images else None
        return self.encoder(self.normalize_obs(flat.to(device)[None]), images)

    def encode_step(self, obs) -> torch.Tensor:
        """(1, F) features of a single observation (recurrent heads: no history)."""
        return self._features(self.flatten_obs(obs), self.obs_images(obs))

    @torch.no_grad()
    def act(self, obs) -> np.ndarray:
        step = (self.flatten_obs(obs), self.obs_images(obs))
        if not self._obs_history:
            self._obs_history.extend([step] * self.config.obs_horizon)  # pad history at episode start
        else:
            self._obs_history.append(step)
        if not self._action_queue:
            flats = torch.stack([f for f, _ in self._obs_history])
            images = None
            if self.shapes.image_keys:
                images = {k: torch.stack([im[k] for _, im in self._obs_history]) for k in self.shapes.image_keys}
            self._action_queue.extend(self.predict_chunk(flats, images)[: self.config.exec_horizon])
        return self._action_queue.popleft()

    @torch.no_grad()
    def predict_chunk(self, obs_history: torch.Tensor, image_history: dict | None = None) -> np.ndarray:
        """(To, D) raw observations (+ {key: (To, H, W, 3)} images) -> (Ta, A) raw actions, clipped to [-1, 1]."""
        features = self._features(obs_history, image_history)
        actions = self.normalizer.unaction(self.predict(features, sample=self.sample_actions))[0]
        return actions.clamp(-1.0, 1.0).cpu().numpy()
