"""DAgger against behaviour cloning at equal expert-label budgets.

From N scripted demonstrations, train the initial BC policy, then per training seed:
  dagger     scripted DAgger: the learner drives mixed with the expert by --beta, the expert labels
             every visited state (correction.dagger, labeller="scripted");
  hg-dagger  HG-DAgger: the learner drives, the simulated operator (correction/operator.py) takes
             over where it strays; only its steps are labels (labeller="operator");
  bc         the same numbers of labels as more scripted demonstrations: for every cumulative label
             count a DAgger round of this seed reached (both kinds), demos are added (same seed
             stream as the first N) until the file has at least that many steps, and BC is trained
             from scratch on them with the same --steps;
  bc-long    (optional, --methods) the same data as bc, trained with as many gradient steps as the
             DAgger policy it matches has had in all, (round + 1) x --steps.
Every point is evaluated on the same fixed evaluation seeds: success with its Wilson 95% interval,
the expert labels it cost (steps of expert-controlled data in its training file) and wall time.

    python benchmarks/dagger.py                      # PickPlaceCan, 5 demos, 3 seeds, 50 episodes
    python benchmarks/dagger.py --task Lift --horizon 100 --demos 2 --rounds 2 --episodes-per-round 8 \\
        --steps 800 --seeds 3 --eval-episodes 20 --head gmm --beta const:0.7

Results: benchmarks/results/dagger_<task>.json (machine, settings, one entry per (method, seed)) and
dagger_<task>.png (success against expert labels, one colour per method, one line per seed, Wilson
95% bars). A finished (method, seed) entry is skipped when the script runs again with the same
settings, so a long run can be continued piece by piece; DAgger runs cut mid-way resume in the round
they were in. Demonstrations and runs go under benchmarks/results/work/<json name>/ (not committed).

Fairness notes: DAgger warm-starts each round from the previous round's policy (--steps more
steps on the aggregate), so its round-k policy has had (k+1) x --steps gradient steps, while each BC
point is trained from scratch with --steps. Checkpoint selection during training is off by default
(--selection-episodes 0: the last weights are evaluated) so that no rollouts beyond the counted ones
inform any method.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DEMO_SEED_STRIDE, RESULTS, evaluate_cached, initial_policy, load_results, plot_label_curves,  # noqa: E402
                    point, save_results, train_bc)

from takeover.correction.dagger import DaggerConfig, run_dagger  # noqa: E402
from takeover.datasets import DemoReader  # noqa: E402
from takeover.datasets.label_budget import demos_with_labels, labels_of  # noqa: E402
from takeover.policies.evaluate import eval_seeds  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402

METHODS = ("dagger", "hg-dagger", "bc", "bc-long")
DEFAULT_METHODS = ("dagger", "hg-dagger", "bc")
DAGGER_METHODS = {"dagger": "scripted", "hg-dagger": "operator"}
COLOURS = {"dagger": "tab:blue", "hg-dagger": "tab:orange", "bc": "tab:green", "bc-long": "tab:olive"}
# Settings that make two runs comparable; a JSON made with other values is not continued.
COMPARED = ("task", "horizon", "demos", "rounds", "episodes_per_round", "steps", "head", "beta",
            "operator_threshold", "eval_episodes", "selection_episodes")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="PickPlaceCan", choices=("PickPlaceCan", "Lift", "NutAssemblySquare"))
    ap.add_argument("--horizon", type=int, default=None, help="episode length (default: the task's)")
    ap.add_argument("--demos", type=int, default=5, help="scripted demos of the initial policy")
    ap.add_argument("--rounds", type=int, default=3, help="DAgger rounds after the initial policy")
    ap.add_argument("--episodes-per-round", type=int, default=10)
    ap.add_argument("--steps", type=int, default=3000, help="gradient steps of every training (BC and each round)")
    ap.add_argument("--head", default="gmm")
    ap.add_argument("--beta", default="const:0.7", help="scripted DAgger's schedule: linear:R, exp:P or const:B")
    ap.add_argument("--operator-threshold", type=float, default=0.5, help="HG-DAgger take-over threshold")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds 0..S-1 (each with its own demos)")
    ap.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes per point (fixed seeds)")
    ap.add_argument("--selection-episodes", type=int, default=0,
                    help="rollouts per checkpoint-selection evaluation during training (0: last weights)")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                    help="any of " + ",".join(METHODS) + " (bc-long: bc with the gradient steps of the DAgger "
                         "policy it matches, (round + 1) x --steps, a control for the warm starts)")
    ap.add_argument("--workers", type=int, default=2, help="rollout worker processes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/dagger_<task>.json)")
    args = ap.parse_args()
    unknown = set(args.methods.split(",")) - set(METHODS)
    if unknown:
        ap.error(f"unknown method(s) {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if args.seeds * DEMO_SEED_STRIDE > eval_seeds(1)[0]:
        ap.error(f"at most {eval_seeds(1)[0] // DEMO_SEED_STRIDE} seeds: more would collect demos on evaluation seeds")
    return args


# ----- results file ----------------------------------------------------------------------------------
def settings_of(args) -> dict:
    return {"task": args.task, "horizon": args.horizon, "demos": args.demos, "rounds": args.rounds,
            "episodes_per_round": args.episodes_per_round, "steps": args.steps, "head": args.head,
            "beta": args.beta, "operator_threshold": args.operator_threshold, "eval_episodes": args.eval_episodes,
            "selection_episodes": args.selection_episodes, "eval_seed_start": eval_seeds(1)[0],
            "demo_seed_stride": DEMO_SEED_STRIDE, "workers": args.workers, "threads": args.threads,
            "bc_training": "from scratch, --steps steps, on the first n demos of the seed's stream",
            "dagger_training": "warm start from the previous round, --steps steps on the aggregate"}


# ----- the pieces --------------------------------------------------------------------------------------
def run_dagger_method(method: str, initial: dict, work: Path, args, seed: int) -> dict:
    """One DAgger run, a round at a time (each round resumes the run), timing every round."""
    out = work / f"seed{seed}" / method
    cfg = DaggerConfig(data=initial["demos"], policy=initial["run"], out=str(out), rounds=1,
                       episodes_per_round=args.episodes_per_round, labeller=DAGGER_METHODS[method],
                       operator_threshold=args.operator_threshold, beta=args.beta, workers=args.workers,
                       eval_episodes=args.eval_episodes, seed=seed,
                       train_overrides={"steps": args.steps, "eval_episodes": args.selection_episodes,
                                        "eval_every": max(1, args.steps // 2), "eval_workers": args.workers,
                                        "threads": args.threads})
    walls = {}
    for k in range(1, args.rounds + 1):
        cfg.rounds = k
        state_file = out / "dagger.json"
        t0 = time.time()
        state = run_dagger(cfg, resume=state_file.is_file())
        walls[k] = time.time() - t0
    points = []
    for r in state["rounds"]:
        report = dict(r, episodes=r["eval_episodes"])  # a round's "episodes" are its rollouts
        p = point(report, r["expert_labels"], walls.get(r["round"], 0.0), round=r["round"], beta=r["beta"],
                  new_labels=r["new_labels"], rollouts=r["episodes"])
        if r["round"] == 0:
            p["wall_s"] = initial["point"]["wall_s"]  # the initial BC (its collection, training and evaluation)
            if r["successes"] != initial["point"]["successes"]:  # same checkpoint, same seeds: should not happen
                p["initial_eval_successes"] = initial["point"]["successes"]
        points.append(p)
    return {"method": method, "seed": seed, "points": points, "wall_s": round(sum(walls.values()), 1),
            "note": "round 0 is the initial BC policy; a round's wall time covers its rollouts, retraining and "
                    "evaluation (round 1 also the re-evaluation of round 0)"}


def run_bc(method: str, spec, initial: dict, budgets: list[tuple[int, str, int]], work: Path, args,
           seed: int) -> dict:
    """BC at every label budget the seed's DAgger rounds reached, on more scripted demos (bc-long: with
    the matched DAgger policy's total gradient steps)."""
    folder = work / f"seed{seed}" / "bc"  # the demo files, shared by bc and bc-long
    folder.mkdir(parents=True, exist_ok=True)
    points = [dict(initial["point"], matches="initial")]
    for budget, matches, round_ in budgets:
        t0 = time.time()
        data = demos_with_labels(spec, folder, Path(initial["demos"]), budget, args.workers)
        steps = args.steps * (round_ + 1) if method == "bc-long" else args.steps
        runs = folder if method == "bc" else work / f"seed{seed}" / method
        ckpt = train_bc(data, runs / f"run_{budget}", args, seed, steps=steps)
        report = evaluate_cached(ckpt, args)
        with DemoReader(data) as reader:
            n = len(reader)
        points.append(point(report, labels_of(data), time.time() - t0, demos=n, budget=budget, matches=matches,
                            train_steps=steps))
        print(f"  {method} seed {seed}: {n} demos, {points[-1]['expert_labels']} labels -> "
              f"{report['success_rate']:.2f}", flush=True)
    return {"method": method, "seed": seed, "points": points, "wall_s": round(sum(p["wall_s"] for p in points[1:]), 1),
            "note": "point 0 is the initial policy; each later point is trained from scratch; wall time covers "
                    "collecting the extra demos, training and evaluation"}


