"""Residual RL on a frozen base policy: RLPD's SAC trains a small tanh-Gaussian correction added to what
any head (gaussian, gmm, cvae, autoregressive, lstm, diffusion) executes.

    executed = clip(base_action + scale * tanh(u)),  u ~ N(mu(s, base_action), sigma(s, base_action))

The replay buffers hold rows [flat observation, base action] (the base's proposal is part of the state
the residual sees; for a chunked or recurrent head it depends on the head's queue and history, so it is
recorded at collection rather than recomputed). The action stored is the executed one, which the critics
score; SAC's entropy term is the residual's. Demonstrations get their base actions once, by running the
base along each demo episode (teacher-forced: the demo's observations, the base's own history/queue).

Progressive exploration (Policy Decorator): for the first `ramp_steps` online env steps the residual
acts on a growing share of steps (linear from 0 to 1); the other steps execute the base exactly, so
early, untrained residuals do not wreck the base's rollouts while the critic learns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from takeover.config import config_field, with_default
from takeover.policies.residual import ResidualConfig, ResidualPolicy
from takeover.sim.agents import Decision

from .actor import TanhGaussianActor
from .errors import FinetuneError
from .rlpd import RLPDConfig


@dataclass
class ResidualRLConfig(RLPDConfig):
    scale: float = config_field(0.2, above=0, help="Largest correction per action dimension, in action units.")
    residual_hidden: tuple = config_field((256, 256), help="Hidden widths of the residual network.")
    ramp_steps: int = config_field(2000, min=0, help="Online env steps over which the share of steps the residual "
                                                     "acts on grows from 0 to 1 (progressive exploration).")
    # the residual starts at zero, not at a good policy that a high rate would spoil
    actor_lr: float = with_default(RLPDConfig, "actor_lr", 3e-4)
    critic_warmup_updates: int = with_default(RLPDConfig, "critic_warmup_updates", 500)

    def validate(self):
        super().validate()
        if self.bc_loss != "mse":
            raise FinetuneError("the residual's BC term is mse (a residual has no likelihood of a demo action)")

    def residual_config(self) -> ResidualConfig:
        return ResidualConfig(scale=self.scale, hidden=self.residual_hidden)

    def residual_share(self, online_steps: int) -> float:
        return 1.0 if self.ramp_steps == 0 else min(1.0, online_steps / self.ramp_steps)


def residual_policy(policy, cfg: ResidualRLConfig) -> ResidualPolicy:
    """Wrap a base policy in a zero residual (or keep a residual checkpoint's own, to train it further)."""
    if isinstance(policy, ResidualPolicy):
        return policy
    return ResidualPolicy(policy, cfg.residual_config())


class ResidualActor(TanhGaussianActor):
    """The RL view of a ResidualPolicy: buffer rows are [flat obs (D), base action (A)]."""

    def __init__(self, policy: ResidualPolicy):
        super().__init__()
        self.policy = policy
        self.action_dim = policy.action_dim

    def split(self, rows: torch.Tensor):
        return rows[:, : -self.action_dim], rows[:, -self.action_dim:]

    @property
    def feature_dim(self) -> int:
        return self.policy.obs_features.out_dim + self.action_dim

    @property
    def row_dim(self) -> int:
        return self.policy.shapes.obs_dim + self.action_dim

    def trainable_parameters(self):
        return self.policy.net.parameters()

    def features(self, rows: torch.Tensor) -> torch.Tensor:
        flat, base = self.split(rows)
        return torch.cat([self.policy.features(flat), base], -1)

    def distribution(self, rows: torch.Tensor):
        """-> the residual's pre-tanh mean and std, and a zero "raw" (the executed action is clipped into
        range, so there is no overshoot to penalise)."""
        mu, sigma = self.policy.distribution(*self.split(rows))
        return mu, sigma, torch.zeros_like(mu)

    def executed(self, residual: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.policy.execute(self.split(rows)[1], residual)


class ResidualExploringAgent:
    """Collection: the base acts as it always does (its own history and queue); on a `share` of steps
    the residual's sample is added. Extras: `base_action` (the buffer rows need it) and `pre_tanh`."""

    def __init__(self, actor: ResidualActor, share: float):
        self.actor, self.share = actor, float(share)

    def reset(self, env):
        self.actor.policy.reset()

    @torch.no_grad()
    def act(self, obs, env):
        policy = self.actor.policy
        base = torch.from_numpy(np.asarray(policy.base.act(obs), np.float32))[None]
        u = torch.zeros_like(base)
        executed = base
        if np.random.random() < self.share:  # the rollout loop seeds numpy with the episode seed
            row = torch.cat([policy.base.flatten_obs(obs)[None], base], -1)
            residual, _, u = self.actor.sample(row)
            executed = self.actor.executed(residual, row)
        return Decision(executed[0].double().numpy(),
                        extras={"base_action": base[0].numpy(), "pre_tanh": u[0].numpy().astype(np.float32)})


def with_base_actions(transitions: dict, base_actions: np.ndarray) -> dict:
    """Append the base's proposal to every obs row, and the next step's proposal to every next_obs row
    (the last step of an episode reuses its own: the base never acted on the final observation; that
    row is bootstrapped only when the horizon cut the episode)."""
    n = len(transitions["rewards"])
    base = np.asarray(base_actions, np.float32)
    following = np.concatenate([base[1:], base[-1:]])
    return {**transitions, "obs": np.concatenate([transitions["obs"], base[:n]], 1),
            "next_obs": np.concatenate([transitions["next_obs"], following[:n]], 1)}


@torch.no_grad()
def demo_base_actions(policy, episode) -> np.ndarray:
    """What the base proposes along a demonstration, fed the demo's observations in order."""
    base = policy.base if isinstance(policy, ResidualPolicy) else policy
    base.reset()
    keys = base.shapes.obs_keys
    out = [np.asarray(base.act({k: episode.obs[k][t] for k in keys}), np.float32) for t in range(len(episode))]
    base.reset()
    return np.stack(out)
