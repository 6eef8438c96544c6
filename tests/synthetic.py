"""Synthetic data and a tiny training loop for the head tests (no simulator, no files)."""
from __future__ import annotations

import numpy as np
import torch

from takeover.policies import PolicyShapes, make_config, make_policy


def stats_from(obs: np.ndarray, actions: np.ndarray, floor: float = 1e-2) -> dict:
    obs = obs.reshape(-1, obs.shape[-1])
    actions = actions.reshape(-1, actions.shape[-1])
    return {"obs_mean": obs.mean(0), "obs_std": np.maximum(obs.std(0), floor),
            "obs_min": obs.min(0), "obs_max": obs.max(0),
            "action_mean": actions.mean(0), "action_std": np.maximum(actions.std(0), floor),
            "action_min": actions.min(0), "action_max": actions.max(0)}


def build(head: str, obs: np.ndarray, actions: np.ndarray, seed: int = 0, **overrides):
    """A policy whose initial weights come from `seed` alone: the tests assert learned thresholds, so the
    start must not depend on which tests ran before in this process (xdist worksteal reorders them)."""
    shapes = PolicyShapes(("state",), ((obs.shape[-1],),), actions.shape[-1])
    torch.manual_seed(seed)
    return make_policy(make_config(head, **overrides), shapes, stats_from(obs, actions))


def bimodal(n: int, seed: int = 0, obs_dim: int = 3, action_dim: int = 2, noise: float = 0.05):
    """The same observation distribution for both modes: every action is +1·(1, …, 1) or −1·(1, …, 1)
    (one coin per sample, so the dimensions agree), plus a little noise."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    sign = rng.choice([-1.0, 1.0], size=(n, 1))
    actions = (sign + noise * rng.normal(size=(n, action_dim))).astype(np.float32)
    return obs, actions


def cue_sequences(n: int, length: int, seed: int = 0, balanced: bool = False, noise: float = 0.05):
    """A cue of ±1 is shown in observation 0 only (later steps show 0); every action must equal it.
    The second observation feature is the time step, which says nothing about the cue."""
    rng = np.random.default_rng(seed)
    cue = np.tile([-1.0, 1.0], n // 2) if balanced else rng.choice([-1.0, 1.0], size=n)
    obs = np.zeros((n, length, 2), np.float32)
    obs[:, 0, 0] = cue
    obs[:, :, 1] = np.arange(length) / length
    actions = (cue[:, None, None] + noise * rng.normal(size=(n, length, 1))).astype(np.float32)
    return obs, actions, cue


def train(policy, obs: np.ndarray, actions: np.ndarray, steps: int, batch_size: int = 256, lr: float = 3e-3,
          seed: int = 0) -> list[float]:
    """obs (N, To, D) and actions (N, Ta, A) windows, all valid; AdamW on random minibatches."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    obs_t, act_t = torch.as_tensor(obs), torch.as_tensor(actions)
    optimiser = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=1e-4)
    policy.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, obs_t.shape[0], (batch_size,), generator=gen)
        batch = {"obs": obs_t[idx], "actions": act_t[idx],
                 "action_mask": torch.ones(act_t[idx].shape[:2], dtype=torch.bool)}
        loss = policy.loss(batch)["loss"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    policy.eval()
    return losses


@torch.no_grad()
def sample_actions(policy, obs: np.ndarray, sample: bool) -> torch.Tensor:
    """obs (N, D) -> raw actions (N, Ta, A) from policy.predict on a batch (obs_horizon 1)."""
    features = policy.encoder(policy.normalizer.obs(torch.as_tensor(obs)[:, None]))
    return policy.normalizer.unaction(policy.predict(features, sample=sample))