def bc_budgets(results: dict, seed: int) -> list[tuple[int, str, int]]:
    """(labels, which DAgger point, its round) for every DAgger round > 0 of this seed, smallest first,
    no repeats."""
    budgets = {}
    for method in DAGGER_METHODS:
        entry = results["entries"].get(f"{method}/{seed}")
        for p in (entry or {}).get("points", [])[1:]:
            budgets.setdefault(p["expert_labels"], (f"{method} round {p['round']}", p["round"]))
    return [(labels, matches, round_) for labels, (matches, round_) in sorted(budgets.items())]


# ----- plot --------------------------------------------------------------------------------------------
def plot(results: dict, path: Path):
    s = results["settings"]
    plot_label_curves(results, path, "method", COLOURS,
                      f"{s['task']}: {s['demos']} demos + DAgger ({s['head']}, beta {s['beta']}) vs BC")


# ----- main --------------------------------------------------------------------------------------------
def main():
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    out = Path(args.out) if args.out else RESULTS / f"dagger_{args.task}.json"
    results = load_results(out, settings_of(args), COMPARED)
    spec = EnvSpec(task=args.task, horizon=args.horizon)
    work = out.parent / "work" / out.stem  # benchmarks/results/work/dagger_<task> by default
    methods = [m for m in METHODS if m in args.methods.split(",")]
    started = time.time()
    for seed in range(args.seeds):
        todo = [m for m in methods if f"{m}/{seed}" not in results["entries"]]
        if not todo:
            print(f"seed {seed}: done", flush=True)
            continue
        initial = initial_policy(spec, work, args, seed)
        print(f"seed {seed}: initial BC {initial['point']['expert_labels']} labels -> "
              f"{initial['point']['success_rate']:.2f}", flush=True)
        for method in todo:
            t0 = time.time()
            if method.startswith("bc"):
                budgets = bc_budgets(results, seed)
                if not budgets:
                    print(f"seed {seed}: {method} skipped (no DAgger entry of this seed to match)", flush=True)
                    continue
                entry = run_bc(method, spec, initial, budgets, work, args, seed)
            else:
                entry = run_dagger_method(method, initial, work, args, seed)
            results["entries"][f"{method}/{seed}"] = entry
            save_results(out, results)
            print(f"seed {seed} {method}: " + ", ".join(f"{p['expert_labels']}->{p['success_rate']:.2f}"
                                                        for p in entry["points"])
                  + f" ({time.time() - t0:.0f} s)", flush=True)
            plot(results, out.with_suffix(".png"))
    session = {"methods": methods, "seeds": args.seeds, "date": time.strftime("%Y-%m-%d %H:%M"),
               "wall_s": round(time.time() - started, 1)}
    results.setdefault("sessions", []).append(session)
    save_results(out, results)
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}", flush=True)


if __name__ == "__main__":
    main()
