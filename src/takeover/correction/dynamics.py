"""A learned residual dynamics model s' = s + f(s, a) with a Lipschitz bound (CCIL's model).

    model, fit = fit_dynamics(states, actions, next_states, cfg)     # arrays (N, D), (N, A), (N, D)
    model.delta(s, a)            # f(s, a) in raw units (torch)
    model.step_error(s, a, s2)   # one-step error |s + f(s, a) - s2| in normalised units
    model.lipschitz_bound()      # product of the layers' spectral norms (spectral mode: <= K)

The network g sees normalised inputs, x = (s - mean_s) / std_s and u = (a - mean_a) / std_a, and
predicts the normalised step (s' - s - mean_d) / std_d. The bound K applies to g. In spectral mode
every linear layer's weight is scaled by min(1, c / sigma(W)) with c = K^(1/layers) and sigma the
exact largest singular value, so the product of the layers' norms, an upper bound of g's Lipschitz
constant (ReLU is 1-Lipschitz), is at most K at every step. In soft mode (CCIL's soft sampling)
the weights are free and the loss adds a penalty on sampled local ratios |g(z + d) - g(z)| / |d| above K.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .ccil_config import CcilConfig

log = logging.getLogger(__name__)

STD_FLOOR = 1e-6


class ClippedSpectralLinear(nn.Linear):
    """nn.Linear whose effective weight has spectral norm at most `bound`. Training estimates sigma by
    power iteration (vectors kept between steps, as torch's spectral_norm does; an SVD per step costs
    5x the step); evaluation uses the exact sigma, so the bound holds exactly for the model in use."""

    def __init__(self, n_in: int, n_out: int, bound: float):
        super().__init__(n_in, n_out)
        self.bound = float(bound)
        self.register_buffer("_u", nn.functional.normalize(torch.randn(n_out), dim=0))

    def sigma(self) -> torch.Tensor:
        if not self.training:
            return torch.linalg.matrix_norm(self.weight, ord=2)
        with torch.no_grad():
            u = self._u
            for _ in range(2):
                v = nn.functional.normalize(self.weight.t() @ u, dim=0)
                u = nn.functional.normalize(self.weight @ v, dim=0)
            self._u.copy_(u)
        return u @ self.weight @ v

    def effective_weight(self) -> torch.Tensor:
        return self.weight * torch.clamp(self.bound / self.sigma(), max=1.0)

    def forward(self, x):
        return nn.functional.linear(x, self.effective_weight(), self.bias)


class ResidualDynamics(nn.Module):
    def __init__(self, obs_dim: int, action_dim: int, hidden: int = 256, layers: int = 3,
                 lipschitz: str = "spectral", k: float = 6.0):
        super().__init__()
        self.obs_dim, self.action_dim, self.lipschitz, self.k = obs_dim, action_dim, lipschitz, float(k)
        sizes = [obs_dim + action_dim] + [hidden] * (layers - 1) + [obs_dim]
        per_layer = self.k ** (1.0 / layers)
        mods = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            mods.append(ClippedSpectralLinear(a, b, per_layer) if lipschitz == "spectral" else nn.Linear(a, b))
            if i < layers - 1:
                mods.append(nn.ReLU())
        self.net = nn.Sequential(*mods)
        for name in ("s_mean", "s_std", "d_mean", "d_std"):
            self.register_buffer(name, torch.zeros(obs_dim) if "mean" in name else torch.ones(obs_dim))
        self.register_buffer("a_mean", torch.zeros(action_dim))
        self.register_buffer("a_std", torch.ones(action_dim))

    # --- normalisation ----------------------------------------------------------------------------
    def set_stats(self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray):
        d = next_states - states
        for name, arr in (("s", states), ("a", actions), ("d", d)):
            a = torch.as_tensor(arr, dtype=torch.float64)
            getattr(self, f"{name}_mean").copy_(a.mean(0))
            getattr(self, f"{name}_std").copy_(a.std(0, unbiased=False).clamp_min(STD_FLOOR))

    def norm_s(self, s):
        return (s - self.s_mean) / self.s_std

    def norm_a(self, a):
        return (a - self.a_mean) / self.a_std

    # --- the model --------------------------------------------------------------------------------
    def g(self, z: torch.Tensor) -> torch.Tensor:
        """The network on the normalised input z = (x, u): the normalised step."""
        return self.net(z)

    def delta(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """f(s, a), raw units."""
        y = self.g(torch.cat([self.norm_s(s), self.norm_a(a)], -1))
        return self.d_mean + self.d_std * y

    def delta_in_x(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """f in normalised state coordinates: the step of x = norm_s(s) when s takes action a (raw)."""
        y = self.g(torch.cat([x, self.norm_a(a)], -1))
        return (self.d_mean + self.d_std * y) / self.s_std

    def predict(self, s, a):
        return s + self.delta(s, a)

    def step_error(self, s, a, s_next) -> torch.Tensor:
        """|s + f(s, a) - s_next| in normalised state units, per row."""
        return torch.linalg.vector_norm((self.predict(s, a) - s_next) / self.s_std, dim=-1)

    def lipschitz_bound(self) -> float:
        """Product of the linear layers' (effective) spectral norms: an upper bound of g's Lipschitz constant."""
        out = 1.0
        with torch.no_grad():
            for m in self.net:
                if isinstance(m, nn.Linear):
                    sigma = float(torch.linalg.matrix_norm(m.weight.double(), ord=2))
                    out *= min(sigma, m.bound) if isinstance(m, ClippedSpectralLinear) else sigma
        return out

    def local_lipschitz(self, s: torch.Tensor, a: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the spectral norm of g's Jacobian in (x, u) (the local Lipschitz constant of the
        network), and that of the state Jacobian d f / d x in normalised state coordinates (below 1,
        fixed-point iteration on s_G converges)."""
        z = torch.cat([self.norm_s(s), self.norm_a(a)], -1).detach()
        jac_g = torch.func.vmap(torch.func.jacrev(self.g))(z)  # (N, D, D + A)
        jac_x = jac_g[..., :self.obs_dim] * (self.d_std / self.s_std)[:, None]
        norm = lambda j: torch.linalg.matrix_norm(j.double(), ord=2).detach().cpu().numpy()  # noqa: E731
        return norm(jac_g), norm(jac_x)


