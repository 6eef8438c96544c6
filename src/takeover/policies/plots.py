"""PNG plots of a run folder's metrics.jsonl: losses vs step, rollout success vs step."""
from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run: Path) -> list[dict]:
    path = Path(run) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_run(run) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    rows = read_metrics(run)
    (run / "plots").mkdir(exist_ok=True)
    written = []
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid" and r.get("loss") is not None]
    if train:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train")
        if valid:
            ax.plot([r["step"] for r in valid], [r["loss"] for r in valid], "o-", label="valid (EMA)")
        ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.legend(), ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(run / "plots" / "losses.png", dpi=100)
        plt.close(fig)
        written.append(run / "plots" / "losses.png")
    evals = [r for r in rows if r["kind"] == "eval"]
    if evals:
        fig, ax = plt.subplots(figsize=(6, 4))
        steps = [r["step"] for r in evals]
        rates = [r["success_rate"] for r in evals]
        lo = [r["success_rate"] - r["ci95"][0] for r in evals]
        hi = [r["ci95"][1] - r["success_rate"] for r in evals]
        ax.errorbar(steps, rates, yerr=[lo, hi], fmt="o-", capsize=3)
        ax.set_ylim(-0.02, 1.02), ax.set_xlabel("step"), ax.set_ylabel("success rate (Wilson 95%)"), ax.grid(alpha=0.3)
        ax.set_title(f"rollout success, {evals[-1]['episodes']} episodes per point")
        fig.tight_layout()
        fig.savefig(run / "plots" / "success.png", dpi=100)
        plt.close(fig)
        written.append(run / "plots" / "success.png")
    return written
