"""Inference samplers (and re-planning rates) of one trained diffusion checkpoint, compared on the same evaluation seeds.

Every sampler is an inference-time override of the checkpoint's config (the weights are shared), so
differences come from the sampler alone. Per sampler: success rate with a Wilson 95% interval over
the fixed evaluation seeds, mean episode length, and the gap to the DDPM-100 reference in points.

    python benchmarks/diffusion_samplers.py RUN_OR_CKPT --episodes 50
    python benchmarks/diffusion_samplers.py RUN --samplers ddim10-leading,ddpm100

Results merge into benchmarks/results/diffusion_samplers.json keyed by task, run name, checkpoint and
training step.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, dump_json, machine  # noqa: E402

from takeover.policies.evaluate import evaluate, resolve_checkpoint  # noqa: E402
from takeover.policies.checkpoint import load_checkpoint  # noqa: E402
from takeover.sim.rollout import RolloutPool  # noqa: E402

SAMPLERS = {
    "ddpm100": {"inference_scheduler": "ddpm", "inference_steps": 100},
    "ddim10-leading": {"inference_scheduler": "ddim", "inference_steps": 10, "inference_timestep_spacing": "leading"},
    "ddim10-trailing": {"inference_scheduler": "ddim", "inference_steps": 10, "inference_timestep_spacing": "trailing"},
    "ddim10-trailing-eta1": {"inference_scheduler": "ddim", "inference_steps": 10,
                             "inference_timestep_spacing": "trailing", "ddim_eta": 1.0},
    "ddim16-leading": {"inference_scheduler": "ddim", "inference_steps": 16, "inference_timestep_spacing": "leading"},
    "dpm10-leading": {"inference_scheduler": "dpm", "inference_steps": 10, "inference_timestep_spacing": "leading"},
    "dpm10-trailing": {"inference_scheduler": "dpm", "inference_steps": 10, "inference_timestep_spacing": "trailing"},
    # not a sampler but the other inference-time knob: re-plan every 4 steps instead of 8 (2x the compute)
    "ddim10-exec4": {"inference_scheduler": "ddim", "inference_steps": 10, "inference_timestep_spacing": "leading",
                     "exec_horizon": 4},
}
REFERENCE = "ddpm100"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="run folder (its best checkpoint) or checkpoint file")
    ap.add_argument("--samplers", default="ddpm100,ddim10-leading,ddim10-trailing")
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(RESULTS / "diffusion_samplers.json"))
    args = ap.parse_args()
    names = args.samplers.split(",")
    unknown = [n for n in names if n not in SAMPLERS]
    if unknown:
        sys.exit(f"unknown sampler(s) {unknown}; known: {sorted(SAMPLERS)}")
    ckpt = resolve_checkpoint(args.checkpoint)
    rows, task = {}, None
    _, spec, info = load_checkpoint(ckpt)
    pool = RolloutPool(spec, args.workers if args.workers > 1 else 0)  # shared by every sampler
    try:
        for name in names:
            report = evaluate(ckpt, episodes=args.episodes, overrides=SAMPLERS[name], pool=pool)
            task = report.task
            rows[name] = {"overrides": SAMPLERS[name], "success_rate": report.success_rate, "ci95": report.ci95,
                          "episodes": report.episodes, "mean_length": round(report.mean_length, 1),
                          "per_episode": [int(e["success"]) for e in report.per_episode]}
            print(f"{name:22s} {report.success_rate:.2f} [{report.ci95[0]:.2f}, {report.ci95[1]:.2f}] "
                  f"len {report.mean_length:.1f}", flush=True)
    finally:
        pool.close()
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"runs": {}}
    # best.pt is rewritten when a run is retrained or resumed: the training step names the weights
    step = info["step"]
    run = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.parent.name  # a run's folder either way
    key = f"{task}/{run}/{ckpt.name}@{step}"
    earlier = results["runs"].get(key, {}).get("samplers", {})  # samplers run before on the same weights stay
    merged = {**earlier, **rows}
    if REFERENCE in merged:
        for row in merged.values():
            row["points_vs_ddpm100"] = round(100 * (row["success_rate"] - merged[REFERENCE]["success_rate"]), 1)
    results["runs"][key] = {"checkpoint": str(ckpt), "step": step, "samplers": merged, "machine": machine()}
    tmp = out.with_suffix(".tmp")
    dump_json(tmp, results)
    tmp.replace(out)
    print(f"wrote {out} [{key}]")


if __name__ == "__main__":
    main()
