"""Diffusion head: inference latency per action chunk at batch 1, and training throughput.

For each U-Net size ("small" = the default, "paper" = Chi et al.'s (256, 512, 1024)) and each torch
thread count: the wall-clock time of one action chunk through the full rollout path
(`predict_chunk`: normalise, denoise, unnormalise) with DDIM-10 and with DDPM-100, median / p95 over
>= 100 chunks after warm-up (the paper-size DDPM-100 takes seconds a chunk, so it gets fewer chunks
by default: see --paper-ddpm-chunks), and training samples/s at batch 256 (forward + backward +
AdamW step). The per-chunk CPU time of the thread is recorded beside the wall clock, since on a
shared machine the wall clock also counts time spent waiting for a core (the load average is
recorded too). Shapes are robosuite Lift low-dim: 19 observation values, 7-D actions, 2 observations,
16-step chunks. At 1 thread, DDIM-10 also runs through the CPU paths named by --paths in alternating
rounds (this host's speed drifts 1.5x within minutes), each against the plain nn modules in the same
run: `native`, the default (the compiled trunk, policies/heads/unet1d_native.c), and the maintained
runtimes it was chosen over (ONNX Runtime, OpenVINO, torch.compile modes; not dependencies: install
onnxruntime / openvino / onnx / onnxscript to time them).

    python benchmarks/diffusion_latency.py                    # writes benchmarks/results/diffusion_latency.json
    python benchmarks/diffusion_latency.py --sizes small --threads 1 --no-train --no-ddpm \
        --paths native onnxruntime openvino compile-default --out /tmp/x.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import torch

from takeover.policies import PolicyShapes, make_config, make_policy
from takeover.policies.heads.unet1d_native import PackedFiLM, native_unavailable_reason

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dump_json, machine as common_machine  # noqa: E402

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


def latency(size: str, scheduler: str, steps: int, chunks: int, warmup: int) -> dict:
    torch.manual_seed(0)
    policy = build(size, inference_scheduler=scheduler, inference_steps=steps).eval()
    policy.seed(0)
    history = torch.randn(policy.config.obs_horizon, OBS_DIM)
    return {"scheduler": scheduler, "steps": steps, "chunks": chunks, "warmup": warmup,
            **time_chunks(policy, history, chunks, warmup)}


def time_chunks(policy, history: torch.Tensor, chunks: int, warmup: int) -> dict:
    for _ in range(warmup):
        policy.predict_chunk(history)
    wall, cpu = [], []
    for _ in range(chunks):
        t0, c0 = time.perf_counter(), time.thread_time()
        policy.predict_chunk(history)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return {"wall": summary(wall), "thread_cpu": summary(cpu)}


# ----- the CPU paths of the U-Net side by side: DDIM-10 chunk, batch 1 -------------------------------
# "modules" (plain nn modules) is the baseline; "native" is the compiled trunk. The others were evaluated
# against it (issue 13) and are not in the package: each gets the trunk with every block's FiLM
# precomputed per chunk (one (1, F, 1) input, computed as the compiled trunk's is) and its graph optimised;
# "-torchscript" is the same graph through torch.onnx's older TorchScript exporter.
PATHS = ("modules", "native", "onnxruntime", "onnxruntime-torchscript", "openvino", "openvino-torchscript",
         "compile-default", "compile-reduce-overhead", "compile-max-autotune-no-cudagraphs")


class FiLMInputTrunk(torch.nn.Module):
    """unet.trunk with every block's [scale; bias] as one (B, F, 1) input: the graph the runtimes get."""

    def __init__(self, unet):
        super().__init__()
        self.unet = unet
        self.sizes = [2 * b.out_ch for b in unet._film_blocks]

    def forward(self, sample, film):
        return self.unet.trunk(sample, list(torch.split(film, self.sizes, dim=1)))


def export_onnx(unet, length: int, path: Path, exporter: str) -> None:
    sample = torch.zeros(1, length, unet.action_dim)
    film = torch.zeros(1, sum(2 * b.out_ch for b in unet._film_blocks), 1)
    options = {"dynamo": True, "optimize": True} if exporter == "dynamo" else {"dynamo": False, "opset_version": 18}
    with torch.no_grad():
        torch.onnx.export(FiLMInputTrunk(unet).eval(), (sample, film), str(path), input_names=["sample", "film"],
                          output_names=["eps"], **options)


