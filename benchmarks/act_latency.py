"""Per-step `act` latency of every registered head at batch 1 (default configs, one torch thread).

    python benchmarks/act_latency.py [--calls 500] [--obs-dim 60] [--action-dim 7] [--threads 1]

Budgets: <= 2 ms p50 for the feed-forward heads, <= 5 ms for lstm. Heads are timed in interleaved
blocks so load from other processes hits all of them alike; the gaussian head is the baseline.
For chunking heads (exec_horizon > 1) most calls just pop the queue, so the calls that re-plan are
also reported on their own.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from takeover.policies import PolicyShapes, head_names, make_config, make_policy  # noqa: E402

BUDGET_MS = {"lstm": 5.0, "gmm": 2.0, "cvae": 2.0, "autoregressive": 2.0}
EPISODE = 200  # reset() every this many calls, as a rollout would


def make(head: str, obs_dim: int, action_dim: int):
    rng = np.random.default_rng(0)
    stats = {"obs_mean": rng.normal(size=obs_dim), "obs_std": np.ones(obs_dim), "obs_min": -np.ones(obs_dim),
             "obs_max": np.ones(obs_dim), "action_mean": np.zeros(action_dim), "action_std": np.full(action_dim, 0.5),
             "action_min": -np.ones(action_dim), "action_max": np.ones(action_dim)}
    policy = make_policy(make_config(head), PolicyShapes(("state",), ((obs_dim,),), action_dim), stats)
    return policy.eval()


def time_calls(policy, obs: np.ndarray, start: int, n: int, times: list, replans: list) -> int:
    """Calls act n times (call numbers start.. start+n) and returns the next call number."""
    for i in range(start, start + n):
        if i % EPISODE == 0:
            policy.reset()
        replanning = not policy._action_queue  # the base class's chunk queue: empty = this call predicts
        t0 = time.perf_counter()
        policy.act(obs[i % len(obs)])
        dt = (time.perf_counter() - t0) * 1e3
        times.append(dt)
        if replanning:
            replans.append(dt)
    return start + n


def summary(ms: list) -> dict:
    if not ms:
        return {}
    return {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p95_ms": round(float(np.percentile(ms, 95)), 4),
            "mean_ms": round(float(np.mean(ms)), 4), "calls": len(ms)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--blocks", type=int, default=5)
    ap.add_argument("--obs-dim", type=int, default=60)
    ap.add_argument("--action-dim", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    obs = np.random.default_rng(1).normal(size=(1000, args.obs_dim)).astype(np.float32)

    heads = head_names()
    policies = {h: make(h, args.obs_dim, args.action_dim) for h in heads}
    times = {h: [] for h in heads}
    replans = {h: [] for h in heads}
    calls = {h: 0 for h in heads}
    with torch.inference_mode():
        for h in heads:
            calls[h] = time_calls(policies[h], obs, 0, args.warmup, [], [])
        per_block = -(-args.calls // args.blocks)
        for _ in range(args.blocks):
            for h in heads:
                calls[h] = time_calls(policies[h], obs, calls[h], per_block, times[h], replans[h])

    results = {}
    for h in heads:
        cfg = policies[h].config
        row = {"act": summary(times[h]), "replan": summary(replans[h]), "config": cfg.to_dict(),
               "parameters": sum(p.numel() for p in policies[h].parameters())}
        if h in BUDGET_MS:
            row["budget_ms"] = BUDGET_MS[h]
            row["within_budget"] = row["act"]["p50_ms"] <= BUDGET_MS[h]
        if "gaussian" in heads:
            row["p50_vs_gaussian"] = round(row["act"]["p50_ms"] / max(summary(times["gaussian"])["p50_ms"], 1e-9), 2)
        results[h] = row
        print(f"{h:15s} act p50 {row['act']['p50_ms']:7.3f} ms  p95 {row['act']['p95_ms']:7.3f} ms  "
              f"replan p50 {row['replan'].get('p50_ms', float('nan')):7.3f} ms")
    path = write_result("act_latency", {"obs_dim": args.obs_dim, "action_dim": args.action_dim, "threads": args.threads,
                                        "calls_per_head": args.calls, "heads": results}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
