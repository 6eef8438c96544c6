"""Shared by benchmark scripts: machine and commit facts, JSON output, and the plumbing of the
label-budget studies (results files that merge under a lock, curve points, cached BC runs and
evaluations); what they measure is library code in the packages (e.g. datasets/label_budget.py)."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from takeover.config import parse_assignments

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEMO_SEED_STRIDE = 100_000  # training seed s collects demos from seed s * stride (disjoint streams)


def relative_paths(data):
    """The data with every absolute path string made portable, recursively: inside the repository
    relative to its root, under the temp dir as $TMPDIR/..., elsewhere relative to the root (../..).
    Results files are read on other machines and checkouts, where this one's paths mean nothing."""
    if isinstance(data, dict):
        return {key: relative_paths(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [relative_paths(value) for value in data]
    if isinstance(data, Path):
        data = str(data)
    if not (isinstance(data, str) and os.path.isabs(data) and "\n" not in data):
        return data
    path = Path(os.path.normpath(data))
    for base, prefix in ((ROOT, ""), (Path(tempfile.gettempdir()), "$TMPDIR/")):
        if path == base or base in path.parents:
            return prefix + str(path.relative_to(base)) if path != base else (prefix.rstrip("/") or ".")
    return os.path.relpath(path, ROOT)


def from_repo(path: str | Path) -> Path:
    """A path as results files store it (relative to the repository root) as one this process can open."""
    path = Path(path)
    return path if path.is_absolute() else ROOT / path


def dump_json(path: Path, data: dict):
    """Writes results JSON (paths made repository-relative) as every benchmark does."""
    Path(path).write_text(json.dumps(relative_paths(data), indent=2) + "\n")


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
    dump_json(path, {"machine": machine(), **data})
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


# ----- the label-budget studies' shared plumbing (dagger.py, dart.py, corrections.py) ---------------
def load_results(path: Path, settings: dict, compared) -> dict:
    if not path.exists():
        return {"settings": settings, "entries": {}}
    results = json.loads(path.read_text())
    saved = results["settings"]
    changed = {k: (saved.get(k), settings[k]) for k in compared if saved.get(k) != settings[k]}
    if changed:
        raise SystemExit(f"{path} was made with other settings {changed} (saved, now); "
                         "pass another --out or move the file away")
    return results


def save_results(path: Path, results: dict):
    """Writes the results atomically, merged with what is on disk under a lock: two runs of the same
    benchmark on different training seeds (--seed-list) may share one file, and neither loses the
    other's entries. The entries this run holds win over the disk's on a clash."""
    import fcntl

    results["machine"] = machine()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            disk = json.loads(path.read_text())
            results["entries"] = {**disk.get("entries", {}), **results["entries"]}
            for key, value in disk.items():
                results.setdefault(key, value)
        tmp = path.with_suffix(".tmp")
        dump_json(tmp, results)
        tmp.replace(path)


def point(report: dict, labels: int, wall_s: float, **extra) -> dict:
    """One point of a curve from an evaluation report (EvalReport as a dict)."""
    return {"expert_labels": labels, "success_rate": report["success_rate"], "ci95": list(report["ci95"]),
            "successes": report["successes"], "episodes": report["episodes"], "wall_s": round(wall_s, 1), **extra}


def finished(run: Path) -> bool:
    """Whether a training run reached its end: best.pt alone is not enough, the trainer writes it at
    every evaluation step, so a run killed half-way (a session's end) has one too."""
    metrics = run / "metrics.jsonl"
    if not (run / "checkpoints" / "best.pt").is_file() or not metrics.is_file():
        return False
    lines = metrics.read_text().strip().splitlines()
    return bool(lines) and json.loads(lines[-1]).get("kind") == "done"


def train_bc(data: Path, out: Path, args, seed: int, steps: int | None = None) -> Path:
    done = out / "checkpoints" / "best.pt"
    if finished(out):
        return done
    from takeover.policies.train import TrainConfig, Trainer

    if out.exists():
        shutil.rmtree(out)
    steps = steps or args.steps
    Trainer(TrainConfig(data=str(data), out=str(out), head=args.head, steps=steps, seed=seed,
                        eval_episodes=args.selection_episodes, eval_every=max(1, steps // 2),
                        eval_workers=args.workers, threads=args.threads)).run()
    return done


def evaluate_cached(ckpt: Path, args) -> dict:
    """Success on the fixed evaluation seeds, kept beside the run so a resumed benchmark does not redo it."""
    from takeover.policies.evaluate import eval_seeds, evaluate

    cache = ckpt.parent.parent / f"bench_eval_{args.eval_episodes}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    report = json.loads(evaluate(ckpt, seeds=eval_seeds(args.eval_episodes), workers=args.workers).to_json())
    cache.write_text(json.dumps(report))
    return report


def initial_policy(spec, work: Path, args, seed: int) -> dict:
    """The seed's N scripted demos and the BC policy trained on them, with its evaluation."""
    from takeover.datasets.label_budget import labels_of
    from takeover.datasets.scripted_collection import collect_scripted

    folder = work / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    demos = folder / f"demos_{args.demos}.hdf5"
    t0 = time.time()
    if not demos.exists() or labels_of(demos) == 0:
        demos.unlink(missing_ok=True)
        collect_scripted(spec, str(demos), args.demos, seed=seed * DEMO_SEED_STRIDE, workers=args.workers)
    ckpt = train_bc(demos, folder / "bc_initial", args, seed)
    report = evaluate_cached(ckpt, args)
    return {"demos": str(demos), "run": str(folder / "bc_initial"),
            "point": point(report, labels_of(demos), time.time() - t0, round=0, demos=args.demos)}
