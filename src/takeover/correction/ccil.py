"""CCIL corrective labels (Ke et al. 2024, "CCIL: Continuity-based Data Augmentation for Corrective
Imitation Learning") from a learned residual dynamics model s' = s + f(s, a) (dynamics.py).

For an expert transition (s*_t, a*_t, s*_t+1):

- BackTrack: a state s_G from which the expert's own action a*_t leads to s*_t, i.e. the root of
  s_G + f(s_G, a*_t) = s*_t, solved by Newton's method or fixed-point iteration (s_G <- s*_t - f(s_G, a*_t))
  from s*_t; the label is (s_G, a*_t). It teaches the policy to step back onto the demonstration.
- DisturbedAction: an action a' = a*_t + noise and the state s_G from which a' leads to the expert's
  next state, s_G + f(s_G, a') = s*_t+1 (solved the same way, from s*_t); the label is (s_G, a').

A label is kept only where the model is trustworthy and the label is local: the model's one-step
error at the expert transition is below `max_model_error`, the solver converged, and
|s_G - s*_t| < epsilon (all in normalised state units, see ccil_config.py). `generate_labels` says how
many labels each filter removed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .ccil_config import CcilConfig
from .dynamics import ResidualDynamics

FILTERS = ("model_error", "not_converged", "too_far")  # in the order they are applied


def solve_preimage(model: ResidualDynamics, target: torch.Tensor, actions: torch.Tensor, start: torch.Tensor,
                   method: str = "newton", iters: int = 20, tol: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per row, the state s with s + f(s, a) = target, from `start` (all raw units, (N, D)).
    Returns (s, converged (N,) bool, residual |s + f(s, a) - target| in normalised units)."""
    with torch.no_grad():
        x_target = model.norm_s(target)
        x = model.norm_s(start).clone()

        def residual(x):
            return x + model.delta_in_x(x, actions) - x_target

        if method == "fixed-point":
            for _ in range(iters):
                x = x_target - model.delta_in_x(x, actions)
        elif method == "newton":
            eye = torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
            jac = torch.func.vmap(torch.func.jacrev(lambda xi, ai: model.delta_in_x(xi[None], ai[None])[0]))
            for _ in range(iters):
                r = residual(x)
                if bool((torch.linalg.vector_norm(r, dim=-1) < tol * 1e-2).all()):
                    break
                step = torch.linalg.solve(eye + jac(x, actions), r[..., None])[..., 0]
                x = x - step
        else:
            raise ValueError(f"unknown solver {method!r}")
        res = torch.linalg.vector_norm(residual(x), dim=-1)
        ok = torch.isfinite(res) & torch.isfinite(x).all(-1) & (res < tol)
        return x * model.s_std + model.s_mean, ok, res


@dataclass
class Labels:
    """Kept corrective labels (arrays in raw units) and what generating them measured."""
    obs: np.ndarray  # (n, D) the generated states s_G
    actions: np.ndarray  # (n, A) the label actions
    next_obs: np.ndarray  # (n, D) the expert state the action leads to (by the model)
    source_index: np.ndarray  # (n,) index of the expert transition (s*_t ...) the label was built from
    kind: np.ndarray  # (n,) "backtrack" | "disturbed"
    distance: np.ndarray  # (n,) |s_G - s*_t|, normalised units
    counts: dict  # per kind: tried, kept and removed by each filter (in FILTERS order)

    def __len__(self) -> int:
        return len(self.obs)


def _filter(ok, distance, model_ok, eps) -> tuple[np.ndarray, dict]:
    counts = {"tried": int(len(ok))}
    keep = model_ok.copy()
    counts["model_error"] = int((~keep).sum())
    counts["not_converged"] = int((keep & ~ok).sum())
    keep &= ok
    far = keep & ~(distance < eps)
    counts["too_far"] = int(far.sum())
    keep &= ~far
    counts["kept"] = int(keep.sum())
    return keep, counts


def generate_labels(model: ResidualDynamics, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray,
                    cfg: CcilConfig, action_low: float = -1.0, action_high: float = 1.0,
                    executed: np.ndarray | None = None) -> Labels:
    """BackTrack and/or DisturbedAction labels from the expert transitions (states[i], actions[i],
    next_states[i]), filtered as the module docstring says. `executed`: the actions that actually ran
    where they differ from the labels (noise-injected collection); the model-error filter uses them."""
    dev = next(model.parameters()).device
    S, A, S2 = (torch.as_tensor(x, dtype=torch.float32, device=dev) for x in (states, actions, next_states))
    ran = A if executed is None else torch.as_tensor(executed, dtype=torch.float32, device=dev)
    with torch.no_grad():
        model_ok = (model.step_error(S, ran, S2) < cfg.max_model_error).cpu().numpy()
    rng = np.random.default_rng([cfg.seed, 1])
    parts, counts = [], {}

    def solve(target, act, start):
        return solve_preimage(model, target, act, start, cfg.solver, cfg.solver_iters, cfg.solver_tol)

    if cfg.labels in ("both", "backtrack"):
        s_g, ok, _ = solve(S, A, S)
        dist = torch.linalg.vector_norm((s_g - S) / model.s_std, dim=-1).cpu().numpy()
        keep, counts["backtrack"] = _filter(ok.cpu().numpy(), dist, model_ok, cfg.epsilon)
        parts.append((s_g.cpu().numpy()[keep], actions[keep], states[keep], np.flatnonzero(keep), "backtrack",
                      dist[keep]))
    if cfg.labels in ("both", "disturbed"):
        k = cfg.disturbed_per_step
        idx = np.repeat(np.arange(len(states)), k)
        noisy = np.clip(actions[idx] + rng.normal(0.0, cfg.noise_scale, size=(len(idx), actions.shape[1])),
                        action_low, action_high).astype(np.float32)
        s_g, ok, _ = solve(S2[idx], torch.as_tensor(noisy, device=dev), S[idx])
        dist = torch.linalg.vector_norm((s_g - S[idx]) / model.s_std, dim=-1).cpu().numpy()
        keep, counts["disturbed"] = _filter(ok.cpu().numpy(), dist, model_ok[idx], cfg.epsilon)
        parts.append((s_g.cpu().numpy()[keep], noisy[keep], next_states[idx][keep], idx[keep], "disturbed",
                      dist[keep]))
    D, Ad = states.shape[1], actions.shape[1]
    return Labels(
        obs=np.concatenate([p[0] for p in parts]).astype(np.float32) if parts else np.zeros((0, D), np.float32),
        actions=np.concatenate([p[1] for p in parts]).astype(np.float32) if parts else np.zeros((0, Ad), np.float32),
        next_obs=np.concatenate([p[2] for p in parts]).astype(np.float32) if parts else np.zeros((0, D), np.float32),
        source_index=np.concatenate([p[3] for p in parts]).astype(np.int64) if parts else np.zeros(0, np.int64),
        kind=np.concatenate([np.full(len(p[0]), p[4]) for p in parts]) if parts else np.zeros(0, str),
        distance=np.concatenate([p[5] for p in parts]) if parts else np.zeros(0),
        counts=counts)


def emptying_filter(counts: dict) -> tuple[str, dict]:
    """When no label was kept: the filter that removed the last ones (the last in FILTERS order that
    removed any), and the totals per filter over all kinds."""
    totals = {f: sum(c[f] for c in counts.values()) for f in FILTERS}
    name = [f for f in FILTERS if totals[f]][-1] if any(totals.values()) else FILTERS[0]
    return name, totals
