"""The corrections study: what each way of correcting behaviour cloning's drift is worth per expert label.

Per task and training seed, at label budgets of about 5, 10 and 20 scripted demonstrations' worth of
expert labels (--budgets, in demos; one demo's worth = the mean length of the seed's first 5 demos),
every method trains the same head with the same gradient steps and is evaluated on the same fixed
evaluation seeds:

  bc          scripted demos of the seed's stream until the budget is met;
  dart-fixed  the scripted expert with fixed Gaussian noise on the executed arm action (--dart-std);
              the clean command is the label; every noisy episode is kept (its labels are valid
              wherever it went) until the budget is met;
  dart-fit    DART with the noise refitted each iteration to the learner's error against the expert
              (correction/dart.py), from --initial-demos clean demos;
  dagger      scripted DAgger (beta mixture, --beta) from --initial-demos clean demos and their BC policy;
  hg-dagger   HG-DAgger with the simulated operator (correction/operator.py), same start;
  ccil        the bc demos of the budget plus CCIL corrective labels from a learned dynamics model
              (correction/ccil.py): no extra expert labels.

Every expert label counts, whichever way it was obtained (a DAgger round's labels, a noisy episode's
labels, a failed demo's labels when it is kept). Round-based methods (dart-fit, dagger, hg-dagger)
add --episodes-per-round episodes per round and are evaluated at the first round whose labels reach
each budget, so their points sit at or a little above the budget: the JSON and the table give the
actual label counts.

The compounding-error measurement (--compounding): from the same start states (the first
--compounding-episodes evaluation seeds), the policy and the scripted expert each run the full horizon;
d(t) = |x_policy(t) - x_expert(t)| with x = (end-effector position, object position), and the off-path
distance off(t) = min_s |x_policy(t) - x_expert(s)| (how far the policy is from anywhere on the expert's
path, whatever its pace). Reported per method at the --compounding-at budget (default the largest, where
the policies succeed most): mean d(t) and off(t), the slope of a linear fit of d(t), and the exponent p of
the cumulative cost C(T) = sum_{t<T} d(t) ~ T^p (behaviour cloning's bound is O(eps T^2), DAgger's
O(eps T)), with the R^2 of a linear and of a quadratic fit of C(T), over the whole horizon and over the
expert's working window (up to its median success step; after it the expert stands still and d(t)
saturates). A table over the seeds closes the run.

    python benchmarks/corrections.py --task PickPlaceCan                  # 3 seeds, 50 episodes per point
    python benchmarks/corrections.py --task Lift --horizon 100 --seeds 1 --eval-episodes 20 --steps 800
    # one process per seed, one core each, sharing the JSON (its writes merge under a lock):
    python benchmarks/corrections.py --task NutAssemblySquare --seed-list 0 --workers 1 &
    python benchmarks/corrections.py --task NutAssemblySquare --seed-list 1 --workers 1 &

Results: benchmarks/results/corrections_<task>.json + .png; finished (method, seed) entries are kept
when the script runs again with the same settings. Work files: benchmarks/results/work/corrections_<task>/.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, plot_label_curves  # noqa: E402
from dagger import (DEMO_SEED_STRIDE, budget_file, demos_with_labels, evaluate_cached, labels_of, load_results,  # noqa: E402
                    point, save_results, train_bc)

from takeover.correction.ccil_augment import augment_ccil  # noqa: E402
from takeover.correction.ccil_config import CcilConfig  # noqa: E402
from takeover.correction.dagger import DaggerConfig, run_dagger  # noqa: E402
from takeover.correction.dart import DartConfig, run_dart  # noqa: E402
from takeover.datasets import DemoReader  # noqa: E402
from takeover.policies.evaluate import CheckpointAgent, eval_seeds  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.sim.stats import mean_interval, wilson_interval  # noqa: E402
from takeover.sim.rollout import RolloutPool  # noqa: E402
from takeover.sim.noise import ActionNoise  # noqa: E402
from takeover.datasets.scripted_collection import ExpertAgent, collect_scripted  # noqa: E402

METHODS = ("bc", "dart-fixed", "dart-fit", "dagger", "hg-dagger", "ccil")
COLOURS = {"bc": "tab:green", "dart-fixed": "tab:purple", "dart-fit": "tab:pink", "dagger": "tab:blue",
           "hg-dagger": "tab:orange", "ccil": "tab:brown"}
DAGGER_LABELLER = {"dagger": "scripted", "hg-dagger": "operator"}
COMPARED = ("task", "horizon", "budgets", "initial_demos", "episodes_per_round", "steps", "head", "beta",
            "operator_threshold", "dart_std", "eval_episodes", "selection_episodes")
ROUND_STATE = {"dart-fit": ("iterations", "dart.json"), "dagger": ("rounds", "dagger.json"),
               "hg-dagger": ("rounds", "dagger.json")}  # where a round-based run keeps its rounds
STREAM_FOLDER = {"bc": "bc", "ccil": "bc", "dart-fixed": "dart-fixed"}  # where each stream method's demos grow
MAX_ROUNDS = 60  # a round-based method that stops gaining labels (an operator who never takes over) ends here


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="PickPlaceCan", choices=("PickPlaceCan", "Lift", "NutAssemblySquare"))
    ap.add_argument("--horizon", type=int, default=None, help="episode length (default: the task's)")
    ap.add_argument("--budgets", default="5,10,20", help="label budgets in demonstrations' worth")
    ap.add_argument("--initial-demos", type=int, default=3, help="clean demos that start the round-based methods")
    ap.add_argument("--episodes-per-round", type=int, default=2, help="episodes per DAgger/DART round")
    ap.add_argument("--steps", type=int, default=3000, help="gradient steps of every training")
    ap.add_argument("--head", default="gmm")
    ap.add_argument("--beta", default="const:0.7", help="scripted DAgger's schedule")
    ap.add_argument("--operator-threshold", type=float, default=0.5)
    ap.add_argument("--dart-std", type=float, default=0.1, help="dart-fixed: std of the noise on each arm dimension")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0..N-1")
    ap.add_argument("--seed-list", default=None,
                    help="these training seeds instead (e.g. 1,2): one process per seed can share the JSON")
    ap.add_argument("--eval-episodes", type=int, default=50)
    ap.add_argument("--selection-episodes", type=int, default=0, help="checkpoint selection rollouts (0: last weights)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--compounding", action="store_true", help="also measure the compounding error (see above)")
    ap.add_argument("--compounding-episodes", type=int, default=20)
    ap.add_argument("--compounding-at", type=float, default=None,
                    help="the budget (in demos' worth, one of --budgets) whose policies the compounding "
                         "measurement rolls out (default: the largest, where the policies succeed most)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/corrections_<task>.json)")
    args = ap.parse_args(argv)
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        ap.error(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    args.budget_demos = [float(b) for b in args.budgets.split(",")]
    if args.compounding_at is None:
        args.compounding_at = args.budget_demos[-1]
    elif args.compounding_at not in args.budget_demos:
        ap.error(f"--compounding-at {args.compounding_at:g} is not one of --budgets {args.budgets}")
    try:
        args.seed_ids = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    except ValueError:
        ap.error(f"--seed-list must be integers separated by commas, got {args.seed_list!r}")
    if sorted(args.budget_demos) != args.budget_demos or args.budget_demos[0] <= args.initial_demos:
        ap.error("--budgets must increase and start above --initial-demos")
    return args


def settings_of(args) -> dict:
    return {"task": args.task, "horizon": args.horizon, "budgets": args.budgets, "initial_demos": args.initial_demos,
            "episodes_per_round": args.episodes_per_round, "steps": args.steps, "head": args.head,
            "beta": args.beta, "operator_threshold": args.operator_threshold, "dart_std": args.dart_std,
            "eval_episodes": args.eval_episodes, "selection_episodes": args.selection_episodes,
            "eval_seed_start": eval_seeds(1)[0], "demo_seed_stride": DEMO_SEED_STRIDE, "workers": args.workers,
            "threads": args.threads, "training": "every point from scratch, --steps steps, except the round-based "
                                                 "methods, which warm-start each round from the previous one"}


# ----- the seed's stream and budgets -----------------------------------------------------------------
class SeedWork:
    """A training seed's files: its clean demo stream, the budgets in labels, the initial BC policy."""

    def __init__(self, spec: EnvSpec, work: Path, args, seed: int):
        self.spec, self.args, self.seed = spec, args, seed
        self.folder = work / f"seed{seed}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.first_seed = seed * DEMO_SEED_STRIDE
        five = self.clean_demos(5)
        with DemoReader(five) as reader:
            self.demo_length = labels_of(five) / len(reader)
        self.budgets = [int(round(b * self.demo_length)) for b in args.budget_demos]

    def clean_demos(self, n: int) -> Path:
        """The first n clean demos of the stream (the stream's pool grows as budgets need it)."""
        path = self.folder / f"demos_{n}.hdf5"
        if not path.exists() or labels_of(path) == 0:
            path.unlink(missing_ok=True)
            collect_scripted(self.spec, str(path), n, seed=self.first_seed, workers=self.args.workers)
        return path

    def bc_data(self, budget: int) -> Path:
        return demos_with_labels(self.spec, self.folder / STREAM_FOLDER["bc"], self.clean_demos(5), budget,
                                 self.args.workers)

    def initial_policy(self) -> tuple[Path, Path]:
        demos = self.clean_demos(self.args.initial_demos)
        return demos, train_bc(demos, self.folder / "bc_initial", self.args, self.seed)


