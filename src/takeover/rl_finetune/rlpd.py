"""RLPD-style off-policy fine-tuning: SAC from a behaviour-cloned actor, with the demonstrations kept
in every batch (Ball et al. 2023, "Efficient Online RL with Offline Data").

    every update batch  = half demonstrations, half online transitions (`demo_fraction`)
    critics             = an ensemble of `num_critics` LayerNorm Q-networks; the Bellman target takes
                          the min over a random `target_subset` of the target networks
    update-to-data      = `utd` critic updates per environment step, one actor update per env step
    actor loss          = alpha * log pi(a|s) - mean_i Q_i(s, a)  (+ `bc_weight` * BC on demo rows)
    action bound        = the actor's mean passes the bound in gradient (see `TanhActor.distribution`), and
                          `bound_weight` * its squared excess over [-1, 1] joins the actor loss
    critic warm-up      = `critic_warmup_updates` critic-only updates on the demos before the actor
                          moves, so a good BC actor is not pushed around by an untrained critic
    Monte-Carlo floor   = `mc_floor`: the Bellman target of a transition from an episode that reached
                          its terminal is at least that episode's discounted return-to-go (MCAC,
                          Wilcox et al. 2022). Without it a sparse success reward crawls back along a
                          demonstration about one bootstrap per target-network lag (1/tau updates):
                          after 500 warm-up updates the critic valued 4 Lift demonstrations at -0.14
                          (3,000 updates: 0.15) where their discounted return is 0.85, and the actor
                          then followed that untrained critic away from the BC policy. With the
                          floor the same 500 updates reach 0.85 (mean error 0.001).

The learner is this class; collection, evaluation, saving and resuming live in `run.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch.nn import functional as F

from takeover.config import Config, config_field

from .actor import TanhGaussianActor
from .buffers import ReplayBuffer, mixed_batch
from .critics import CriticEnsemble
from .errors import FinetuneError


@dataclass
class RLPDConfig(Config):
    error: ClassVar[type[Exception]] = FinetuneError
    gamma: float = config_field(0.99, above=0, max=1, help="Discount.")
    batch_size: int = config_field(256, min=2, help="Transitions per update batch.")
    demo_fraction: float = config_field(0.5, min=0, max=1, help="Share of every batch drawn from the demonstrations.")
    # RLPD uses 20; on 2 CPU cores updates dominate
    utd: int = config_field(4, min=1, help="Critic updates per environment step.")
    num_critics: int = config_field(10, min=1, help="Critics in the ensemble.")
    target_subset: int = config_field(2, min=1, help="Bellman target = min over this many randomly chosen target "
                                                     "critics (at most num_critics).")
    critic_hidden: tuple = config_field((256, 256), help="Hidden widths of each critic.")
    critic_lr: float = config_field(3e-4, above=0, help="Critic learning rate.")
    actor_lr: float = config_field(1e-4, above=0, help="Actor learning rate (lower than from scratch: the actor "
                                                       "starts good).")
    alpha_lr: float = config_field(3e-4, min=0, help="Temperature learning rate (0: the temperature stays at "
                                                     "init_alpha, the Lift recipe's entropy-off setting).")
    init_alpha: float = config_field(0.01, above=0, help="Initial temperature (small, so the entropy bonus does not "
                                                         "wash out the BC policy).")
    target_entropy: float | None = config_field(None, help="Entropy target (default: -action_dim, per dimension a std "
                                                           "of ~0.1 before tanh).")
    # off: with a sparse reward of 1 the bonus would outweigh the reward while the BC std is small
    backup_entropy: bool = config_field(False, help="Entropy bonus in the Bellman target.")
    tau: float = config_field(0.005, above=0, max=1, help="Polyak rate of the target critics.")
    bc_weight: float = config_field(0.0, min=0, help="Weight of the BC regulariser on demo rows.")
    # mse leaves the std to the critic and the entropy term
    bc_loss: str = config_field("mse", choices=("mse", "nll"), help="mse: squared error of the mean action; nll: "
                                "negative log-likelihood of the demo action, which anchors the std too.")
    success_replay: bool = config_field(False, help="Online episodes that reached success join the demo buffer "
                                                    "(self-imitation).")
    actor_start_steps: int = config_field(0, min=0, help="Env steps of online data before the actor moves.")
    critic_warmup_updates: int = config_field(0, min=0, help="Critic-only updates on demos before any actor update.")
    mc_floor: bool = config_field(True, help="Bellman target >= the transition's Monte-Carlo return where its "
                                             "episode ended.")
    # the mean's gradient passes the action bound, so this keeps the critic from driving it arbitrarily
    # far out where a later change of mind takes as long to undo
    bound_weight: float = config_field(1.0, min=0, help="Weight of the actor's raw mean action outside [-1, 1], "
                                                        "squared (`TanhActor.overshoot`).")
    grad_clip: float = config_field(10.0, above=0, help="Gradient norm clip.")

    def validate(self):
        if self.target_subset > self.num_critics:
            raise FinetuneError(f"target_subset must lie in [1, num_critics={self.num_critics}], got {self.target_subset}")


class RLPD:
    def __init__(self, cfg: RLPDConfig, actor: TanhGaussianActor, seed: int = 0):
        self.cfg = cfg
        self.actor = actor
        obs_dim = actor.feature_dim
        action_dim = actor.policy.action_dim
        self.critic = CriticEnsemble(obs_dim, action_dim, cfg.num_critics, cfg.critic_hidden)
        self.target = CriticEnsemble(obs_dim, action_dim, cfg.num_critics, cfg.critic_hidden)
        self.target.load_state_dict(self.critic.state_dict())
        self.target.requires_grad_(False)
        self.log_alpha = torch.tensor(float(torch.tensor(cfg.init_alpha).log()), requires_grad=True)
        self.target_entropy = cfg.target_entropy if cfg.target_entropy is not None else -float(action_dim)
        self.actor_opt = torch.optim.Adam(actor.trainable_parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.updates = 0
        self.warmed_up = cfg.critic_warmup_updates == 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # ----- one update ------------------------------------------------------------------------------
    def critic_update(self, batch: dict) -> dict:
        cfg = self.cfg
        obs, next_obs = self.actor.features(batch["obs"]), self.actor.features(batch["next_obs"])
        with torch.no_grad():
            next_action, next_logp, _ = self.actor.sample(batch["next_obs"], self.generator)
            next_action = self.actor.executed(next_action, batch["next_obs"])
            members = torch.randperm(cfg.num_critics, generator=self.generator)[: cfg.target_subset]
            next_q = self.target(next_obs, next_action)[members].min(0).values
            backup = next_q - self.alpha * next_logp if cfg.backup_entropy else next_q
            target = batch["rewards"] + cfg.gamma * (1.0 - batch["terminals"]) * backup
            if cfg.mc_floor:
                target = torch.maximum(target, batch["mc_returns"])  # -inf where the episode was cut
        q = self.critic(obs, batch["actions"])
        loss = F.mse_loss(q, target.expand_as(q), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.target.parameters()):
                tp.lerp_(p, cfg.tau)
        return {"critic_loss": loss.item() / cfg.num_critics, "q": q.mean().item()}

    def actor_update(self, batch: dict) -> dict:
        cfg = self.cfg
        mu, sigma, raw = self.actor.distribution(batch["obs"])
        action, logp, _ = self.actor.sample_from(mu, sigma, self.generator)
        features = self.actor.features(batch["obs"])
        q = self.critic(features, self.actor.executed(action, batch["obs"])).mean(0)
        loss = (self.alpha.detach() * logp - q).mean()
        overshoot = self.actor.overshoot(raw)
        out = {"overshoot": overshoot.mean().item(), "past_bound": (raw.abs() > 1).float().mean().item()}
        if cfg.bound_weight > 0:
            loss = loss + cfg.bound_weight * overshoot.mean()
        if cfg.bc_weight > 0 and batch["from_demo"].any():
            demo = batch["from_demo"].bool()
            if cfg.bc_loss == "nll":
                bc = -self.actor.log_prob_of(mu[demo], sigma[demo], batch["actions"][demo]).mean()
            else:
                mean_action = self.actor.executed(torch.tanh(mu), batch["obs"])
                bc = ((mean_action[demo] - batch["actions"][demo]) ** 2).sum(-1).mean()
            loss = loss + cfg.bc_weight * bc
            out[f"bc_{cfg.bc_loss}"] = bc.item()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.actor.trainable_parameters(), cfg.grad_clip)
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {**out, "actor_loss": loss.item(), "entropy": -logp.mean().item(), "alpha": self.alpha.item()}

    # ----- schedules -------------------------------------------------------------------------------
    def warm_up(self, demo: ReplayBuffer, progress=None) -> dict:
        """Critic-only updates on demonstrations (the actor stays the BC policy)."""
        stats = {}
        empty = ReplayBuffer(demo.data["obs"].shape[1], demo.data["actions"].shape[1], 1)
        for i in range(self.cfg.critic_warmup_updates):
            stats = self.critic_update(mixed_batch(demo, empty, self.cfg.batch_size, 1.0, self.generator))
            if progress and i % 100 == 0:
                progress(i)
        self.warmed_up = True
        return {**stats, **self.demo_values(demo)}

    @torch.no_grad()
    def demo_values(self, demo: ReplayBuffer, rows: int = 2048) -> dict:
        """Mean Q of demonstration (s, a) against their Monte-Carlo return (episodes that ended in
        success; up to `rows` of them): the two should roughly agree once the critic has learnt."""
        ended = np.flatnonzero(np.isfinite(demo.data["mc_returns"]))
        if not len(ended):
            return {}
        pick = ended[torch.randperm(len(ended), generator=self.generator)[:rows].numpy()]
        obs, actions = (torch.from_numpy(demo.data[k][pick]) for k in ("obs", "actions"))
        q = self.critic(self.actor.features(obs), actions).mean(0)
        return {"demo_q": q.mean().item(), "demo_mc_return": float(demo.data["mc_returns"][pick].mean())}

    def train_on(self, new_steps: int, demo: ReplayBuffer, online: ReplayBuffer) -> dict:
        """`utd` critic updates per new env step, one actor (and temperature) update per env step once
        `actor_start_steps` online transitions exist."""
        cfg = self.cfg
        self.actor.train()
        stats: dict = {}
        actor_moves = online.added >= cfg.actor_start_steps
        for i in range(new_steps * cfg.utd):
            batch = mixed_batch(demo, online, cfg.batch_size, cfg.demo_fraction, self.generator)
            stats.update(self.critic_update(batch))
            if actor_moves and (i + 1) % cfg.utd == 0:
                stats.update(self.actor_update(batch))
            self.updates += 1
        self.actor.eval()
        return stats

    # ----- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "target": self.target.state_dict(), "log_alpha": self.log_alpha.detach(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "generator": self.generator.get_state(), "updates": torch.tensor(self.updates),
                "warmed_up": torch.tensor(self.warmed_up)}

    def load_state_dict(self, state: dict):
        self.critic.load_state_dict(state["critic"])
        self.target.load_state_dict(state["target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
        self.generator.set_state(state["generator"])
        self.updates = int(state["updates"])
        self.warmed_up = bool(state["warmed_up"])
