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
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEMO_SEED_STRIDE, RESULTS, load_results, save_results  # noqa: E402
from corrections_compounding import compounding, compounding_key  # noqa: E402
from corrections_plots import plot, plot_compounding  # noqa: E402
from corrections_runs import METHODS, RUNNERS, SeedWork  # noqa: E402
from corrections_stats import compounding_table, paired_table, pooled_table, table  # noqa: E402

from takeover.policies.evaluate import eval_seeds  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402

COMPARED = ("task", "horizon", "budgets", "initial_demos", "episodes_per_round", "steps", "head", "beta",
            "operator_threshold", "dart_std", "eval_episodes", "selection_episodes")


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
