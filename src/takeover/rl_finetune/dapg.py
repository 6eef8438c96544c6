"""DAPG-style on-policy fine-tuning: PPO with GAE, plus a demonstration-augmented term whose weight
decays with the iteration k (Rajeswaran et al. 2018, "Learning Complex Dexterous Manipulation with
Deep RL and Demonstrations"; PPO's clipped surrogate stands in for the natural gradient).

    per iteration k: collect >= `steps_per_iter` env steps with the current stochastic actor
    advantages      = GAE(gamma, gae_lambda) from a LayerNorm value network, normalised per batch
    actor loss      = PPO clipped surrogate  -  lambda0 * lambda1^k * mean log pi(a_demo | s_demo)
    value loss      = squared error to the GAE returns
    step size       = an iteration's minibatch steps stop once the approximate KL to the collecting policy
                      passes 1.5 `target_kl`, and the actor's learning rate is rescaled after each iteration
                      by sqrt(target_kl / KL) (within [0.1, 1.5]; KL grows about quadratically with the step),
                      standing in for the natural gradient's normalised step

With normalised advantages the demo term reads as DAPG's: every demonstration pair is weighted like an
online sample of advantage lambda0 * lambda1^k, a weight that fades as the policy improves on its own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from takeover.config import Config, config_field, with_default

from .actor import TanhActor
from .buffers import ReplayBuffer
from .critics import value_net
from .errors import FinetuneError
from .rlpd import RLPDConfig


@dataclass
class DAPGConfig(Config):
    error: ClassVar[type[Exception]] = FinetuneError
    gamma: float = with_default(RLPDConfig, "gamma", 0.99)
    gae_lambda: float = config_field(0.95, min=0, max=1, help="GAE lambda.")
    steps_per_iter: int = config_field(2000, min=1, help="Env steps collected per policy iteration (whole episodes).")
    epochs: int = config_field(5, min=1, help="PPO epochs per iteration.")
    minibatch: int = config_field(256, min=1, help="PPO minibatch size.")
    clip: float = config_field(0.2, above=0, help="PPO ratio clip.")
    actor_lr: float = config_field(3e-5, above=0, help="Actor learning rate.")
    value_lr: float = config_field(1e-3, above=0, help="Value network learning rate.")
    value_hidden: tuple = config_field((256, 256), help="Hidden widths of the value network.")
    lambda0: float = config_field(0.1, min=0, help="Demo-term weight at iteration 0.")
    lambda1: float = config_field(0.95, above=0, max=1, help="Per-iteration decay of the demo-term weight.")
    target_kl: float = config_field(0.05, above=0, help="Approximate KL per iteration the step size is steered to.")
    # A BC actor's std is small (pre-tanh 0.02 on most Lift dims), so a fixed 3e-5 moved the policy by a KL of
    # 1-340 per iteration on Lift (measured), where 0.05 was asked: every iteration was one overshooting epoch.
    adaptive_lr: bool = config_field(True, help="Rescale actor_lr toward target_kl after each iteration (False: stop "
                                                "early only).")
    bound_weight: float = with_default(RLPDConfig, "bound_weight", 1.0)
    grad_clip: float = with_default(RLPDConfig, "grad_clip", 1.0)


def gae(rewards, values, next_values, terminals, episode_ends, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates over concatenated episodes (a new episode starts after each end;
    the last step of a cut episode bootstraps from its next state's value, a terminal one does not)."""
    adv = np.zeros_like(rewards)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        if episode_ends[t]:
            running = 0.0
        delta = rewards[t] + gamma * (1.0 - terminals[t]) * next_values[t] - values[t]
        running = delta + gamma * lam * (1.0 - terminals[t]) * running
        adv[t] = running
    return adv