def runtime_trunk(path: str, unet, length: int, workdir: Path):
    """(sample (1, T, A), film (1, F, 1)) -> eps through one of the maintained runtimes."""
    if path.startswith("compile-"):
        return torch.compile(FiLMInputTrunk(unet).eval(), mode=path[len("compile-"):], fullgraph=True, dynamic=False)
    exporter = "torchscript" if path.endswith("-torchscript") else "dynamo"
    onnx_path = workdir / f"{path}.onnx"
    export_onnx(unet, length, onnx_path, exporter)
    if path.startswith("onnxruntime"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        return lambda x, f: torch.from_numpy(session.run(None, {"sample": x.numpy(), "film": f.numpy()})[0])
    import openvino as ov

    compiled = ov.Core().compile_model(str(onnx_path), "CPU", {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1,
                                                               "PERFORMANCE_HINT": "LATENCY",
                                                               "INFERENCE_PRECISION_HINT": "f32"})
    request = compiled.create_infer_request()

    def run(x, f):
        request.infer([x.numpy(), f.numpy()], share_inputs=True)
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
    return run


def path_policy(size: str, path: str, workdir: Path):
    """A DDIM-10 policy (seed-0 weights, as every path gets) whose denoiser runs `path`."""
    torch.manual_seed(0)
    policy = build(size).eval()
    unet = policy.denoiser
    if path in ("modules", "native"):
        unet.cpu_inference = path
        return policy
    trunk = runtime_trunk(path, unet, policy.config.action_horizon, workdir)
    film_of = PackedFiLM(unet)

    def conditioned(global_cond, timesteps):
        film = film_of(timesteps, global_cond)
        return lambda sample, i: trunk(sample, film[i:i + 1])
    unet.conditioned = conditioned  # shadows the method: _sample() calls it once per chunk
    return policy


def compare_paths(size: str, paths: list[str], rounds: int, chunks: int, warmup: int) -> dict:
    """Each path's DDIM-10 chunk in alternating rounds (this host's speed drifts within minutes), its
    median of round medians and ratio to the plain modules, and its largest difference from them."""
    history = torch.randn(2, OBS_DIM, generator=torch.Generator().manual_seed(1))
    policies, setup_s, max_diff = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            t0 = time.perf_counter()
            policies[path] = path_policy(size, path, Path(tmp))
            with torch.inference_mode():  # the first chunk compiles / optimises; count it as set-up
                policies[path].seed(0).predict_chunk(history)
            setup_s[path] = round(time.perf_counter() - t0, 2)
    features = policies["modules"]._features(history, None)
    reference = policies["modules"].seed(0).predict(features)
    for path, policy in policies.items():
        max_diff[path] = float((policy.seed(0).predict(features) - reference).abs().max())
        policy.seed(0)
    per_round = {path: [] for path in paths}
    cpu_per_round = {path: [] for path in paths}
    for r in range(rounds):
        for path in (paths if r % 2 == 0 else paths[::-1]):
            times = time_chunks(policies[path], history, chunks, warmup)
            per_round[path].append(times["wall"]["median_ms"])
            cpu_per_round[path].append(times["thread_cpu"]["median_ms"])
    medians = {path: float(np.median(ms)) for path, ms in per_round.items()}
    cpu_medians = {path: float(np.median(ms)) for path, ms in cpu_per_round.items()}
    return {"chunks_per_round": chunks, "rounds": rounds, "setup_s": setup_s, "max_abs_diff_vs_modules": max_diff,
            "median_ms_per_round": per_round, "thread_cpu_median_ms_per_round": cpu_per_round,
            "median_of_rounds_ms": medians, "thread_cpu_median_of_rounds_ms": cpu_medians,
            "ratio_to_modules": {p: round(m / medians["modules"], 3) for p, m in medians.items()},
            "thread_cpu_ratio_to_modules": {p: round(m / cpu_medians["modules"], 3) for p, m in cpu_medians.items()}}


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
    ap.add_argument("--paths", nargs="*", default=["native"], choices=PATHS,
                    help="CPU paths timed against the plain modules at 1 thread (DDIM-10, alternating rounds); "
                         "the first is the one the 15 ms target is checked on")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds of --paths")
    ap.add_argument("--no-ddpm", action="store_true")
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
        dump_json(args.out, report)

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
                   "ddpm100": None if args.no_ddpm else latency(size, "ddpm", 100, args.paper_ddpm_chunks if paper
                                                                else args.chunks, 2 if paper else args.warmup)}
            if not paper and threads == 1 and args.paths:
                row["ddim10_paths"] = compare_paths(size, ["modules", *[p for p in args.paths if p != "modules"]],
                                                    args.rounds, args.chunks, args.warmup)
                if size == "small":
                    row["target_15ms_met"] = row["ddim10_paths"]["median_of_rounds_ms"][args.paths[0]] <= 15.0
            if not args.no_train:
                row["train"] = throughput(size, args.train_batch, args.paper_train_steps if paper else args.train_steps,
                                          1 if paper else 3)
            report["results"].append(row)
            print(json.dumps({k: row[k] for k in ("size", "threads")} | {
                "ddim10_median_ms": row["ddim10"]["wall"]["median_ms"], "ddim10_p95_ms": row["ddim10"]["wall"]["p95_ms"],
                "ddim10_cpu_median_ms": row["ddim10"]["thread_cpu"]["median_ms"],
                "paths": row.get("ddim10_paths", {}).get("median_of_rounds_ms"),
                "ddpm100_median_ms": row["ddpm100"] and row["ddpm100"]["wall"]["median_ms"],
                "train_samples_per_s": row.get("train", {}).get("samples_per_s")}), flush=True)
            write()
    write()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
