"""The corrections study's compounding-error measurement: from the same start states the policy and
the scripted expert run the whole horizon; distances, their growth and the cost exponent per method."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import from_repo  # noqa: E402
from corrections_runs import ROUND_STATE, STREAM_FOLDER, SeedWork  # noqa: E402

from takeover.datasets.label_budget import budget_file, labels_of  # noqa: E402
from takeover.datasets.scripted_collection import ExpertAgent  # noqa: E402
from takeover.policies.evaluate import CheckpointAgent, eval_seeds  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.sim.rollout import RolloutPool  # noqa: E402


# ----- compounding error --------------------------------------------------------------------------------
def positions(episode, layout_parts) -> np.ndarray:
    """(T, 6): end-effector position and the object's position per step."""
    obj = episode.obs["object"]
    start, stop = layout_parts
    return np.concatenate([episode.obs["robot0_eef_pos"], obj[:, start:stop]], axis=1)


def object_position_slice(spec: EnvSpec) -> tuple[int, int]:
    """Where the task object's own position sits in the `object` observation (cube_pos, Can_pos, ...)."""
    from takeover.sim.env import object_layout

    layout = object_layout(spec)
    for key, part in layout.slices().items():
        if key.endswith("_pos") and "_to_" not in key and part.stop - part.start == 3:
            return part.start, part.stop
    raise SystemExit(f"{spec.task}: no object position among {layout.keys}")


def trajectories(spec: EnvSpec, factory, seeds, workers: int) -> tuple[list[np.ndarray], list]:
    """Per seed: (T, 6) hand and object positions over the whole horizon, and the first success step."""
    from takeover.datasets import EpisodeRecorder

    part = object_position_slice(spec)
    with RolloutPool(spec, workers if workers > 1 else 0) as pool:
        results = pool.run(factory, seeds, record=EpisodeRecorder, stop_on_success=False)
    return [positions(r.episode, part) for r in results], [r.first_success_step for r in results]


def growth_fit(d: np.ndarray) -> dict:
    """Fits of the per-step distance d(t) and of the cumulative cost C(T) = sum_{t<T} d(t)."""
    t = np.arange(1, len(d) + 1, dtype=float)
    cost = np.cumsum(d)
    slope, intercept = np.polyfit(t, d, 1)
    fit = {"d_slope_per_step": float(slope), "d_intercept": float(intercept)}
    mask = t >= 10
    p, _ = np.polyfit(np.log(t[mask]), np.log(np.maximum(cost[mask], 1e-12)), 1)
    fit["cost_exponent"] = float(p)
    for name, degree in (("linear", 1), ("quadratic", 2)):
        coef = np.polyfit(t, cost, degree)
        resid = cost - np.polyval(coef, t)
        fit[f"cost_r2_{name}"] = float(1 - resid.var() / cost.var())
    return fit


def offpath_distance(policy: np.ndarray, expert: np.ndarray) -> np.ndarray:
    """Per step, the distance from the policy's state to the nearest state anywhere on the expert's
    trajectory from the same start: how far the policy is off the demonstrated path, whatever its pace
    along it (the time-aligned distance also counts a policy that is merely slower)."""
    return np.min(np.linalg.norm(policy[:, None, :] - expert[None, :, :], axis=2), axis=1)


def exponent_interval(per_episode: np.ndarray, seed: int, resamples: int = 500) -> list[float]:
    """A bootstrap 95% interval of C(T)'s fitted exponent over the episodes (the starts): how much of
    the difference between two methods' exponents the choice of starts alone would give."""
    rng = np.random.default_rng(seed)
    d = np.asarray(per_episode)
    ps = [growth_fit(d[rng.integers(0, len(d), len(d))].mean(axis=0))["cost_exponent"] for _ in range(resamples)]
    return [round(float(v), 3) for v in np.percentile(ps, [2.5, 97.5])]


