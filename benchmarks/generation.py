"""Does object-centric demo generation (`takeover augment --method generate`) turn a few demos into a
strong policy? Per task: from S scripted source demos, generate N (for each N asked); train the same
head with the same gradient steps on (a) the S sources alone, (b) each generated set, (c) N scripted
demos (the upper reference); evaluate each on the fixed evaluation seeds (Wilson 95% intervals).

    python benchmarks/generation.py --tasks Lift PickPlaceCan --generate 100 --seeds 1 --eval-episodes 30
    python benchmarks/generation.py                  # the full study: 3 tasks x 100/300/1000 x 3 seeds, 50 episodes

Every step is the command a user would run (collect, augment, train, eval), in this process; a step
whose output exists in --work is skipped, so a cut run continues (generation itself resumes from a
killed file). Reported per task: the generation success rate (successful attempts / attempts), failures
by subtask, and demos per CPU-minute (this process and its workers, user + system time). Results:
benchmarks/results/generation.json (paths relative to the repository).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result  # noqa: E402

def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (generation workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=["Lift", "PickPlaceCan", "NutAssemblySquare"])
    p.add_argument("--sources", type=int, default=10, help="Scripted source demos per task.")
    p.add_argument("--generate", type=int, nargs="+", default=[100, 300, 1000], help="Generated set sizes.")
    p.add_argument("--head", default="gmm")
    p.add_argument("--steps", type=int, default=5000, help="Gradient steps of every training run.")
    p.add_argument("--seeds", type=int, default=3, help="Training seeds.")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--workers", type=int, default=2, help="Processes for collection, generation and evaluation.")
    p.add_argument("--no-scripted", action="store_true", help="Skip the N-scripted-demos reference arm.")
    p.add_argument("--work", default=None, help="Folder for demos and runs (default: results/work/generation).")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from takeover.cli.app import run_cli
    from takeover.sim.stats import wilson_interval

    work = Path(args.work or RESULTS / "work" / "generation")
    work.mkdir(parents=True, exist_ok=True)

    def cli(*argv):
        code = run_cli([str(a) for a in argv])
        if code:
            sys.exit(f"step failed ({code}): takeover {' '.join(map(str, argv))}")

    tasks = {}
    for task in args.tasks:
        sources = work / f"{task}_sources{args.sources}.hdf5"
        if not sources.exists():
            cli("collect", "--task", task, "-n", args.sources, "--workers", args.workers, "-o", sources)
        data = {"sources": sources}
        generation = {}
        for n in args.generate:
            gen, report = work / f"{task}_gen{n}.hdf5", work / f"{task}_gen{n}.report.json"
            if not report.exists():
                cpu0, wall0 = cpu_seconds(), time.time()
                cli("augment", sources, "--method", "generate", "-n", n, "-o", gen, "--workers", args.workers,
                    "--report", report, *(["--resume"] if gen.exists() else []))
                rep = json.loads(report.read_text())
                rep["cpu_seconds"] = round(cpu_seconds() - cpu0, 1)
                rep["wall_seconds"] = round(time.time() - wall0, 1)
                report.write_text(json.dumps(rep, indent=2))
            rep = json.loads(report.read_text())
            successes = rep["kept"] + rep.get("surplus", 0)
            generation[n] = {
                "attempts": rep["attempts"], "kept": rep["kept"], "success_rate": rep["success_rate"],
                "ci95": wilson_interval(successes, rep["attempts"]), "failures_by_subtask": rep["failures_by_subtask"],
                "cpu_seconds": rep.get("cpu_seconds"), "wall_seconds": rep.get("wall_seconds"),
                "demos_per_cpu_minute": (round(60 * rep["kept"] / rep["cpu_seconds"], 2)
                                         if rep.get("cpu_seconds") else None),
                "resumed_from": rep["resumed_from"], "file": str(gen)}
            print(f"{task} generate {n}: {successes}/{rep['attempts']} attempts succeeded; "
                  f"{generation[n]['demos_per_cpu_minute']} demos per CPU-minute", flush=True)
            data[f"generated{n}"] = gen
            if not args.no_scripted:
                scripted = work / f"{task}_scripted{n}.hdf5"
                if not scripted.exists():
                    # seeds after the sources', so the reference is n fresh scenes like the generated ones
                    cli("collect", "--task", task, "-n", n, "--seed", 100_000, "--workers", args.workers,
                        "-o", scripted)
                data[f"scripted{n}"] = scripted
        runs = []
        for seed in range(args.seeds):
            for arm, path in data.items():
                run = work / f"{task}_{arm}_{args.head}_s{seed}"
                if not (run / "checkpoints" / "last.pt").exists():
                    cli("train", path, "--head", args.head, "--steps", args.steps, "--eval-episodes", 0,
                        "--threads", 1, "--seed", seed, "--out", run)
                if not (run / "eval.json").exists():
                    cli("eval", run, "--episodes", args.eval_episodes, "--workers", args.workers)
                ev = json.loads((run / "eval.json").read_text())
                runs.append({"arm": arm, "seed": seed, "run": str(run), "success_rate": ev["success_rate"],
                             "ci95": ev["ci95"], "episodes": ev["episodes"]})
                print(f"{task} {arm} seed {seed}: {ev['success_rate']:.2f} {ev['ci95']} over {ev['episodes']}",
                      flush=True)
        pooled = {}
        for arm in data:
            rs = [r for r in runs if r["arm"] == arm]
            wins = sum(round(r["success_rate"] * r["episodes"]) for r in rs)
            n = sum(r["episodes"] for r in rs)
            if not n:  # --seeds 0: generation numbers only
                continue
            pooled[arm] = {"successes": wins, "episodes": n, "success_rate": wins / n, "ci95": wilson_interval(wins, n)}
        tasks[task] = {"generation": generation, "runs": runs, "pooled": pooled, "sources_file": str(sources)}
        # written after every task, so a cut study keeps what it finished
        settings = {**vars(args), "work": str(work)}  # write_result makes paths repository-relative
        path = write_result("generation", {
            "settings": settings, "tasks": tasks,
            "notes": "sources: scripted demos (seeds 0..); generated episodes: seeds from 4,000,000; evaluation: "
                     "the fixed seeds from 1,000,000; last weights evaluated (no checkpoint selection); equal "
                     "gradient steps for every arm"}, args.out)
    print(json.dumps({t: v["pooled"] for t, v in tasks.items()}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
