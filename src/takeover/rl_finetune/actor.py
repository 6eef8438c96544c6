"""The RL actor: a behaviour-cloned Gaussian policy read as a tanh-squashed Gaussian.

The fine-tuned network IS the checkpoint's `GaussianPolicy` (same weights, same normaliser, same
checkpoint format), so `takeover eval`, `takeover dagger` and `takeover train --init-from` read a
fine-tuned policy like any other. SAC and PPO need a bounded action with a log-likelihood, so the
head's output is re-read in pre-tanh space:

    x     = clip(unnormalise(mean), -B, B)   the raw action the BC policy executes; B = ACTION_BOUND
    mu    = atanh(x)
    sigma = min(s / (1 - x^2), MAX_PRE_TANH_STD)   s = the head's std in raw action units
    a     = tanh(mu + sigma * eps)

so the deterministic action tanh(mu) equals the checkpoint's action before any update (within 1 - B
on saturated dimensions, e.g. a gripper command of exactly +1), and sampling explores around it with
about the std the BC head learnt, in action units. Dividing by tanh's slope 1 - x^2 keeps a small
change of x a small change in likelihood near the bound (without it one Adam step moved the
log-likelihood of a saturated gripper dimension by tens of nats); the cap keeps a saturated
gripper from flipping sign under exploration noise. Only the head's `gaussian` form qualifies: a mixture (gmm), a
diffusion or autoregressive head has no reparameterisable tanh-Gaussian to fine-tune, and action
chunks or observation histories would make the RL step something other than one control step.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .errors import FinetuneError

ACTION_BOUND = 0.99
MAX_PRE_TANH_STD = 0.5  # at 1.0 a BC gripper std of ~0.3 flipped the gripper often enough that no exploring Lift episode succeeded
FINETUNABLE_HEADS = ("gaussian",)
FINETUNABLE = "gaussian heads with obs_horizon 1 and action_horizon 1 on low-dim observations"
MIN_STD = 0.02  # raw action units: a BC std near 0 would make log-likelihoods (and SAC's entropy term) explode


def check_finetunable(policy, where: str):
    c = policy.config
    if c.head not in FINETUNABLE_HEADS:
        raise FinetuneError(f"{where}: a {c.head} head cannot be fine-tuned with RL; fine-tunable: {FINETUNABLE} "
                            f"(train one with `takeover train --head gaussian`)")
    if c.obs_horizon != 1 or c.action_horizon != 1:
        raise FinetuneError(f"{where}: obs_horizon {c.obs_horizon} / action_horizon {c.action_horizon}; "
                            f"fine-tunable: {FINETUNABLE}")
    if policy.shapes.image_keys:
        raise FinetuneError(f"{where}: reads camera images {list(policy.shapes.image_keys)}; fine-tunable: {FINETUNABLE}")


def tanh_log_det(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2), numerically stable."""
    return 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))


class TanhGaussianActor(nn.Module):
    """What the RL learners need of an actor, over rows of the replay buffer ("obs"):
    `distribution(rows) -> (mu, sigma, raw)` pre-tanh, `sample`, the log-likelihoods, `executed(a, rows)`
    (the action the environment runs for the actor's output a), `deterministic(rows)` (executed),
    `features(rows)` (what the critics read), `feature_dim`, `trainable_parameters()`.
    Subclasses: `TanhActor` (the gaussian head itself) and `residual.ResidualActor`."""

    @staticmethod
    def overshoot(raw: torch.Tensor) -> torch.Tensor:
        """(B,) squared distance of the raw mean action outside [-1, 1]: zero for any action the
        environment executes as asked, so a penalty on it leaves in-range behaviour alone."""
        return F.relu(raw.abs() - 1.0).pow(2).sum(-1)

    @staticmethod
    def log_prob(mu, sigma, u) -> torch.Tensor:
        """(B,) log-likelihood of the action tanh(u)."""
        normal = -0.5 * ((u - mu) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)
        return (normal - tanh_log_det(u)).sum(-1)

    def forward(self, obs: torch.Tensor):
        """Buffer rows (B, D) -> pre-tanh mean and std, (B, A) each."""
        mu, sigma, _ = self.distribution(obs)
        return mu, sigma

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None):
        """-> action (B, A) in (-1, 1), its log-likelihood (B,), the pre-tanh sample u (B, A)."""
        return self.sample_from(*self(obs), generator)

    def sample_from(self, mu: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator | None = None):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        u = mu + sigma * eps
        return torch.tanh(u), self.log_prob(mu, sigma, u), u

    def executed(self, action: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """The action the environment runs when the actor outputs `action` at buffer rows `obs`."""
        return action

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        return self.executed(torch.tanh(self(obs)[0]), obs)


class TanhActor(TanhGaussianActor):
    def __init__(self, policy):
        super().__init__()
        check_finetunable(policy, "policy")
        self.policy = policy

    @property
    def feature_dim(self) -> int:
        return self.policy.obs_features.out_dim

    @property
    def row_dim(self) -> int:
        """Values per buffer row: the flat observation."""
        return self.policy.shapes.obs_dim

    def trainable_parameters(self):
        return self.policy.parameters()

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw flat observations (B, D) -> the normalised vector the critics read too."""
        return self.policy.normalize_obs(obs)

    def distribution(self, obs: torch.Tensor):
        """-> pre-tanh mean, pre-tanh std, and the head's raw mean action (B, A) each (the raw mean may lie
        outside [-1, 1]; `overshoot` measures by how much)."""
        p = self.policy
        mean, std = p._distribution(p.encoder(p.normalize_obs(obs)[:, None]))
        n = p.normalizer
        scale = n.action_half_range if n.action_norm == "minmax" else n.action_std
        raw = n.unaction(mean)
        # The mean is clipped in value but straight through in gradient: a hard clamp gives a raw mean past
        # the bound zero gradient, so neither the critic nor the BC term could pull it back. Lift RLPD (seed
        # 1, shaped reward): the 5 evaluation episodes that flew off the workspace had raw means of 8-19 on
        # the arm dimensions, outside the bound on 40-85% of their steps, where the actor could not learn.
        # The std keeps the hard clamp: through it the NLL term would push a saturated gripper's raw mean
        # outward without end (a narrower std in gradient that never comes in value).
        clamped = raw.clamp(-ACTION_BOUND, ACTION_BOUND)
        x = raw + (clamped - raw).detach()
        sigma = ((std * scale).clamp(min=MIN_STD) / (1 - clamped ** 2)).clamp(max=MAX_PRE_TANH_STD)
        return torch.atanh(x), sigma, raw

    def log_prob_of_action(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Log-likelihood of a given action (a demonstration's), clipped inside the bound first."""
        return self.log_prob_of(*self(obs), action)

    @classmethod
    def log_prob_of(cls, mu: torch.Tensor, sigma: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The same for an already computed (mu, sigma), which saves the forward pass."""
        return cls.log_prob(mu, sigma, torch.atanh(action.clamp(-ACTION_BOUND, ACTION_BOUND)))
