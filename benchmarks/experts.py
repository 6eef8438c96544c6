"""Benchmark the scripted experts: success rate (Wilson 95% interval) and episode length per task
over fixed seeds, written to benchmarks/results/experts.json with the machine and the commit.

    OMP_NUM_THREADS=1 python benchmarks/experts.py --episodes 100 --workers 2
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from takeover.sim.stats import wilson_interval

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TASKS = ("Lift", "Stack", "PickPlaceCan", "NutAssemblySquare", "Door")
BARS = {"Lift": 0.98, "Stack": 0.90, "PickPlaceCan": 0.90, "NutAssemblySquare": 0.80, "Door": 0.80}

log = logging.getLogger("benchmarks.experts")


def _run_chunk(args):
    task, seeds = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from takeover.sim import EnvSpec, make_env
    from takeover.sim.experts import EXPERT_SUCCESS_HOLD, make_expert
    from takeover.sim.rollout import run_episode

    env = make_env(EnvSpec(task=task), seed=0)
    out = []
    for seed in seeds:
        r = run_episode(env, make_expert(task, seed=seed), seed=seed, success_hold=EXPERT_SUCCESS_HOLD)
        out.append({k: getattr(r, k) for k in ("seed", "success", "length", "first_success_step", "wall_s")})
    env.close()
    return task, out


def git_commit() -> str | None:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed-start", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "experts.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    chunk = max(1, math.ceil(len(seeds) / max(1, args.workers)))
    jobs = [(task, seeds[i:i + chunk]) for task in args.tasks for i in range(0, len(seeds), chunk)]
    results: dict[str, list] = {task: [] for task in args.tasks}
    walls: dict[str, float] = {}
    start_all = time.perf_counter()
    if args.workers > 1:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for task, out in pool.imap_unordered(_run_chunk, jobs):
                results[task].extend(out)
    else:
        for job in jobs:
            t0 = time.perf_counter()
            task, out = _run_chunk(job)
            results[task].extend(out)
            walls[task] = walls.get(task, 0.0) + time.perf_counter() - t0

    report = {
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpu_count": os.cpu_count(),
                    "processor": platform.processor()},
        "git_commit": git_commit(),
        "episodes": args.episodes,
        "seeds": [seeds[0], seeds[-1]],
        "workers": args.workers,
        "total_wall_s": round(time.perf_counter() - start_all, 2),
        "tasks": {},
    }
    for task in args.tasks:
        eps = sorted(results[task], key=lambda e: e["seed"])
        n, k = len(eps), sum(e["success"] for e in eps)
        lengths = np.array([e["length"] for e in eps])
        lo, hi = wilson_interval(k, n)
        episode_wall = float(sum(e["wall_s"] for e in eps))
        report["tasks"][task] = {
            "success_rate": k / n,
            "wilson95": [round(lo, 4), round(hi, 4)],
            "bar": BARS.get(task),
            "meets_bar": (k / n) >= BARS.get(task, 0.0),
            "episodes": n,
            "mean_length": round(float(lengths.mean()), 2),
            "median_length": float(np.median(lengths)),
            "mean_length_successful": round(float(np.mean([e["length"] for e in eps if e["success"]])), 2) if k else None,
            "wall_s": round(walls.get(task, episode_wall), 2),
            "steps_per_s": round(float(lengths.sum()) / episode_wall, 1) if episode_wall else None,
            "failed_seeds": [e["seed"] for e in eps if not e["success"]],
        }
        t = report["tasks"][task]
        log.info("%-18s success %.2f [%.2f, %.2f]  mean length %.1f  median %.0f  wall %.1fs", task, t["success_rate"],
                 lo, hi, t["mean_length"], t["median_length"], t["wall_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from common import dump_json  # benchmarks/ is sys.path[0] when run as a script

    dump_json(args.out, report)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
