"""Collection: the current actor explores in the rollout workers (`sim.RolloutPool`, the one episode
loop), every episode recorded; the transitions come back to the learner.

The actor travels as a standard checkpoint file plus a version number: a worker reloads it only
when the version changes (RolloutPool compares agent factories by value). Each episode re-seeds
numpy and torch with its seed, so the exploration noise depends only on the seed and the weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from takeover.sim.agents import Decision

from .buffers import episode_transitions

# Collection episodes start far from demonstration (0, 1, ...), DAgger (3,000,000+), evaluation
# (1,000,000+) and checkpoint-selection (2,000,000+) seeds.
COLLECT_SEED_START = 5_000_000


class ExploringAgent:
    """Samples a = tanh(mu + sigma * eps) from the fine-tuned actor; records the pre-tanh sample
    (`pre_tanh`), which the on-policy update needs for exact log-likelihoods."""

    def __init__(self, actor):
        self.actor = actor

    def reset(self, env):
        pass

    @torch.no_grad()
    def act(self, obs, env):
        flat = self.actor.policy.flatten_obs(obs)[None]
        action, _, u = self.actor.sample(flat)
        return Decision(action[0].double().numpy(), extras={"pre_tanh": u[0].numpy().astype(np.float32)})


@dataclass(frozen=True)
class ActorFactory:
    """Picklable: the worker loads `checkpoint` (version `version`) into an exploring agent."""

    checkpoint: str
    version: int
    residual_share: float | None = None  # a residual policy: the share of steps its residual acts on

    def __call__(self):
        from takeover.policies.checkpoint import load_checkpoint

        policy, _, _ = load_checkpoint(self.checkpoint)
        if self.residual_share is not None:
            from .residual import ResidualActor, ResidualExploringAgent

            return ResidualExploringAgent(ResidualActor(policy), self.residual_share)
        from .actor import TanhActor

        return ExploringAgent(TanhActor(policy))


def online_transitions(results, keys, success_reward: float, shaped: bool, gamma: float) -> dict:
    """Transitions of collected episodes (stopped at success: the last step of a successful one is
    terminal and its reward is `success_reward`; sparse: 0 everywhere else), with `pre_tanh` kept
    beside them."""
    parts = []
    for res in results:
        ep = res.episode
        rewards = np.asarray(ep.rewards, np.float32).copy() if shaped else np.zeros(len(ep), np.float32)
        first = len(ep) - 1 if res.success else None
        if first is not None:
            rewards[first] = success_reward
        t = episode_transitions(ep, keys, rewards, first, gamma)
        if "base_action" in ep.extras:  # residual collection: rows carry the base's proposal
            from .residual import with_base_actions

            t = with_base_actions(t, ep.extras["base_action"])
        t["pre_tanh"] = np.asarray(ep.extras["pre_tanh"], np.float32)
        t["episode_ends"] = np.eye(1, len(ep), len(ep) - 1, dtype=np.float32)[0]
        parts.append(t)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