def evaluated_point(ckpt: Path, data_labels: int, args, t0: float, **extra) -> dict:
    report = evaluate_cached(ckpt, args)
    return point(report, data_labels, time.time() - t0, checkpoint=str(ckpt), **extra)


# ----- methods ----------------------------------------------------------------------------------------
def run_bc(sw: SeedWork, args) -> list[dict]:
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = sw.bc_data(budget)
        ckpt = train_bc(data, sw.folder / "bc" / f"run_{budget}", args, sw.seed)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget))
    return points


def run_dart_fixed(sw: SeedWork, args) -> list[dict]:
    noise = ActionNoise.from_option(str(args.dart_std), action_dim=7, seed=sw.seed)
    folder = sw.folder / STREAM_FOLDER["dart-fixed"]
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = demos_with_labels(sw.spec, folder, None, budget, args.workers, first_seed=sw.first_seed,
                                 action_noise=noise, keep_failed=True)
        ckpt = train_bc(data, folder / f"run_{budget}", args, sw.seed)
        with DemoReader(data) as reader:
            ok = sum(bool(reader.attrs(d).get("success")) for d in reader.demos)
            n = len(reader)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget, episodes_collected=n,
                                      noisy_expert_success=round(ok / n, 3)))
    return points


def train_overrides(args) -> dict:
    return {"steps": args.steps, "eval_episodes": args.selection_episodes, "eval_every": max(1, args.steps // 2),
            "eval_workers": args.workers, "threads": args.threads}


def run_round_based(method: str, sw: SeedWork, args) -> list[dict]:
    """Rounds (DAgger) or iterations (DART) of --episodes-per-round episodes until the labels pass each
    budget; the first round past a budget is evaluated. The runs' own per-round evaluation is off."""
    demos, initial = sw.initial_policy()
    out = sw.folder / method
    common = dict(data=str(demos), policy=str(initial.parent.parent), out=str(out), workers=args.workers,
                  eval_episodes=0, seed=sw.seed, train_overrides=train_overrides(args))
    rounds_key, state_file = ROUND_STATE[method]
    if method == "dart-fit":
        cfg = DartConfig(iterations=1, episodes=args.episodes_per_round, noise="fit", **common)
        run = run_dart
    else:
        cfg = DaggerConfig(rounds=1, episodes_per_round=args.episodes_per_round, labeller=DAGGER_LABELLER[method],
                           operator_threshold=args.operator_threshold, beta=args.beta, **common)
        run = run_dagger
    t0 = time.time()
    points = [evaluated_point(initial, labels_of(demos), args, t0, round=0)]
    pending = list(sw.budgets)
    for k in range(1, MAX_ROUNDS + 1):
        setattr(cfg, rounds_key, k)
        # the k-th entry, not the last: a resumed state may already hold rounds past k (a killed run's)
        last = run(cfg, resume=(out / state_file).is_file())[rounds_key][k]
        while pending and last["expert_labels"] >= pending[0]:
            extra = {"noise_trace": last["noise_trace"]} if method == "dart-fit" else {}
            points.append(evaluated_point(Path(last["checkpoint"]), last["expert_labels"], args, t0,
                                          budget=pending.pop(0), round=k, **extra))
        if not pending:
            break
    if pending:
        print(f"  {method} seed {sw.seed}: budgets {pending} not reached in {MAX_ROUNDS} rounds", flush=True)
    return points


def run_ccil(sw: SeedWork, args) -> list[dict]:
    """The bc demos of each budget plus CCIL labels (CcilConfig defaults, seeded by the training seed);
    the labels cost no expert query, so the point's label count is the demos'."""
    points = []
    for budget in sw.budgets:
        t0 = time.time()
        data = sw.bc_data(budget)
        aug = sw.folder / "ccil" / f"aug_{budget}.hdf5"
        if not aug.exists():
            aug.parent.mkdir(parents=True, exist_ok=True)
            report = augment_ccil(data, aug, CcilConfig(seed=sw.seed))
            (aug.parent / f"report_{budget}.json").write_text(json.dumps(report, indent=2, default=str))
        report = json.loads((aug.parent / f"report_{budget}.json").read_text())
        ckpt = train_bc(aug, sw.folder / "ccil" / f"run_{budget}", args, sw.seed)
        points.append(evaluated_point(ckpt, labels_of(data), args, t0, budget=budget,
                                      ccil_labels=report["kept"], ccil_counts=report["counts"]))
    return points


RUNNERS = {"bc": run_bc, "dart-fixed": run_dart_fixed, "ccil": run_ccil,
           **{m: (lambda sw, args, m=m: run_round_based(m, sw, args)) for m in ("dart-fit", "dagger", "hg-dagger")}}


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
        ckpt, data = Path(point["checkpoint"]), budget_file(sw.folder / STREAM_FOLDER[method], budget)
        labels = labels_of(data) if data.is_file() else point["expert_labels"]
    else:
        rounds_key, state_file = ROUND_STATE[method]
        state = sw.folder / method / state_file
        rounds = json.loads(state.read_text())[rounds_key] if state.is_file() else []
        past = [r for r in rounds[1:] if r["expert_labels"] >= budget]
        if not past:
            return None
        ckpt, labels = Path(past[0]["checkpoint"]), past[0]["expert_labels"]
    return (ckpt, labels) if ckpt.is_file() else None


def compounding_key(seed: int, args) -> str:
    return f"compounding/{seed}/{args.compounding_at:g}demos"


def drift_after_window(curve: list, window: int) -> float:
    """The slope (m per step) of a line fitted to a distance curve after the expert's working window:
    whether the policy keeps moving away once the expert's task is done, or holds its distance."""
    tail = np.asarray(curve[window:], dtype=float)
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 10 else float("nan")


def compounding_table(results: dict, budget_demos: float) -> str:
    """Per method, over the seeds measured at that budget (the runs with the off-path distance): the
    policies' success in the measurement's episodes, the time-aligned and off-path distances at a few
    steps, C(T)'s fitted exponent over the expert's working window (1: the distance stays level, linear
    cost; 2: it grows linearly, quadratic cost; a bootstrap 95% interval over the starts where the run
    has one) and the off-path drift after the window."""
    runs = [v for k, v in results.items() if k.startswith("compounding/") and v.get("budget_demos") == budget_demos
            and all("mean_offpath_distance" in m for m in v["methods"].values())]
    if not runs:
        return ""
    window = min(r.get("expert_window") or 0 for r in runs)
    horizon = min(len(m["mean_distance"]) for r in runs for m in r["methods"].values())
    steps = [t for t in (25, 50, 100, 200) if t < horizon] + [horizon - 1]

    def exponent(fits: list[dict]) -> str:
        ci = f" [{fits[0]['cost_exponent_ci95'][0]:.2f}, {fits[0]['cost_exponent_ci95'][1]:.2f}]" \
            if len(fits) == 1 and "cost_exponent_ci95" in fits[0] else ""
        return f"{np.mean([f['cost_exponent'] for f in fits]):.2f}{ci}" if fits else "n/a"

    episodes = runs[0]["seeds"][1] - runs[0]["seeds"][0] + 1
    lines = [f"compounding at ~{budget_demos:g} demos' worth, {len(runs)} seed(s) x {episodes} starts, "
             f"expert window {window} steps (distances in m; means over the seeds)",
             "| method | policy success | " + " | ".join(f"d({t}) / off({t})" for t in steps)
             + " | C(T) ~ T^p in the window, time-aligned | off-path | off-path drift after the window, mm/100 steps |",
             "|---|---|" + "---|" * (len(steps) + 3)]
    for method in METHODS:
        per = [r["methods"][method] for r in runs if method in r["methods"]]
        if not per:
            continue
        cells = [f"{np.mean([m['mean_distance'][t] for m in per]):.3f} / "
                 f"{np.mean([m['mean_offpath_distance'][t] for m in per]):.3f}" for t in steps]
        drift = np.mean([drift_after_window(m["mean_offpath_distance"], window) for m in per]) * 1e5
        lines.append(f"| {method} | {sum(m['success'] for m in per)}/{len(per) * episodes} | " + " | ".join(cells)
                     + f" | {exponent([m['expert_window_fit'] for m in per if 'expert_window_fit' in m])}"
                     + f" | {exponent([m['offpath_window_fit'] for m in per if 'offpath_window_fit' in m])}"
                     + f" | {drift:+.1f} |")
    return "\n".join(lines)


# ----- report -------------------------------------------------------------------------------------------
def table(results: dict) -> str:
    lines = ["| method | seed | " + " | ".join(f"~{b} demos: labels, success [95% CI]" for b in
                                              results["settings"]["budgets"].split(",")) + " |"]
    lines.append("|---|---|" + "---|" * len(results["settings"]["budgets"].split(",")))
    for key, entry in sorted(results["entries"].items()):
        cells = [f"{p['expert_labels']}: {p['success_rate']:.2f} [{p['ci95'][0]:.2f}, {p['ci95'][1]:.2f}]"
                 for p in entry["points"] if "budget" in p]
        lines.append(f"| {entry['method']} | {entry['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def points_by_method(results: dict) -> dict[str, dict[int, list]]:
    """method -> seed -> that run's budget points, in budget order."""
    by_method: dict[str, dict[int, list]] = {}
    for entry in results["entries"].values():
        by_method.setdefault(entry["method"], {})[entry["seed"]] = [p for p in entry["points"] if "budget" in p]
    return by_method


def paired_table(results: dict) -> str:
    """Each method's success minus BC's on the same training seed, averaged over the seeds, with a t 95%
    interval over the seeds: the seed is the unit, so an interval that excludes 0 means the gain held
    up against the spread between seeds, which the pooled table's interval does not account for."""
    budgets = results["settings"]["budgets"].split(",")
    by_method = points_by_method(results)
    bc = by_method.get("bc", {})
    lines = ["| method - BC | " + " | ".join(f"~{b} demos: mean difference [t 95% over seeds] (seeds)" for b in budgets)
             + " |", "|---|" + "---|" * len(budgets)]
    for method in [m for m in METHODS if m in by_method and m != "bc"]:
        cells = []
        for i in range(len(budgets)):
            diffs = [by_method[method][s][i]["success_rate"] - bc[s][i]["success_rate"] for s in sorted(by_method[method])
                     if s in bc and len(bc[s]) > i and len(by_method[method][s]) > i]
            if not diffs:
                cells.append("n/a")
                continue
            mean, lo, hi = mean_interval(diffs)
            if len(diffs) == 1:
                cells.append(f"{mean:+.2f} (1)")
            elif hi - lo < 1e-9:  # equal differences on every seed: a zero-width interval would claim certainty
                cells.append(f"{mean:+.2f}, the same on all {len(diffs)} seeds (no spread to estimate)")
            else:
                cells.append(f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}] ({len(diffs)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled_table(results: dict) -> str:
    """Each method's successes summed over the training seeds at each budget point (Wilson 95% over all
    their episodes), and on how many seeds it beat BC at that point: seeds move BC itself as much as
    most corrections do, so a pooled rate alone can hide a method that helps on one seed only."""
    budgets = results["settings"]["budgets"].split(",")
    by_method = points_by_method(results)
    bc = by_method.get("bc", {})
    lines = ["| method | seeds | " + " | ".join(f"~{b} demos: success [95% CI], seeds above BC" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    for method in [m for m in METHODS if m in by_method]:
        seeds = sorted(by_method[method])
        cells = []
        for i in range(len(budgets)):
            pts = [by_method[method][s][i] for s in seeds if len(by_method[method][s]) > i]
            k, n = sum(p["successes"] for p in pts), sum(p["episodes"] for p in pts)
            lo, hi = wilson_interval(k, n)
            paired = [s for s in seeds if s in bc and len(bc[s]) > i and len(by_method[method][s]) > i]
            above = sum(by_method[method][s][i]["success_rate"] > bc[s][i]["success_rate"] for s in paired)
            versus = "" if method == "bc" else f", {above} of {len(paired)}"
            cells.append(f"{k}/{n} = {k / max(n, 1):.2f} [{lo:.2f}, {hi:.2f}]{versus}")
        lines.append(f"| {method} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_compounding(results: dict, budget_demos: float, path: Path):
    """Mean time-aligned and off-path distance against the time step, one line per method and seed,
    the expert's working window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {k: v for k, v in results.items() if k.startswith("compounding/") and v.get("budget_demos") == budget_demos
            and all("mean_offpath_distance" in m for m in v["methods"].values())}
    if not runs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for key, run in sorted(runs.items()):
        seed = int(key.split("/")[1])
        for method, m in run["methods"].items():
            for ax, curve in zip(axes, ("mean_distance", "mean_offpath_distance")):
                ax.plot(m[curve], color=COLOURS[method], linestyle=("-", "--", ":")[seed % 3], lw=1.2,
                        label=f"{method} ({m['success']} ok)" if curve == "mean_distance" else None)
        if run.get("expert_window"):
            for ax in axes:
                ax.axvspan(0, run["expert_window"], color="0.9", zorder=0)
    axes[0].set_title("time-aligned |x_policy(t) - x_expert(t)|", fontsize=9)
    axes[1].set_title("off-path min_s |x_policy(t) - x_expert(s)|", fontsize=9)
    for ax in axes:
        ax.set_xlabel("time step (shaded: the expert's working window)")
    axes[0].set_ylabel("mean distance, hand + object (m)")
    axes[0].legend(fontsize=7)
    s = results["settings"]
    fig.suptitle(f"{s['task']}: compounding error at ~{budget_demos:g} demos' worth ({s['head']}); "
                 f"line style = seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(results: dict, path: Path):
    s = results["settings"]
    plot_label_curves(results, path, "method", COLOURS,
                      f"{s['task']}: corrections at equal expert-label budgets ({s['head']})")


def main(argv=None):
    logging.basicConfig(level=logging.WARNING)
    args = parse_args(argv)
    out = Path(args.out) if args.out else RESULTS / f"corrections_{args.task}.json"
    results = load_results(out, settings_of(args), COMPARED)  # refuses a file made with other settings
    spec = EnvSpec(task=args.task, horizon=args.horizon)
    work = out.parent / "work" / out.stem
    methods = [m for m in METHODS if m in args.methods.split(",")]
    for seed in args.seed_ids:
        sw = SeedWork(spec, work, args, seed)
        print(f"seed {seed}: one demo ~{sw.demo_length:.0f} steps, budgets {sw.budgets} labels", flush=True)
        for method in methods:
            key = f"{method}/{seed}"
            if key in results["entries"]:
                continue
            t0 = time.time()
            points = RUNNERS[method](sw, args)
            results["entries"][key] = {"method": method, "seed": seed, "budgets": sw.budgets, "points": points,
                                       "wall_s": round(time.time() - t0, 1)}
            save_results(out, results)
            plot(results, out.with_suffix(".png"))
            print(f"seed {seed} {method}: " + ", ".join(f"{p['expert_labels']}->{p['success_rate']:.2f}"
                                                        for p in points) + f" ({time.time() - t0:.0f} s)", flush=True)
        key = compounding_key(seed, args)
        if args.compounding and key not in results:
            t0 = time.time()
            entries = {e["method"]: e["points"] for e in results["entries"].values() if e["seed"] == seed}
            results[key] = compounding(sw, entries, args)
            results[key]["wall_s"] = round(time.time() - t0, 1)
            save_results(out, results)
            for m, c in results[key]["methods"].items():
                print(f"seed {seed} compounding {m}: d slope {c['d_slope_per_step']:.2e}/step, "
                      f"C(T) ~ T^{c['cost_exponent']:.2f}", flush=True)
    print(table(results))
    print(pooled_table(results))
    print(paired_table(results))
    if args.compounding:
        print(compounding_table(results, args.compounding_at))
        plot_compounding(results, args.compounding_at, out.with_name(f"{out.stem}_compounding.png"))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
