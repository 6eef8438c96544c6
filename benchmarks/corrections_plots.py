"""The corrections study's plots: success against expert labels, and the compounding curves."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import plot_label_curves  # noqa: E402


COLOURS = {"bc": "tab:green", "dart-fixed": "tab:purple", "dart-fit": "tab:pink", "dagger": "tab:blue",
           "hg-dagger": "tab:orange", "ccil": "tab:brown"}


def plot_compounding(results: dict, budget_demos: float, path: Path):
    """Mean time-aligned and off-path distance against the time step, one line per method and seed,
    the expert's working window shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {k: v for k, v in results.items() if k.startswith("compounding/") and v.get("budget_demos") == budget_demos
            and all("mean_offpath_distance" in m for m in v["methods"].values())}
    if not runs:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for key, run in sorted(runs.items()):
        seed = int(key.split("/")[1])
        for method, m in run["methods"].items():
            for ax, curve in zip(axes, ("mean_distance", "mean_offpath_distance")):
                ax.plot(m[curve], color=COLOURS[method], linestyle=("-", "--", ":")[seed % 3], lw=1.2,
                        label=f"{method} ({m['success']} ok)" if curve == "mean_distance" else None)
        if run.get("expert_window"):
            for ax in axes:
                ax.axvspan(0, run["expert_window"], color="0.9", zorder=0)
    axes[0].set_title("time-aligned |x_policy(t) - x_expert(t)|", fontsize=9)
    axes[1].set_title("off-path min_s |x_policy(t) - x_expert(s)|", fontsize=9)
    for ax in axes:
        ax.set_xlabel("time step (shaded: the expert's working window)")
    axes[0].set_ylabel("mean distance, hand + object (m)")
    axes[0].legend(fontsize=7)
    s = results["settings"]
    fig.suptitle(f"{s['task']}: compounding error at ~{budget_demos:g} demos' worth ({s['head']}); "
                 f"line style = seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot(results: dict, path: Path):
    s = results["settings"]
    plot_label_curves(results, path, "method", COLOURS,
                      f"{s['task']}: corrections at equal expert-label budgets ({s['head']})")
