"""Human-like demonstrations (Lift, PickPlaceCan, NutAssemblySquare, Stack) for studying learning and
demo generation from few slow human demos (issues 17, 34). The person is
takeover.sim.experts.humanlike.HumanLike (its doc says how it hesitates and regrasps). Only successful
demos are kept (success held 5 steps).

    python benchmarks/humanlike_demos.py -n 4 -o humanlike.hdf5 --seed 0
    python benchmarks/humanlike_demos.py --task PickPlaceCan -n 5 -o can_humanlike.hdf5 --seed 2
    python benchmarks/humanlike_demos.py --task NutAssemblySquare -n 3 -o nut_humanlike.hdf5 --max-steps 3000

Measured (seeds 0..5, regrasp forced): PickPlaceCan 4 of 6 succeed within 2,000 steps (631-1,045 steps);
NutAssemblySquare 1 of 4 (1,381 steps), the slow hand's yaw noise keeps the nut approach hovering.
"""
from __future__ import annotations

import argparse

from takeover.datasets import DemoWriter, EpisodeRecorder
from takeover.sim import EnvSpec, make_env
from takeover.sim.experts import EXPERT_SUCCESS_HOLD
from takeover.sim.experts.humanlike import HumanLike
from takeover.sim.rollout import run_episode

REGRASP = {"drawn": None, "always": True, "never": False}


def collect(out: str, n: int, seed: int = 0, max_steps: int = 1500, task: str = "Lift",
            regrasp: bool | None = None) -> list[int]:
    spec = EnvSpec(task=task)
    env = make_env(spec)
    lengths = []
    try:
        with DemoWriter(out, spec) as writer:
            s = seed
            while len(lengths) < n and s < seed + 5 * n:
                res = run_episode(env, HumanLike(task, s, regrasp), s, max_steps=max_steps,
                                  success_hold=EXPERT_SUCCESS_HOLD, record=EpisodeRecorder, episode_attrs={"source": "human", "note": "humanlike scripted"})
                s += 1
                if res.success:
                    writer.save(res.episode)
                    lengths.append(res.length)
    finally:
        env.close()
    return lengths


def main():
    p = argparse.ArgumentParser()
    p.add_argument("-n", type=int, default=4)
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--task", default="Lift", choices=("Lift", "PickPlaceCan", "NutAssemblySquare", "Stack"))
    p.add_argument("--regrasp", default="drawn", choices=tuple(REGRASP), help="Regrasp in half the demos "
                   "(drawn), in every one, or never.")
    p.add_argument("--max-steps", type=int, default=1500)
    args = p.parse_args()
    print(collect(args.out, args.n, args.seed, args.max_steps, args.task, REGRASP[args.regrasp]))


if __name__ == "__main__":
    main()
