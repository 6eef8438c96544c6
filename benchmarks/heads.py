"""Every head on scripted demonstrations: success rate (Wilson 95% CI) over fixed evaluation seeds,
training time and throughput, act latency at batch 1.

    python benchmarks/heads.py --task Lift --demos 50
    python benchmarks/heads.py --task PickPlaceCan --demos 100 --heads gmm,diffusion

Results accumulate in benchmarks/results/heads.json keyed by task and head (a finished entry is
skipped unless --force), so a long sweep can be run piece by piece. Demonstrations and runs go under
benchmarks/results/work/ (not committed). For the diffusion head the same checkpoint is also evaluated
with DDPM-100 instead of DDIM-10 (`--ddpm-compare`).

Bars (Policies / Diffusion issues): Lift 50 demos every head >= 95%; PickPlaceCan 100 demos best head
>= 90%; act latency <= 2 ms (MLP heads), <= 5 ms (LSTM); diffusion DDIM-10 chunk <= 15 ms.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, dump_json, machine  # noqa: E402

from takeover.datasets import DemoReader  # noqa: E402
from takeover.policies.checkpoint import load_checkpoint  # noqa: E402
from takeover.policies.evaluate import evaluate  # noqa: E402
from takeover.policies.plots import read_metrics  # noqa: E402
from takeover.policies.train import TrainConfig, Trainer  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.datasets.scripted_collection import collect_scripted  # noqa: E402

HEADS = ("gaussian", "gmm", "cvae", "autoregressive", "lstm", "diffusion")
# CPU-sized training budgets per head (steps at batch 256); diffusion needs the most.
STEPS = {"gaussian": 4000, "gmm": 4000, "cvae": 4000, "autoregressive": 4000, "lstm": 3000, "diffusion": 6000}
LR = {"diffusion": 3e-4}


def ensure_demos(task: str, n: int, workdir: Path, workers: int) -> Path:
    path = workdir / f"{task}_{n}.hdf5"
    have = 0
    if path.exists():
        with DemoReader(path) as r:
            have = len(r)
    if have < n:
        t0 = time.time()
        collect_scripted(EnvSpec(task=task), str(path), n - have, workers=workers, append=path.exists(),
                         seed=None if path.exists() else 0)
        print(f"collected {n - have} {task} demos in {time.time() - t0:.0f} s", flush=True)
    return path


def act_latency(checkpoint: Path, calls: int = 300) -> dict:
    """Per-call `act` latency; for chunking heads also the calls that re-plan (the queue was empty),
    since the per-call median of a head that executes 8 actions per plan is just a queue pop."""
    torch.set_num_threads(1)
    policy, spec, _ = load_checkpoint(checkpoint)
    obs = {k: np.random.default_rng(0).normal(size=s).astype(np.float32)
           for k, s in zip(policy.shapes.obs_keys, policy.shapes.obs_shapes)}
    policy.reset()
    for _ in range(20):
        policy.act(obs)
    times, replans = [], []
    for _ in range(calls):
        replanning = not policy._action_queue
        t0 = time.perf_counter()
        policy.act(obs)
        ms = (time.perf_counter() - t0) * 1e3
        times.append(ms)
        if replanning:
            replans.append(ms)

    def summary(xs):
        xs = sorted(xs)
        return {"p50_ms": round(statistics.median(xs), 4), "p95_ms": round(xs[int(0.95 * len(xs))], 4),
                "mean_ms": round(statistics.fmean(xs), 4)}

    return {**summary(times), "replans_every": getattr(policy.config, "exec_horizon", 1),
            "replan": summary(replans) if replans else None}


def bench_head(task, head, data, workdir, args, previous: dict | None = None) -> dict:
    run = workdir / f"{task}_{args.demos}_{head}"
    resume = args.resume and (run / "checkpoints" / "last.pt").is_file()
    if args.resume and not resume:
        raise SystemExit(f"{run}: nothing to resume (no checkpoints/last.pt)")
    if run.exists() and not resume:
        import shutil

        shutil.rmtree(run)
    steps = args.steps or STEPS[head]
    t0 = time.time()
    trainer = Trainer(TrainConfig(data=str(data), out=str(run), head=head, steps=steps, lr=LR.get(head),
                                  max_minutes=args.max_minutes, eval_every=max(1, steps // args.selection_evals),
                                  eval_episodes=args.selection_episodes, eval_workers=args.workers,
                                  threads=args.threads, seed=args.seed, quaternions=args.quaternions), resume=resume)
    resumed_from = trainer.step if resume else None
    result = trainer.run()
    train_s = time.time() - t0
    counted_from = resumed_from
    if resume and previous and previous.get("steps") == resumed_from:
        # the entry of the cut run holds the time spent before; the throughput median covers both parts
        train_s += previous["train_seconds_total"]
        counted_from = previous.get("train_seconds_from_step", 0)
    rows = read_metrics(run)
    sps = [r["samples_per_s"] for r in rows if r["kind"] == "train"]
    evals = [r for r in rows if r["kind"] == "eval"]
    eval_s = sum(r["seconds"] for r in evals)
    report = evaluate(run, episodes=args.episodes, workers=args.workers)
    entry = {"task": task, "head": head, "demos": args.demos, "quaternions": args.quaternions,
             "steps": result["step"], "best_step": result["best"]["step"],
             "success_rate": report.success_rate, "ci95": report.ci95, "episodes": report.episodes,
             "successes": report.successes, "mean_length": round(report.mean_length, 1),
             "train_seconds_total": round(train_s, 1), "train_seconds_excluding_selection_evals": round(train_s - eval_s, 1),
             "samples_per_s_median": round(statistics.median(sps), 1) if sps else None,
             "selection_evals": [{"step": r["step"], "success_rate": r["success_rate"]} for r in evals],
             "act_latency": act_latency(run / "checkpoints" / "best.pt")}
    if resume:
        entry["resumed_from_step"] = resumed_from
        if counted_from:  # no entry of the earlier part to add: the training times start here
            entry["train_seconds_from_step"] = counted_from
    if head == "diffusion" and args.ddpm_compare:
        ddpm = evaluate(run, episodes=args.episodes, workers=args.workers,
                        overrides={"inference_scheduler": "ddpm", "inference_steps": 100})
        entry["ddpm100"] = {"success_rate": ddpm.success_rate, "ci95": ddpm.ci95, "episodes": ddpm.episodes,
                            "difference_points": round(100 * (report.success_rate - ddpm.success_rate), 1)}
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--demos", type=int, default=50)
    ap.add_argument("--heads", default=",".join(HEADS))
    ap.add_argument("--steps", type=int, help="override every head's step budget")
    ap.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget per head's training")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--selection-evals", type=int, default=2, help="rollout evaluations during training")
    ap.add_argument("--selection-episodes", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ddpm-compare", action="store_true", default=True)
    ap.add_argument("--quaternions", default="matrix", choices=("matrix", "raw"),
                    help="quaternion observations as rotation matrices (default) or raw (entries before 2026-11-30)")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="continue the head's run in benchmarks/results/work (one cut by --max-minutes) to --steps; "
                         "implies --force")
    ap.add_argument("--out", default=str(RESULTS / "heads.json"))
    args = ap.parse_args()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    workdir = RESULTS / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    data = ensure_demos(args.task, args.demos, workdir, args.workers)
    for head in args.heads.split(","):
        key = f"{args.task}/{args.demos}/{head}"
        if key in results["runs"] and not (args.force or args.resume):
            print(f"skip {key} (done)")
            continue
        print(f"=== {key}", flush=True)
        entry = bench_head(args.task, head, data, workdir, args, previous=results["runs"].get(key))
        entry["machine"] = machine()
        # re-read before writing: another sweep (other task) may have added entries meanwhile
        results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
        results["runs"][key] = entry
        tmp = out.with_suffix(".tmp")
        dump_json(tmp, results)
        tmp.replace(out)
        print(json.dumps({k: entry[k] for k in ("success_rate", "ci95", "train_seconds_total", "act_latency")}), flush=True)


if __name__ == "__main__":
    main()
