"""The learning curve of a fine-tuning run: evaluation success (Wilson 95%) and return vs env steps."""
from __future__ import annotations

from pathlib import Path

from takeover.policies.plots import read_metrics


def plot_learning_curve(run) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    evals = [r for r in read_metrics(run) if r["kind"] == "eval"]
    if not evals:
        return None
    steps = [r["env_steps"] for r in evals]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    rates = [r["success_rate"] for r in evals]
    a.errorbar(steps, rates, yerr=[[r - e["ci95"][0] for r, e in zip(rates, evals)],
                                   [e["ci95"][1] - r for r, e in zip(rates, evals)]], fmt="o-", capsize=3)
    drawn = [(s, r["sampled"]) for s, r in zip(steps, evals) if "sampled" in r]
    if drawn:
        a.plot([s for s, _ in drawn], [d["success_rate"] for _, d in drawn], "s--", label="sampled actions")
        b.plot([s for s, _ in drawn], [d["mean_return"] for _, d in drawn], "s--", label="sampled actions")
        a.lines[0].set_label("mean action")
        a.legend()
    a.set_ylim(-0.02, 1.02), a.set_xlabel("env steps"), a.set_ylabel("success (Wilson 95%)"), a.grid(alpha=0.3)
    a.set_title(f"{evals[-1]['episodes']} evaluation episodes per point")
    b.plot(steps, [r["mean_return"] for r in evals], "o-")
    b.set_xlabel("env steps"), b.set_ylabel("mean evaluation return"), b.grid(alpha=0.3)
    fig.tight_layout()
    path = run / "plots" / "learning_curve.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
