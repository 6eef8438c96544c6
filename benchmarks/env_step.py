"""Env.step overhead vs raw robosuite, and parallel rollout scaling (1 vs 2 workers).

    python benchmarks/env_step.py [--task Lift] [--steps 2000] [--episodes 16]

Targets (Foundation issue): ratio ours/raw <= 1.05; 2-worker rollout throughput >= 1.8x one worker.
Both sides are measured in this same run, interleaved in blocks so drift hits both alike.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from takeover.sim import EnvSpec, make_env  # noqa: E402
from takeover.sim._robosuite import robosuite  # noqa: E402
from takeover.sim.rollout import RolloutPool  # noqa: E402
from takeover.sim.tasks import get_task  # noqa: E402


class RandomAgent:
    def reset(self, env):
        pass

    def act(self, obs, env):
        return np.random.uniform(-1, 1, env.action_dim)


def step_overhead(task: str, steps: int, block: int = 100) -> dict:
    spec = EnvSpec(task=task)
    ours = make_env(spec)
    kwargs = spec.robosuite_kwargs()
    kwargs.update(has_renderer=False, has_offscreen_renderer=False, ignore_done=True, hard_reset=False, seed=0)
    raw = robosuite.make(get_task(task).robosuite_env, **kwargs)
    actions = np.random.default_rng(0).uniform(-1, 1, (block, ours.action_dim))
    ours.reset(seed=0)
    raw.reset()
    for a in actions[:20]:  # warm-up (numba JIT in robosuite's transforms)
        ours.step(a)
        raw.step(a)
    t_ours, t_raw = [], []
    for i in range(steps // block):
        if i % 10 == 0:
            ours.reset(seed=i)
            raw.reset()
        t0 = time.perf_counter()
        for a in actions:
            raw.step(a)
        t1 = time.perf_counter()
        for a in actions:
            ours.step(a)
        t2 = time.perf_counter()
        t_raw.append((t1 - t0) / block)
        t_ours.append((t2 - t1) / block)
    raw_ms, ours_ms = statistics.median(t_raw) * 1e3, statistics.median(t_ours) * 1e3
    return {"task": task, "steps": steps, "raw_step_ms": round(raw_ms, 4), "ours_step_ms": round(ours_ms, 4),
            "ratio": round(ours_ms / raw_ms, 4), "target_ratio_max": 1.05, "pass": ours_ms / raw_ms <= 1.05}


def rollout_scaling(task: str, episodes: int, length: int) -> dict:
    spec = EnvSpec(task=task, horizon=length)
    out = {}
    for workers in (1, 2):
        with RolloutPool(spec, workers) as pool:
            t0 = time.perf_counter()
            pool.run(RandomAgent, seeds=range(10_000, 10_000 + 2 * workers), stop_on_success=False)  # warm-up
            t1 = time.perf_counter()
            pool.run(RandomAgent, seeds=range(episodes), stop_on_success=False)
            elapsed = time.perf_counter() - t1
        out[f"workers_{workers}"] = {"seconds": round(elapsed, 3), "startup_s": round(t1 - t0, 2),
                                     "steps_per_s": round(episodes * length / elapsed, 1)}
    speedup = out["workers_2"]["steps_per_s"] / out["workers_1"]["steps_per_s"]
    return {"task": task, "episodes": episodes, "episode_length": length, **out, "speedup": round(speedup, 3),
            "target_speedup_min": 1.8, "pass": speedup >= 1.8,
            "note": "steady state: each pool is started and warmed up before timing (both run in worker processes)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--length", type=int, default=200)
    ap.add_argument("--out")
    args = ap.parse_args()
    result = {"step_overhead": step_overhead(args.task, args.steps),
              "rollout_scaling": rollout_scaling(args.task, args.episodes, args.length)}
    path = write_result("env_step", result, args.out)
    print(path.read_text())


if __name__ == "__main__":
    main()
