"""Diffusion head: inference latency per action chunk at batch 1, and training throughput.

For each U-Net size ("small" = the default, "paper" = Chi et al.'s (256, 512, 1024)) and each torch
thread count: the wall-clock time of one action chunk through the full rollout path
(`predict_chunk`: normalise, denoise, unnormalise) with DDIM-10 and with DDPM-100, median / p95 over
>= 100 chunks after warm-up (the paper-size DDPM-100 takes seconds a chunk, so it gets fewer chunks
by default: see --paper-ddpm-chunks), and training samples/s at batch 256 (forward + backward +
AdamW step). The per-chunk CPU time of the thread is recorded beside the wall clock, since on a
shared machine the wall clock also counts time spent waiting for a core (the load average is
recorded too). Shapes are robosuite Lift low-dim: 19 observation values, 7-D actions, 2 observations,
16-step chunks. DDIM-10 runs through each CPU inference path of the U-Net in alternating rounds (this
host's speed drifts 1.5x within minutes): `native`, the default (the compiled trunk,
policies/heads/unet1d_native.c), and its baselines in the same run, `packed` (the channels-last
PyTorch trunk, unet1d_inference.py) and `modules` (the plain nn modules).

    python benchmarks/diffusion_latency.py                    # writes benchmarks/results/diffusion_latency.json
    python benchmarks/diffusion_latency.py --sizes small --threads 1 --out /tmp/x.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import torch

from takeover.policies import PolicyShapes, make_config, make_policy
from takeover.policies.heads.unet1d_native import native_unavailable_reason

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine as common_machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OBS_DIM, ACTION_DIM = 19, 7


def machine() -> dict:
    import diffusers

    return {**common_machine(), "diffusers": diffusers.__version__}


def commit() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"), "dirty_files": [line[3:] for line in git("status", "--porcelain").splitlines()
                                                                 if "diffusion" in line or "unet1d" in line]}


def stats() -> dict:
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(1000, OBS_DIM)), rng.uniform(-1, 1, size=(1000, ACTION_DIM))
    return {"obs_mean": obs.mean(0), "obs_std": obs.std(0), "obs_min": obs.min(0), "obs_max": obs.max(0),
            "action_mean": act.mean(0), "action_std": act.std(0), "action_min": act.min(0), "action_max": act.max(0)}


def build(size: str, **overrides):
    config = make_config("diffusion", **({"down_dims": tuple(int(d) for d in size.split(","))} if "," in size else {"unet_size": size}),
                         **overrides)
    policy = make_policy(config, PolicyShapes(("state",), ((OBS_DIM,),), ACTION_DIM), stats())
    return policy


def summary(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": round(float(np.median(ms)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "min_ms": round(float(ms.min()), 3)}


def latency(size: str, scheduler: str, steps: int, chunks: int, warmup: int, backend: str = "native") -> dict:
    torch.manual_seed(0)
    policy = build(size, inference_scheduler=scheduler, inference_steps=steps).eval()
    policy.denoiser.cpu_inference = backend
    policy.seed(0)
    history = torch.randn(policy.config.obs_horizon, OBS_DIM)
    for _ in range(warmup):
        policy.predict_chunk(history)
    wall, cpu = [], []
    for _ in range(chunks):
        t0, c0 = time.perf_counter(), time.thread_time()
        policy.predict_chunk(history)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return {"scheduler": scheduler, "steps": steps, "backend": backend, "chunks": chunks, "warmup": warmup, "wall": summary(wall),
            "thread_cpu": summary(cpu)}


def throughput(size: str, batch: int, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    policy = build(size).train()
    optimiser = torch.optim.AdamW(policy.parameters(), lr=1e-4, weight_decay=1e-6)
    data = {"obs": torch.randn(batch, policy.config.obs_horizon, OBS_DIM),
            "actions": torch.rand(batch, policy.config.action_horizon, ACTION_DIM) * 2 - 1,
            "action_mask": torch.ones(batch, policy.config.action_horizon, dtype=torch.bool)}
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = policy.loss(data)["loss"]
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"batch": batch, "steps": steps, "warmup": warmup, "step_ms_median": round(float(np.median(times)) * 1e3, 2),
            "samples_per_s": round(batch / float(np.median(times)), 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["small", "paper"], help="presets or comma-separated down dims")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--paper-chunks", type=int, default=100, help="DDIM-10 chunks for the paper size")
    ap.add_argument("--paper-ddpm-chunks", type=int, default=10, help="chunks for paper-size DDPM-100 (seconds each)")
    ap.add_argument("--train-batch", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--paper-train-steps", type=int, default=3)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--rounds", type=int, default=3, help="alternating native / packed / plain-module DDIM-10 measurements")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "diffusion_latency.json")
    args = ap.parse_args()

    report = {"benchmark": "diffusion_latency", "machine": machine(), **commit(),
              "native_trunk": native_unavailable_reason() or "compiled",
              "load_average_start": os.getloadavg(), "shapes": {"obs_dim": OBS_DIM, "action_dim": ACTION_DIM,
                                                               "obs_horizon": 2, "action_horizon": 16},
              "target": "DDIM-10 chunk <= 15 ms median at batch 1, default size, 1 and 2 threads", "results": []}
    def write():  # after every row, so a long run that is cut short keeps what it measured
        report["load_average_end"] = os.getloadavg()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

    for size in args.sizes:
        policy = build(size)
        info = {"size": size, "down_dims": list(policy.config.unet_down_dims),
                "step_embed_dim": policy.config.unet_step_embed_dim,
                "parameters": sum(p.numel() for p in policy.parameters())}
        for threads in args.threads:
            torch.set_num_threads(threads)
            paper = size == "paper"
            row = {**info, "threads": threads,
                   "ddim10": latency(size, "ddim", 10, args.paper_chunks if paper else args.chunks, 3 if paper else args.warmup),
                   "ddpm100": latency(size, "ddpm", 100, args.paper_ddpm_chunks if paper else args.chunks,
                                      2 if paper else args.warmup)}
            if not paper:  # the same weights through the PyTorch paths: the baselines of the compiled trunk
                # this host's speed drifts by 1.5x within minutes: alternate the paths and compare per round
                rounds = []
                for r in range(args.rounds):
                    native = row["ddim10"] if r == 0 else latency(size, "ddim", 10, args.chunks, args.warmup)
                    rounds.append({"native": native, **{b: latency(size, "ddim", 10, args.chunks, args.warmup, backend=b)
                                                        for b in ("packed", "modules")}})
                row["ddim10_packed"], row["ddim10_modules"] = rounds[0]["packed"], rounds[0]["modules"]
                ms = {b: [r[b]["wall"]["median_ms"] for r in rounds] for b in ("native", "packed", "modules")}
                row["ddim10_rounds"] = {f"{b}_median_ms": v for b, v in ms.items()} | {
                    "native_median_of_rounds_ms": float(np.median(ms["native"])),
                    "speedup_vs_packed_median_of_rounds": round(float(np.median(np.divide(ms["packed"], ms["native"]))), 2),
                    "speedup_vs_modules_median_of_rounds": round(float(np.median(np.divide(ms["modules"], ms["native"]))), 2)}
                if size == "small":
                    row["target_15ms_met"] = bool(np.median(ms["native"]) <= 15.0)
            if not args.no_train:
                row["train"] = throughput(size, args.train_batch, args.paper_train_steps if paper else args.train_steps,
                                          1 if paper else 3)
            report["results"].append(row)
            print(json.dumps({k: row[k] for k in ("size", "threads")} | {
                "ddim10_median_ms": row["ddim10"]["wall"]["median_ms"], "ddim10_p95_ms": row["ddim10"]["wall"]["p95_ms"],
                "ddim10_cpu_median_ms": row["ddim10"]["thread_cpu"]["median_ms"],
                "rounds": row.get("ddim10_rounds"),
                "ddpm100_median_ms": row["ddpm100"]["wall"]["median_ms"],
                "train_samples_per_s": row.get("train", {}).get("samples_per_s")}), flush=True)
            write()
    write()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
