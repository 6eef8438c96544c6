"""Shared by benchmark scripts: machine and commit facts, JSON output."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from takeover.config import parse_assignments

RESULTS = Path(__file__).resolve().parent / "results"


def key_values(text: str) -> dict:
    """'key=value,key=value' -> dict (the CLI's --set parser, values parsed as JSON where they parse)."""
    return parse_assignments(filter(None, text.split(",")), what="a setting")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "unknown"
    try:
        import torch

        torch_version, threads = torch.__version__, torch.get_num_threads()
    except ImportError:
        torch_version, threads = None, None
    return {"platform": platform.platform(), "processor": cpu_model(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch_version,
            "torch_threads": threads, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def write_result(name: str, data: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2) + "\n")
    return path


def plot_label_curves(results: dict, path: Path, group: str, colours: dict, title: str):
    """Success (Wilson 95% bars) against expert labels: one colour per results["entries"][*][group]
    (method or arm), one line style per training seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    labelled = set()
    for entry in sorted(results["entries"].values(), key=lambda e: (e[group], e["seed"])):
        pts = sorted(entry["points"], key=lambda p: p["expert_labels"])
        x = [p["expert_labels"] for p in pts]
        y = [p["success_rate"] for p in pts]
        err = [[p["success_rate"] - p["ci95"][0] for p in pts], [p["ci95"][1] - p["success_rate"] for p in pts]]
        name = entry[group]
        ax.errorbar(x, y, yerr=err, marker="o", ms=4, capsize=3, alpha=0.8, color=colours[name],
                    linestyle=("-", "--", ":", "-.")[entry["seed"] % 4], label=name if name not in labelled else None)
        labelled.add(name)
    ax.set_xlabel("expert labels (steps)")
    ax.set_ylabel(f"success ({results['settings']['eval_episodes']} episodes, Wilson 95%)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title + "; line style = seed", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
