"""Learning Lift from 4 slow, human-like demos vs 4 scripted ones (issue 17, item 5).

Data: benchmarks/humanlike_demos.py (the scripted expert acted out slowly, with an idle start, pauses
and regrasps) and the scripted expert itself. Variants of the human-like data: as recorded, and with
idle steps removed (arm command ~0 and the gripper command unchanged: a person waiting teaches the
policy to wait). Each (data, head) is trained for a fixed step budget and evaluated on fixed seeds at
the horizon rule of policies.evaluate.horizon_for (the checkpoint carries it). Results are written
after every run, so a partial run still reports what it finished.

    python benchmarks/few_slow_demos.py                                   # every variant, 50 episodes
    python benchmarks/few_slow_demos.py --variants gaussian_chunk16 --data humanlike --episodes 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, key_values, write_result  # noqa: E402
from humanlike_demos import collect as collect_humanlike  # noqa: E402

from takeover.datasets import DemoReader, DemoWriter  # noqa: E402
from takeover.policies.evaluate import evaluate  # noqa: E402
from takeover.policies.train import TrainConfig, train  # noqa: E402
from takeover.sim import EnvSpec  # noqa: E402
from takeover.datasets.scripted_collection import collect_scripted  # noqa: E402


def idle_mask(actions: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Steps to keep: not (arm command ~0 and gripper command as before)."""
    still = np.abs(actions[:, :6]).max(axis=1) < tol
    same_grip = np.r_[False, np.sign(actions[1:, -1]) == np.sign(actions[:-1, -1])]
    return ~(still & same_grip)


def trim_idle(src: Path, out: Path) -> list[int]:
    lengths = []
    with DemoReader(src) as r, DemoWriter(out, r.spec) as w:
        for name in r.demos:
            ep = r.episode(name)
            keep = idle_mask(ep.actions)
            idx = np.flatnonzero(keep)
            # next_obs of a kept step: the observation at the next kept step (the last keeps its own)
            nxt = {k: np.concatenate([v[idx[1:]], ep.next_obs[k][idx[-1:]]]) for k, v in ep.obs.items()}
            w.save(replace(ep, actions=ep.actions[idx], states=ep.states[idx], obs={k: v[idx] for k, v in ep.obs.items()},
                           next_obs=nxt, rewards=ep.rewards[idx], dones=ep.dones[idx],
                           extras={k: v[idx] for k, v in ep.extras.items()}))
            lengths.append(len(idx))
    return lengths


VARIANTS = {
    # name: (head, head options) -- what each one tests against the plain gaussian
    "gaussian": ("gaussian", {}),
    "gaussian_chunk16": ("gaussian", {"action_horizon": 16, "exec_horizon": 8}),  # action chunking (ACT's fix for pauses)
    "gaussian_hist2": ("gaussian", {"obs_horizon": 2}),  # one step of history: is the arm moving?
    "lstm": ("lstm", {}),  # a recurrent history over the episode so far
    "diffusion": ("diffusion", {}),  # chunks of 16 actions from 2 observations (the head's defaults)
    "gmm": ("gmm", {}),  # a mixture: can "wait" and "close" near the cube stay two modes?
    "cvae": ("cvae", {}),  # a latent variable for the same ambiguity
    "autoregressive": ("autoregressive", {}),  # discretised per-dimension actions, chunks of 8 (defaults)
}


SAMPLED = "_sampled"  # suffix of any variant: the same checkpoint, evaluated with actions drawn from the head


def parse_variant(text: str) -> tuple[str, str, dict, bool]:
    """'gaussian_chunk16' (a named variant) or 'head:key=value,...', either with an optional '_sampled'
    suffix -> (name of the trained variant, head, options, sampled evaluation)."""
    sampled = text.endswith(SAMPLED)
    base = text[: -len(SAMPLED)] if sampled else text
    if base in VARIANTS:
        return (base, *VARIANTS[base], sampled)
    head, _, opts = base.partition(":")
    return base, head, key_values(opts), sampled


def table(results: dict) -> str:
    """Markdown: a row per variant, a column per data set, 'successes/episodes = rate [95% CI]'."""
    datas = [d for d in ("scripted", "humanlike", "humanlike_trimmed") if any(r["data"] == d for r in results.values())]
    variants = list(dict.fromkeys(key.split("/", 1)[1] for key in results))
    lines = ["| variant | " + " | ".join(datas) + " |", "|---|" + "---|" * len(datas)]
    for v in variants:
        cells = []
        for d in datas:
            r = results.get(f"{d}/{v}")
            cells.append(f"{r['successes']}/{r['episodes']} = {r['success_rate']:.2f} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
                         if r else "-")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS),
                   help=f"named ({', '.join(VARIANTS)}) or head:key=value,...; add {SAMPLED} to evaluate "
                        f"the same checkpoint with sampled actions")
    p.add_argument("--data", nargs="+", default=["scripted", "humanlike", "humanlike_trimmed"])
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--workdir", default="/tmp/few_slow_demos")
    p.add_argument("--table", action="store_true", help="print the results so far as a markdown table and stop")
    args = p.parse_args()
    out = RESULTS / "few_slow_demos.json"
    if args.table:
        print(table(json.loads(out.read_text())["results"]))
        return
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    files = {"scripted": work / "scripted.hdf5", "humanlike": work / "humanlike.hdf5",
             "humanlike_trimmed": work / "humanlike_trimmed.hdf5"}
    if not files["scripted"].exists():
        collect_scripted(EnvSpec(task="Lift"), str(files["scripted"]), 4, seed=0)
    if not files["humanlike"].exists():
        collect_humanlike(str(files["humanlike"]), 4, seed=0)
    if not files["humanlike_trimmed"].exists():
        trim_idle(files["humanlike"], files["humanlike_trimmed"])
    lengths = {}
    for name, path in files.items():
        with DemoReader(path) as r:
            lengths[name] = [r.num_samples(d) for d in r.demos]
    results = json.loads(out.read_text())["results"] if out.exists() else {}  # data/variant -> row
    for text in args.variants:
        name, head, options, sampled = parse_variant(text)
        for data in args.data:
            key = f"{data}/{text}"
            done = results.get(key)
            if done and done["episodes"] >= args.episodes and done["train_steps"] == args.steps:
                continue
            run = work / f"{data}_{name}_{args.steps}"
            t0 = time.time()
            if not (run / "checkpoints" / "best.pt").exists():
                train(TrainConfig(data=str(files[data]), out=str(run), head=head, head_options=options,
                                  steps=args.steps, eval_episodes=0, eval_every=args.steps, threads=1))
            report = evaluate(run, episodes=args.episodes, workers=args.workers, sample=sampled)
            results[key] = {"data": data, "variant": name, "sampled": sampled, "head": head, "head_options": options,
                            "episodes": report.episodes, "successes": report.successes,
                            "success_rate": report.success_rate, "ci95": report.ci95, "horizon": report.horizon,
                            "mean_length": report.mean_length, "train_steps": args.steps,
                            "seconds": round(time.time() - t0)}
            print(results[key], flush=True)
            write_result("few_slow_demos", {"demo_lengths": lengths, "results": results,
                                            "note": "results accumulate over invocations, keyed data/variant; "
                                                    "each row says its own train steps and episodes"}, out=str(out))


if __name__ == "__main__":
    main()
