"""Markdown tables made from benchmarks/results/*.json when the site is built, so no number in a results
table is typed by hand. Where a benchmark script prints its own table (corrections.py, few_slow_demos.py),
the page shows exactly that function's output. Each generator takes a file name under benchmarks/results/
and its own arguments, as written in a page's `<!-- gen: NAME FILE ARGS -->` marker."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@lru_cache(maxsize=None)
def _load_text(name: str) -> str:
    path = RESULTS / name
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} named in a docs page does not exist")
    return path.read_text()


def load(name: str) -> dict:
    return json.loads(_load_text(name))


def wilson(k: int, n: int) -> tuple[float, float]:
    from takeover.sim.stats import wilson_interval

    return wilson_interval(k, n)


def rate(result: dict) -> str:
    """'k/n = 0.62 [0.48, 0.74]' from a dict with success_rate, episodes and (ideally) successes and ci95."""
    n = result.get("episodes")
    k = result.get("successes", round(result["success_rate"] * n) if n else None)
    ci = result.get("ci95") or result.get("wilson95") or (wilson(k, n) if n else None)
    head = f"{k}/{n} = " if n else ""
    tail = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
    return f"{head}{result['success_rate']:.2f}{tail}"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


# ----- where and when ----------------------------------------------------------------------------------------
def machine(name: str) -> str:
    data = load(name)
    m = data.get("machine")
    if m is None and isinstance(data.get("runs"), dict):  # files of many runs: each run records its own
        return (f"*Source: `benchmarks/results/{name}`; each run records its machine, commit and date in the "
                f"file.*\n")
    if isinstance(m, dict):
        cpu = m.get("processor") or m.get("cpu") or m.get("platform") or "?"
        cores = m.get("cpu_count") or m.get("cores") or "?"
        when = m.get("date") or ""
        commit = m.get("commit") or data.get("commit") or data.get("git_commit") or ""
    else:
        cpu, cores, when, commit = data.get("cpu", m or "?"), "?", "", data.get("commit", "")
    parts = [f"{cpu}, {cores} cores"] + [p for p in (when, f"commit {commit}" if commit else "") if p]
    return f"*Source: `benchmarks/results/{name}`; measured on {', '.join(parts)}.*\n"


# ----- heads -------------------------------------------------------------------------------------------------
def heads(name: str, prefix: str = "") -> str:
    runs = {k: v for k, v in load(name)["runs"].items() if k.startswith(prefix)}
    rows = []
    for key, r in runs.items():
        latency = r.get("act_latency") or {}
        act = f"{_num(latency['p50_ms'])} / {_num(latency['p95_ms'])}" if "p50_ms" in latency else "-"
        every = latency.get("replans_every", 1)
        replan = (f"{_num(latency['replan']['p50_ms'])} (every {every})" if "replan" in latency
                  else "in the p95" if every > 1 else "each step")
        rows.append([f"`{key}`", r.get("head", "?"), r.get("demos", "?"), _num(r.get("steps")), rate(r), act,
                     replan if latency else "-", _num(r.get("train_seconds_total"))])
    return _table(["run", "head", "demos", "steps", "success (Wilson 95%)", "act() p50 / p95 ms (batch 1)",
                   "re-plan p50 ms", "train s"], rows)


def experts(name: str) -> str:
    tasks = load(name)["tasks"]
    rows = [[task, rate(t), t.get("bar", "-"), _num(t.get("mean_length")), _num(t.get("steps_per_s"))]
            for task, t in tasks.items()]
    return _table(["task", "success (Wilson 95%)", "bar", "mean length", "steps/s"], rows)


def act_latency(name: str) -> str:
    data = load(name)
    rows = [[head, _num(v["act"]["p50_ms"]), _num(v["act"]["p95_ms"]),
             f"{_num(v['replan']['p50_ms'])} / {_num(v['replan']['p95_ms'])}" if v.get("replan") else "-"]
            for head, v in data["heads"].items()]
    return _table(["head", "act() p50 ms", "act() p95 ms", "re-plan p50 / p95 ms (chunked heads)"], rows)


def samplers(name: str) -> str:
    rows = []
    for run, entry in load(name)["runs"].items():
        for sampler, r in entry["samplers"].items():
            rows.append([f"`{run}`", sampler, rate(r), _num(r.get("points_vs_ddpm100"))])
    return _table(["checkpoint@step", "sampler", "success (Wilson 95%)", "points vs DDPM-100"], rows)


# ----- diffusion on the CPU ----------------------------------------------------------------------------------
def diffusion_paths(name: str) -> str:
    rows = []
    for r in load(name)["results"]:
        paths = r.get("ddim10_paths")
        if not paths:
            continue
        wall, cpu = paths["median_of_rounds_ms"], paths.get("thread_cpu_median_of_rounds_ms", {})
        ratio = paths.get("thread_cpu_ratio_to_modules") or paths.get("ratio_to_modules", {})
        for path in wall:
            rows.append([f"{r['size']} ({r['parameters']:,} parameters)", path, _num(cpu.get(path)), _num(wall[path]),
                         _num(ratio.get(path)), _num(paths["setup_s"].get(path)),
                         f"{paths['max_abs_diff_vs_modules'].get(path, 0):.1e}"])
    return _table(["U-Net", "path", "CPU ms per chunk (median of rounds)", "wall ms per chunk", "vs modules",
                   "setup s", "max abs diff vs modules"], rows)


def diffusion_latency(name: str) -> str:
    rows = []
    for r in load(name)["results"]:
        for sampler in ("ddim10", "ddpm100"):
            s = r.get(sampler)
            if not s:
                continue
            cpu = s.get("thread_cpu", {})
            rows.append([r["size"], r.get("threads", 1), sampler, _num(s["wall"]["median_ms"]), _num(s["wall"]["p95_ms"]),
                         _num(cpu.get("median_ms"))])
    return _table(["U-Net", "threads", "sampler", "wall median ms per chunk", "wall p95 ms", "CPU median ms"], rows)


# ----- label-budget studies (DAgger, DART) -------------------------------------------------------------------
def label_curves(name: str, group: str = "method") -> str:
    """One row per run (method or arm, training seed): every evaluated point as 'labels: k/n = rate [CI]'."""
    rows = []
    for key, entry in sorted(load(name)["entries"].items(), key=lambda kv: (kv[1][group], kv[1]["seed"])):
        points = sorted(entry["points"], key=lambda p: p["expert_labels"])
        rows.append([entry[group], entry["seed"], "<br>".join(f"{p['expert_labels']:,}: {rate(p)}" for p in points)])
    return _table([group, "seed", "points (expert labels: success, Wilson 95%)"], rows)


def _point_name(point: dict, index: int) -> str:
    """What a point is: the run it is matched to (BC at another method's label count), or its round."""
    if "matches" in point:
        return f"at {point['matches']}"
    for key in ("round", "iteration"):
        if key in point:
            return f"{key} {point[key]}"
    return f"point {index}"


def label_pooled(name: str, group: str = "method") -> str:
    """Each run's points summed over the training seeds, point by point (the same round, or BC at the
    same matched run): successes over all their episodes, Wilson 95%."""
    by: dict[tuple, list] = {}
    for entry in load(name)["entries"].values():
        for i, p in enumerate(sorted(entry["points"], key=lambda p: p["expert_labels"])):
            by.setdefault((entry[group], _point_name(p, i)), []).append(p)
    rows = []
    for (arm, point), pts in sorted(by.items(), key=lambda kv: (kv[0][0], min(p["expert_labels"] for p in kv[1]))):
        k, n = sum(p["successes"] for p in pts), sum(p["episodes"] for p in pts)
        lo, hi = wilson(k, n)
        labels = sorted(p["expert_labels"] for p in pts)
        rows.append([arm, point, f"{labels[0]:,}-{labels[-1]:,}", len(pts), f"{k}/{n} = {k / n:.2f} [{lo:.2f}, {hi:.2f}]"])
    return _table([group, "point", "expert labels", "seeds", "pooled success (Wilson 95%)"], rows)


# ----- corrections study -------------------------------------------------------------------------------------
def corrections(name: str, kind: str, budget: str = "20", seed: str = "") -> str:
    import corrections_stats as study  # benchmarks/corrections_stats.py: the tables corrections.py prints

    data = load(name)
    if kind == "per-seed":
        return study.table(data) + "\n"
    if kind == "pooled":
        return study.pooled_table(data) + "\n"
    if kind == "paired":
        return study.paired_table(data) + "\n"
    if kind == "compounding":
        if seed:
            data = {k: v for k, v in data.items() if not k.startswith("compounding/") or k.split("/")[1] == seed}
        text = study.compounding_table(data, float(budget))
        if not text:
            raise ValueError(f"{name}: no compounding run at {budget} demos' worth (seed {seed or 'any'})")
        caption, table = text.split("\n", 1)
        return f"*{caption}*\n\n{table}\n"
    raise ValueError(f"corrections table kind {kind!r}: per-seed, pooled, paired or compounding")


def ccil(name: str) -> str:
    data = load(name)
    rows = [[r["data"], r["seed"], rate(r)] for r in data["runs"]]
    rows += [[arm, "pooled", rate(p)] for arm, p in data["pooled"].items()]
    return _table(["data", "training seed", "success (Wilson 95%)"], rows)


# ----- RL fine-tuning ----------------------------------------------------------------------------------------
def finetune(name: str) -> str:
    data = load(name)
    rows = []
    for method, m in data["methods"].items():
        if "curve" not in m:
            if "success_rate" in m:  # a baseline without RL (more demos): one evaluation
                rows.append([method, "-", rate(m), "-", "-"])
            continue  # side measurements (notes, speeds): in the JSON, quoted in the text
        curve = ", ".join(f"{p['env_steps'] / 1000:.1f}k: {p['success_rate']:.2f}" for p in m["curve"][1:])
        start = rate(m["curve"][0]) if m["curve"] else "-"
        reached = m.get("steps_to_90")
        rows.append([method, start, curve, _num(reached) if reached is not None else "not reached",
                     _num(m.get("env_steps_per_s"))])
    return _table(["run", "start (0 env steps)", "evaluated success at env steps", "env steps to 0.9", "env steps/s"],
                  rows)


# ----- other studies -----------------------------------------------------------------------------------------
def few_slow(name: str) -> str:
    import few_slow_demos  # benchmarks/few_slow_demos.py --table prints the same

    return few_slow_demos.table(load(name)["results"]) + "\n"


def relabel(name: str) -> str:
    data = load(name)
    rows = []
    for d in data["relabel"]["demos"]:
        before, after = d["open_loop_before"], d["open_loop_after"]
        rows.append([d["demo"], d["steps"], f"{d['before']['qpos_rel']:.3f} / {d['after']['qpos_rel']:.3f}",
                     f"{d['before']['qvel_rel']:.2f} / {d['after']['qvel_rel']:.2f}",
                     f"{before['joint_error_mean']:.3f} / {after['joint_error_mean']:.3f}",
                     f"{before['success']} / {after['success']}"])
    return _table(["demo", "steps", "one-step position error, relative (recorded / relabelled)",
                   "velocity error, relative", "open-loop joint error, rad", "open-loop success"], rows)


def save_cost(name: str) -> str:
    data = load(name)
    rows = []
    for setting, s in data["settings"].items():
        for size in ("small", "large"):
            if size in s:
                rows.append([setting, f"{size} ({s[size]['file_mb_before']:.0f} MB before)",
                             f"{s[size]['save_s_median'] * 1000:.0f} ms", f"{s[size].get('close_s', 0):.2f} s"])
    read = [[setting, f"{s['read']['load_s_per_episode'] * 1000:.0f} ms", f"{s['read']['random_frame_read_ms']:.2f} ms",
             f"{s.get('file_mb_per_episode', 0):.2f} MB"] for setting, s in data["settings"].items() if "read" in s]
    codecs = [[c, f"{v['ratio']:.2f}", f"{v['write_ms_per_frame']:.3f}", f"{v['read_ms_per_frame']:.3f}"]
              for c, v in data.get("codecs", {}).items()]
    out = _table(["writer", "file", "save (median)", "close"], rows) + "\n"
    out += _table(["writer", "load one episode", "random frame", "on disk per episode"], read)
    if codecs:
        out += "\n" + _table(["image codec", "ratio", "write ms/frame", "read ms/frame"], codecs)
    return out


def flat(name: str, *keys: str) -> str:
    """Every scalar under the named top-level keys (all but `machine` when none), as key | value rows."""
    data = load(name)
    rows: list[list] = []

    def walk(prefix: str, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 8:
                rows.append([f"`{prefix}`", ", ".join(_num(v) for v in value)])
        else:
            rows.append([f"`{prefix}`", _num(value)])

    for key in keys or [k for k in data if k != "machine"]:
        walk(key, data[key])
    return _table(["measure", "value"], rows)


def generation(name: str) -> str:
    """Demo generation (benchmarks/generation.py): per task, the generation runs (attempts, kept, where the
    failed attempts failed, demos per CPU-minute), then the trained policies' success per arm, pooled over
    training seeds."""
    out = []
    for task, t in load(name)["tasks"].items():
        rows = [[task, size, g["attempts"], g["kept"], rate({"success_rate": g["success_rate"], "ci95": g["ci95"],
                                                               "episodes": g["attempts"], "successes": g["kept"]}),
                 ", ".join(f"{k} {v}" for k, v in g["failures_by_subtask"].items()) or "-",
                 _num(g["demos_per_cpu_minute"])]
                for size, g in t["generation"].items()]
        out.append(_table(["task", "asked", "attempts", "kept", "generation success", "failed at",
                           "demos per CPU-minute"], rows))
        if t.get("pooled"):
            seeds = sorted({r["seed"] for r in t["runs"]})
            out.append(_table([f"{task}: trained on", f"success ({len(seeds)} training seed(s), pooled)"],
                              [[arm, rate(p)] for arm, p in t["pooled"].items()]))
    return "\n".join(out)


GENERATORS = {
    "machine": machine, "heads": heads, "experts": experts, "act-latency": act_latency, "samplers": samplers,
    "diffusion-paths": diffusion_paths, "diffusion-latency": diffusion_latency, "label-curves": label_curves,
    "label-pooled": label_pooled, "corrections": corrections, "ccil": ccil, "finetune": finetune,
    "few-slow": few_slow, "relabel": relabel, "save-cost": save_cost, "flat": flat, "generation": generation,
}
