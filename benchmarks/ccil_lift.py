"""Does CCIL help behaviour cloning with few demonstrations? BC on N scripted demos against BC on the same
demos plus their CCIL labels (`takeover augment --method ccil`, default options), same head, same
steps, last weights (no checkpoint selection), evaluated on the fixed evaluation seeds.

    python benchmarks/ccil_lift.py                          # Lift, 5 demos, gmm, 3000 steps, 2 seeds, 30 episodes
    python benchmarks/ccil_lift.py --seeds 3 --eval-episodes 50
    python benchmarks/ccil_lift.py --name tight --ccil-args "--labels backtrack --epsilon 0.5 --max-model-error 0.2" \
        --out benchmarks/results/ccil_Lift_tight.json

Every step is the command a user would run (collect, augment, train, eval), in this process; a step
whose output exists in --work is skipped, so a cut run continues. Results: benchmarks/results/
ccil_<task>.json (machine, settings, the augmentation report, one entry per (data, seed) with success
and its Wilson 95% interval, and the pooled success per data).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="Lift")
    p.add_argument("--demos", type=int, default=5)
    p.add_argument("--head", default="gmm")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--eval-episodes", type=int, default=30)
    p.add_argument("--ccil-args", default="", help="Extra `takeover augment` options, e.g. \"--epsilon 0.5\".")
    p.add_argument("--name", default="aug", help="Stem of the augmented file and its runs (one per --ccil-args).")
    p.add_argument("--work", default=None, help="Folder for demos and runs (default: results/work/ccil_<task>).")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from takeover.cli.app import run_cli
    from takeover.sim.stats import wilson_interval

    work = Path(args.work or RESULTS / "work" / f"ccil_{args.task}")
    work.mkdir(parents=True, exist_ok=True)
    demos, aug = work / f"{args.task.lower()}{args.demos}.hdf5", work / f"{args.name}{args.demos}.hdf5"

    def cli(*argv):
        code = run_cli([str(a) for a in argv])
        if code:
            sys.exit(f"step failed ({code}): takeover {' '.join(map(str, argv))}")

    if not demos.exists():
        cli("collect", "--task", args.task, "--expert", "scripted", "-n", args.demos, "--workers", 1, "-o", demos)
    if not aug.exists():
        cli("augment", demos, "--method", "ccil", "-o", aug, *args.ccil_args.split())
    import h5py

    with h5py.File(aug, "r") as f:
        report = json.loads(f["data"].attrs["ccil_report"])
    runs = []
    for seed in range(args.seeds):
        for name, data in (("demos", demos), ("demos+ccil", aug)):
            run = work / f"{data.stem}_s{seed}"
            if not (run / "checkpoints" / "last.pt").exists():
                cli("train", data, "--head", args.head, "--steps", args.steps, "--eval-episodes", 0, "--threads", 1,
                    "--seed", seed, "--out", run)
            if not (run / "eval.json").exists():
                cli("eval", run, "--episodes", args.eval_episodes, "--workers", 1)
            ev = json.loads((run / "eval.json").read_text())
            runs.append({"data": name, "seed": seed, "run": str(run), "success_rate": ev["success_rate"],
                         "ci95": ev["ci95"], "episodes": ev["episodes"]})
            print(f"{name} seed {seed}: {ev['success_rate']:.2f} {ev['ci95']} over {ev['episodes']}", flush=True)
    pooled = {}
    for name in ("demos", "demos+ccil"):
        rs = [r for r in runs if r["data"] == name]
        wins = sum(round(r["success_rate"] * r["episodes"]) for r in rs)
        n = sum(r["episodes"] for r in rs)
        pooled[name] = {"successes": wins, "episodes": n, "success_rate": wins / n, "ci95": wilson_interval(wins, n)}
    path = write_result(f"ccil_{args.task}", {
        "settings": vars(args), "augment_report": report, "runs": runs, "pooled": pooled,
        "notes": "last weights evaluated (no checkpoint selection); the same evaluation seeds for every run"},
        args.out)
    print(json.dumps(pooled, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
