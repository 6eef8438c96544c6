"""The corrections study's statistics: the tables it prints (per seed, pooled, paired over seeds, and
the compounding table) from its results JSON."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corrections_runs import METHODS  # noqa: E402

from takeover.sim.stats import mean_interval, wilson_interval  # noqa: E402


def drift_after_window(curve: list, window: int) -> float:
    """The slope (m per step) of a line fitted to a distance curve after the expert's working window:
    whether the policy keeps moving away once the expert's task is done, or holds its distance."""
    tail = np.asarray(curve[window:], dtype=float)
    return float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) > 10 else float("nan")


def compounding_table(results: dict, budget_demos: float) -> str:
    """Per method, over the seeds measured at that budget (the runs with the off-path distance): the
    policies' success in the measurement's episodes, the time-aligned and off-path distances at a few
    steps, C(T)'s fitted exponent over the expert's working window (1: the distance stays level, linear
    cost; 2: it grows linearly, quadratic cost; a bootstrap 95% interval over the starts where the run
    has one) and the off-path drift after the window."""
    runs = [v for k, v in results.items() if k.startswith("compounding/") and v.get("budget_demos") == budget_demos
            and all("mean_offpath_distance" in m for m in v["methods"].values())]
    if not runs:
        return ""
    window = min(r.get("expert_window") or 0 for r in runs)
    horizon = min(len(m["mean_distance"]) for r in runs for m in r["methods"].values())
    steps = [t for t in (25, 50, 100, 200) if t < horizon] + [horizon - 1]

    def exponent(fits: list[dict]) -> str:
        ci = f" [{fits[0]['cost_exponent_ci95'][0]:.2f}, {fits[0]['cost_exponent_ci95'][1]:.2f}]" \
            if len(fits) == 1 and "cost_exponent_ci95" in fits[0] else ""
        return f"{np.mean([f['cost_exponent'] for f in fits]):.2f}{ci}" if fits else "n/a"

    episodes = runs[0]["seeds"][1] - runs[0]["seeds"][0] + 1
    lines = [f"compounding at ~{budget_demos:g} demos' worth, {len(runs)} seed(s) x {episodes} starts, "
             f"expert window {window} steps (distances in m; means over the seeds)",
             "| method | policy success | " + " | ".join(f"d({t}) / off({t})" for t in steps)
             + " | C(T) ~ T^p in the window, time-aligned | off-path | off-path drift after the window, mm/100 steps |",
             "|---|---|" + "---|" * (len(steps) + 3)]
    for method in METHODS:
        per = [r["methods"][method] for r in runs if method in r["methods"]]
        if not per:
            continue
        cells = [f"{np.mean([m['mean_distance'][t] for m in per]):.3f} / "
                 f"{np.mean([m['mean_offpath_distance'][t] for m in per]):.3f}" for t in steps]
        drift = np.mean([drift_after_window(m["mean_offpath_distance"], window) for m in per]) * 1e5
        lines.append(f"| {method} | {sum(m['success'] for m in per)}/{len(per) * episodes} | " + " | ".join(cells)
                     + f" | {exponent([m['expert_window_fit'] for m in per if 'expert_window_fit' in m])}"
                     + f" | {exponent([m['offpath_window_fit'] for m in per if 'offpath_window_fit' in m])}"
                     + f" | {drift:+.1f} |")
    return "\n".join(lines)


# ----- report -------------------------------------------------------------------------------------------
def table(results: dict) -> str:
    lines = ["| method | seed | " + " | ".join(f"~{b} demos: labels, success [95% CI]" for b in
                                              results["settings"]["budgets"].split(",")) + " |"]
    lines.append("|---|---|" + "---|" * len(results["settings"]["budgets"].split(",")))
    for key, entry in sorted(results["entries"].items()):
        cells = [f"{p['expert_labels']}: {p['success_rate']:.2f} [{p['ci95'][0]:.2f}, {p['ci95'][1]:.2f}]"
                 for p in entry["points"] if "budget" in p]
        lines.append(f"| {entry['method']} | {entry['seed']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def points_by_method(results: dict) -> dict[str, dict[int, list]]:
    """method -> seed -> that run's budget points, in budget order."""
    by_method: dict[str, dict[int, list]] = {}
    for entry in results["entries"].values():
        by_method.setdefault(entry["method"], {})[entry["seed"]] = [p for p in entry["points"] if "budget" in p]
    return by_method


def paired_table(results: dict) -> str:
    """Each method's success minus BC's on the same training seed, averaged over the seeds, with a t 95%
    interval over the seeds: the seed is the unit, so an interval that excludes 0 means the gain held
    up against the spread between seeds, which the pooled table's interval does not account for."""
    budgets = results["settings"]["budgets"].split(",")
    by_method = points_by_method(results)
    bc = by_method.get("bc", {})
    lines = ["| method - BC | " + " | ".join(f"~{b} demos: mean difference [t 95% over seeds] (seeds)" for b in budgets)
             + " |", "|---|" + "---|" * len(budgets)]
    for method in [m for m in METHODS if m in by_method and m != "bc"]:
        cells = []
        for i in range(len(budgets)):
            diffs = [by_method[method][s][i]["success_rate"] - bc[s][i]["success_rate"] for s in sorted(by_method[method])
                     if s in bc and len(bc[s]) > i and len(by_method[method][s]) > i]
            if not diffs:
                cells.append("n/a")
                continue
            mean, lo, hi = mean_interval(diffs)
            if len(diffs) == 1:
                cells.append(f"{mean:+.2f} (1)")
            elif hi - lo < 1e-9:  # equal differences on every seed: a zero-width interval would claim certainty
                cells.append(f"{mean:+.2f}, the same on all {len(diffs)} seeds (no spread to estimate)")
            else:
                cells.append(f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}] ({len(diffs)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def pooled_table(results: dict) -> str:
    """Each method's successes summed over the training seeds at each budget point (Wilson 95% over all
    their episodes), and on how many seeds it beat BC at that point: seeds move BC itself as much as
    most corrections do, so a pooled rate alone can hide a method that helps on one seed only."""
    budgets = results["settings"]["budgets"].split(",")
    by_method = points_by_method(results)
    bc = by_method.get("bc", {})
    lines = ["| method | seeds | " + " | ".join(f"~{b} demos: success [95% CI], seeds above BC" for b in budgets) + " |",
             "|---|---|" + "---|" * len(budgets)]
    for method in [m for m in METHODS if m in by_method]:
        seeds = sorted(by_method[method])
        cells = []
        for i in range(len(budgets)):
            pts = [by_method[method][s][i] for s in seeds if len(by_method[method][s]) > i]
            k, n = sum(p["successes"] for p in pts), sum(p["episodes"] for p in pts)
            lo, hi = wilson_interval(k, n)
            paired = [s for s in seeds if s in bc and len(bc[s]) > i and len(by_method[method][s]) > i]
            above = sum(by_method[method][s][i]["success_rate"] > bc[s][i]["success_rate"] for s in paired)
            versus = "" if method == "bc" else f", {above} of {len(paired)}"
            cells.append(f"{k}/{n} = {k / max(n, 1):.2f} [{lo:.2f}, {hi:.2f}]{versus}")
        lines.append(f"| {method} | {','.join(map(str, seeds))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