class DAPG:
    def __init__(self, cfg: DAPGConfig, actor: TanhActor, seed: int = 0):
        self.cfg = cfg
        self.actor = actor
        self.value = value_net(actor.policy.obs_features.out_dim, cfg.value_hidden)
        self.actor_opt = torch.optim.Adam(actor.policy.parameters(), lr=cfg.actor_lr)
        self.value_opt = torch.optim.Adam(self.value.parameters(), lr=cfg.value_lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.iteration = 0
        self.warmed_up = True

    def demo_weight(self) -> float:
        return self.cfg.lambda0 * self.cfg.lambda1 ** self.iteration

    def train_on(self, batch: dict, demo: ReplayBuffer) -> dict:
        """One policy iteration on the episodes just collected (`online_transitions` output)."""
        cfg = self.cfg
        obs, next_obs = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["next_obs"])
        u = torch.from_numpy(batch["pre_tanh"])
        with torch.no_grad():
            mu, sigma = self.actor(obs)
            old_logp = TanhActor.log_prob(mu, sigma, u)
            feats, next_feats = self.actor.features(obs), self.actor.features(next_obs)
            values = self.value(feats).squeeze(-1).numpy()
            next_values = self.value(next_feats).squeeze(-1).numpy()
        adv = gae(batch["rewards"], values, next_values, batch["terminals"], batch["episode_ends"], cfg.gamma,
                  cfg.gae_lambda)
        returns = torch.from_numpy(adv + values)
        adv_t = torch.from_numpy((adv - adv.mean()) / (adv.std() + 1e-8))
        weight = self.demo_weight()
        n = len(adv)
        stats: dict = {"demo_weight": weight}
        self.actor.train()
        updates, surrogate = 0, torch.zeros(())
        for idx in self._minibatches(n):
            mu, sigma, raw = self.actor.distribution(obs[idx])
            logp = TanhActor.log_prob(mu, sigma, u[idx])
            if updates and (old_logp[idx] - logp.detach()).mean().item() > 1.5 * cfg.target_kl:
                break
            ratio = (logp - old_logp[idx]).exp()
            surrogate = torch.min(ratio * adv_t[idx], ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv_t[idx]).mean()
            loss = -surrogate + cfg.bound_weight * TanhActor.overshoot(raw).mean()
            if weight > 0 and len(demo):
                d = demo.sample(len(idx), self.generator)
                loss = loss - weight * self.actor.log_prob_of_action(d["obs"], d["actions"]).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.actor.policy.parameters(), cfg.grad_clip)
            self.actor_opt.step()
            updates += 1
        for idx in self._minibatches(n):  # the value network takes all its epochs whenever the actor stops
            value_loss = ((self.value(feats[idx]).squeeze(-1) - returns[idx]) ** 2).mean()
            self.value_opt.zero_grad(set_to_none=True)
            value_loss.backward()
            self.value_opt.step()
        with torch.no_grad():
            mu, sigma = self.actor(obs)
            kl = (old_logp - TanhActor.log_prob(mu, sigma, u)).mean().item()
        stats.update(approx_kl=kl, actor_updates=updates, value_loss=value_loss.item(), surrogate=surrogate.item(),
                     actor_lr=self.actor_opt.param_groups[0]["lr"])
        if cfg.adaptive_lr:
            scale = min(1.5, max(0.1, (cfg.target_kl / max(kl, 1e-12)) ** 0.5))
            for group in self.actor_opt.param_groups:
                group["lr"] = min(cfg.actor_lr * 10, max(cfg.actor_lr / 1000, group["lr"] * scale))
        self.actor.eval()
        self.iteration += 1
        return stats

    def _minibatches(self, n: int):
        """`epochs` shuffled passes over n rows, in minibatches of row indices."""
        for _ in range(self.cfg.epochs):
            perm = torch.randperm(n, generator=self.generator)
            yield from (perm[start:start + self.cfg.minibatch] for start in range(0, n, self.cfg.minibatch))

    def state_dict(self) -> dict:
        return {"value": self.value.state_dict(), "actor_opt": self.actor_opt.state_dict(),
                "value_opt": self.value_opt.state_dict(), "generator": self.generator.get_state(),
                "iteration": torch.tensor(self.iteration)}

    def load_state_dict(self, state: dict):
        self.value.load_state_dict(state["value"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.value_opt.load_state_dict(state["value_opt"])
        self.generator.set_state(state["generator"])
        self.iteration = int(state["iteration"])