def compounding(sw: SeedWork, entries: dict, args) -> dict:
    """The compounding-error measurement of one seed at the --compounding-at budget (see the docstring)."""
    seeds = eval_seeds(args.compounding_episodes)
    expert, expert_done = trajectories(sw.spec, ExpertAgent(sw.spec.task), seeds, args.workers)
    # After the expert succeeds its state stops moving while a failed policy's keeps its distance: the
    # whole-horizon curve saturates and cannot separate T^2 from T, so the growth is also fitted over the
    # expert's working window (up to its median success step) alone.
    window = int(np.median([d for d in expert_done if d])) if any(expert_done) else None
    budget = sw.budgets[args.budget_demos.index(args.compounding_at)]
    out = {"seeds": [seeds[0], seeds[-1]], "budget": budget, "budget_demos": args.compounding_at,
           "expert_window": window, "expert_success": sum(d is not None for d in expert_done), "methods": {}}
    for method, points in entries.items():
        at = [p for p in points if p.get("budget") == budget]
        if not at:
            continue
        found = policy_at_budget(sw, method, at[0], budget)
        if found is None:
            print(f"  seed {sw.seed} {method}: no policy at {budget} labels in {sw.folder / method} (work folder "
                  "lost?); left out of the compounding measurement", flush=True)
            continue
        ckpt, labels = found
        policy, done = trajectories(sw.spec, CheckpointAgent(str(ckpt)), seeds, args.workers)
        n = min(min(len(a), len(b)) for a, b in zip(policy, expert))
        # per start: (episodes, n) time-aligned and off-path distances, computed once for the means and
        # the bootstrap over the starts
        aligned = np.stack([np.linalg.norm(a[:n] - b[:n], axis=1) for a, b in zip(policy, expert)])
        offpath = np.stack([offpath_distance(a[:n], b[:n]) for a, b in zip(policy, expert)])
        dist, off = aligned.mean(axis=0), offpath.mean(axis=0)
        entry = {"labels": labels, "success": sum(d is not None for d in done),
                 "mean_distance": [round(float(v), 4) for v in dist],
                 "mean_offpath_distance": [round(float(v), 4) for v in off], **growth_fit(dist)}
        if window and window >= 20:
            entry["expert_window_fit"] = growth_fit(dist[:window])
            entry["offpath_window_fit"] = growth_fit(off[:window])
            entry["expert_window_fit"]["cost_exponent_ci95"] = exponent_interval(aligned[:, :window], seed=sw.seed)
            entry["offpath_window_fit"]["cost_exponent_ci95"] = exponent_interval(offpath[:, :window], seed=sw.seed)
        if labels != at[0]["expert_labels"]:
            entry["evaluated_labels"], entry["checkpoint"] = at[0]["expert_labels"], str(ckpt)
            print(f"  seed {sw.seed} {method}: the policy rolled out is a rerun's ({labels} labels), not the "
                  f"evaluated one ({at[0]['expert_labels']}); its success here is its own", flush=True)
        out["methods"][method] = entry
    return out


def policy_at_budget(sw: SeedWork, method: str, point: dict, budget: int) -> tuple[Path, int] | None:
    """The checkpoint of the method's policy at the budget as the work folder holds it now, and the expert
    labels it was trained on; None where there is none. A round-based run that was run again (a lost work
    folder) takes its own rounds, since they depend on its own policies: its state file names the first
    round past the budget, which need not be the evaluated run's round or label count. The other
    methods' data is the seed's stream cut at the budget; their labels are counted again from the file,
    since a stream collected again under other code can differ by a step."""
    if method in STREAM_FOLDER:
        ckpt, data = from_repo(point["checkpoint"]), budget_file(sw.folder / STREAM_FOLDER[method], budget)
        labels = labels_of(data) if data.is_file() else point["expert_labels"]
    else:
        rounds_key, state_file = ROUND_STATE[method]
        state = sw.folder / method / state_file
        rounds = json.loads(state.read_text())[rounds_key] if state.is_file() else []
        past = [r for r in rounds[1:] if r["expert_labels"] >= budget]
        if not past:
            return None
        ckpt, labels = from_repo(past[0]["checkpoint"]), past[0]["expert_labels"]
    return (ckpt, labels) if ckpt.is_file() else None


def compounding_key(seed: int, args) -> str:
    return f"compounding/{seed}/{args.compounding_at:g}demos"