@dataclass
class DynamicsFit:
    """What fitting the model measured (JSON-able via to_dict)."""
    train_transitions: int
    valid_transitions: int
    train_error_mean: float  # one-step error, normalised units
    train_error_p90: float
    valid_error_mean: float | None
    valid_error_p90: float | None
    zero_model_error_mean: float  # s' = s (no model), on the same transitions: the baseline the model must beat
    lipschitz_bound: float  # product of layer spectral norms
    local_lipschitz_mean: float  # spectral norm of g's Jacobian at the expert transitions
    local_lipschitz_max: float
    state_lipschitz_max: float  # of f in normalised state coordinates
    final_loss: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _penalty(model: ResidualDynamics, z: torch.Tensor, radius: float, k: float, gen: torch.Generator) -> torch.Tensor:
    d = torch.randn(z.shape, generator=gen, device=z.device) * radius
    ratio = torch.linalg.vector_norm(model.g(z + d) - model.g(z), dim=-1) / torch.linalg.vector_norm(d, dim=-1)
    return torch.relu(ratio - k).pow(2).mean()


def _quantile(x: np.ndarray, q: float) -> float | None:
    return float(np.quantile(x, q)) if len(x) else None


def fit_dynamics(states: np.ndarray, actions: np.ndarray, next_states: np.ndarray,
                 cfg: CcilConfig) -> tuple[ResidualDynamics, DynamicsFit, np.ndarray]:
    """Train the model on transitions (s, a, s'); returns the model (eval mode), its fit report and the
    boolean mask of the transitions it trained on (the rest are the validation split)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n = len(states)
    n_valid = int(round(cfg.valid_fraction * n)) if n > 1 else 0
    order = rng.permutation(n)
    train = np.ones(n, bool)
    train[order[:n_valid]] = False
    device = torch.device(cfg.device)
    model = ResidualDynamics(states.shape[1], actions.shape[1], cfg.hidden, cfg.layers, cfg.lipschitz, cfg.lipschitz_k)
    model.set_stats(states[train], actions[train], next_states[train])
    model.to(device)
    S, A, S2 = (torch.as_tensor(x, dtype=torch.float32, device=device) for x in (states, actions, next_states))
    z = torch.cat([model.norm_s(S), model.norm_a(A)], -1)
    y = (S2 - S - model.d_mean) / model.d_std
    tr = torch.as_tensor(np.flatnonzero(train), device=device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batches = max(1, math.ceil(len(tr) / cfg.batch_size))
    loss = torch.zeros(())
    for epoch in range(cfg.epochs):
        perm = tr[torch.randperm(len(tr), generator=gen).to(device)]
        for b in range(batches):
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            loss = nn.functional.mse_loss(model.g(z[idx]), y[idx])
            if cfg.lipschitz == "soft" and cfg.soft_weight > 0:
                loss = loss + cfg.soft_weight * _penalty(model, z[idx], cfg.soft_radius, cfg.lipschitz_k, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        err = model.step_error(S, A, S2).cpu().numpy()
        zero = torch.linalg.vector_norm((S2 - S) / model.s_std, dim=-1).cpu().numpy()
    jac_g, jac_x = model.local_lipschitz(S, A)
    fit = DynamicsFit(
        train_transitions=int(train.sum()), valid_transitions=int((~train).sum()),
        train_error_mean=float(err[train].mean()), train_error_p90=float(np.quantile(err[train], 0.9)),
        valid_error_mean=float(err[~train].mean()) if (~train).any() else None,
        valid_error_p90=_quantile(err[~train], 0.9),
        zero_model_error_mean=float(zero.mean()),
        lipschitz_bound=model.lipschitz_bound(),
        local_lipschitz_mean=float(jac_g.mean()), local_lipschitz_max=float(jac_g.max()),
        state_lipschitz_max=float(jac_x.max()), final_loss=float(loss.detach()))
    log.info("dynamics: one-step error train %.4f valid %s (no model %.4f), Lipschitz bound %.2f",
             fit.train_error_mean, fit.valid_error_mean, fit.zero_model_error_mean, fit.lipschitz_bound)
    return model, fit, train
