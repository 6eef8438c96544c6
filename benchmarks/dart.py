"""DART noise against no noise at equal expert-label counts.

From N scripted demonstrations (the same demos and initial BC policy as benchmarks/dagger.py with the
same settings), per training seed and per arm, `takeover dart` runs --iterations iterations of
--episodes scripted-expert episodes each (every step a label, warm-started retraining of --steps):
  fit        noise covariance fitted to the learner's error against the expert (full arm covariance)
  fit-trace  the same fit scaled to the trace of the fixed arm (same magnitude, the learner's shape)
  fixed      fixed isotropic noise, std --fixed-std on the arm dimensions
  clean      no noise: the same number of clean expert episodes (BC on more demos, warm-started)
All arms add the same number of episodes per iteration, so the label counts differ only by episode
lengths (reported). Every point is evaluated on the same fixed evaluation seeds (Wilson 95%).

    python benchmarks/dart.py --task Lift --horizon 100 --demos 2 --iterations 2 --episodes 8 --steps 800 \\
        --seeds 3 --eval-episodes 20 --head gmm

Results: benchmarks/results/dart_<task>.json (settings, machine, one entry per (arm, seed): labels,
success, noise trace, the noisy expert's own success, the learner's fitted error trace) and .png. A
finished (arm, seed) is skipped when the script runs again; a cut run resumes in its iteration.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, initial_policy, load_results, plot_label_curves, save_results  # noqa: E402

from takeover.correction.dart import DartConfig, run_dart  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402

ARMS = ("fit", "fit-trace", "fixed", "clean")
COLOURS = {"fit": "tab:blue", "fit-trace": "tab:purple", "fixed": "tab:orange", "clean": "tab:green"}
COMPARED = ("task", "horizon", "demos", "iterations", "episodes", "steps", "head", "fixed_std", "eval_episodes",
            "selection_episodes")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="Lift", choices=("PickPlaceCan", "Lift", "NutAssemblySquare"))
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--demos", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--episodes", type=int, default=8, help="expert episodes per iteration")
    ap.add_argument("--steps", type=int, default=800, help="gradient steps of the initial BC and each retraining")
    ap.add_argument("--head", default="gmm")
    ap.add_argument("--fixed-std", type=float, default=0.1, help="std of the fixed arm's noise (arm dimensions)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--selection-episodes", type=int, default=0)
    ap.add_argument("--arms", default=",".join(ARMS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/dart_<task>.json)")
    args = ap.parse_args()
    unknown = set(args.arms.split(",")) - set(ARMS)
    if unknown:
        ap.error(f"unknown arm(s) {sorted(unknown)}; choose from {', '.join(ARMS)}")
    return args


def settings_of(args) -> dict:
    return {k: getattr(args, k) for k in COMPARED} | {
        "workers": args.workers, "threads": args.threads, "eval_seed_start": 1_000_000,
        "initial": "benchmarks/dagger.py's initial policy (seed s: demos from s x 100,000, BC --steps)",
        "retraining": "warm start from the previous iteration, --steps steps on the aggregate"}


def run_arm(arm: str, initial: dict, work: Path, args, seed: int) -> dict:
    noise = {"fit": "fit", "fit-trace": "fit", "fixed": str(args.fixed_std), "clean": "0"}[arm]
    target = 6 * args.fixed_std ** 2 if arm == "fit-trace" else 0.0
    out = work / f"seed{seed}" / arm
    cfg = DartConfig(data=initial["demos"], policy=initial["run"], out=str(out), iterations=args.iterations,
                     episodes=args.episodes, noise=noise, target_trace=target, workers=args.workers,
                     eval_episodes=args.eval_episodes, seed=seed,
                     train_overrides={"steps": args.steps, "eval_episodes": args.selection_episodes,
                                      "eval_every": max(1, args.steps // 2), "eval_workers": args.workers,
                                      "threads": args.threads})
    t0 = time.time()
    state = run_dart(cfg, resume=(out / "dart.json").is_file())
    points = [{"iteration": e["iteration"], "expert_labels": e["expert_labels"], "success_rate": e["success_rate"],
               "ci95": e["ci95"], "successes": e["successes"], "episodes": e["eval_episodes"],
               "noise_trace": e["noise_trace"], "noisy_expert_successes": e["noisy_expert_successes"],
               "rollouts": e["episodes"], "learner_error_trace": e["fit"]["error_trace"]}
              for e in state["iterations"]]
    return {"arm": arm, "seed": seed, "noise": noise, "target_trace": target, "points": points,
            "wall_s": round(time.time() - t0, 1)}


def plot(results: dict, path: Path):
    s = results["settings"]
    plot_label_curves(results, path, "arm", COLOURS, f"{s['task']}: {s['demos']} demos + DART ({s['head']})")


def main():
    logging.basicConfig(level=logging.WARNING)
    args = parse_args()
    args.rounds, args.episodes_per_round, args.beta, args.operator_threshold = 0, 0, "", 0  # dagger_bench's fields
    out = Path(args.out) if args.out else RESULTS / f"dart_{args.task}.json"
    results = load_results(out, settings_of(args), COMPARED)
    spec = EnvSpec(task=args.task, horizon=args.horizon)
    work = out.parent / "work" / out.stem
    arms = [a for a in ARMS if a in args.arms.split(",")]
    for seed in range(args.seeds):
        todo = [a for a in arms if f"{a}/{seed}" not in results["entries"]]
        if not todo:
            continue
        initial = initial_policy(spec, work, args, seed)
        print(f"seed {seed}: initial BC {initial['point']['expert_labels']} labels -> "
              f"{initial['point']['success_rate']:.2f}", flush=True)
        for arm in todo:
            entry = run_arm(arm, initial, work, args, seed)
            results["entries"][f"{arm}/{seed}"] = entry
            save_results(out, results)
            plot(results, out.with_suffix(".png"))
            print(f"seed {seed} {arm}: " + ", ".join(
                f"{p['expert_labels']}->{p['success_rate']:.2f}"
                + (f" (noise tr {p['noise_trace']:.3g}, expert {p['noisy_expert_successes']}/{p['rollouts']})"
                   if p["noise_trace"] is not None else "") for p in entry["points"])
                  + f" ({entry['wall_s']:.0f} s)", flush=True)
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
