"""Human-like Lift demonstrations for studying learning from few slow human demos (issue 17).

A person at a keyboard or gamepad is not a scripted expert: they wait before starting, move slowly and
unevenly, stop to look, and sometimes let go and grasp again. This perturbs the scripted Lift expert
(a state machine re-derived from the simulator state on every call, so it recovers from anything)
the same ways, per demo at random:
- an idle start of 20-100 steps (no motion, gripper open);
- a slow hand: arm commands scaled by 0.25-0.5, plus smooth (Ornstein-Uhlenbeck) noise of std 0.1;
- pauses: with probability 1% per step, 10-40 idle steps;
- a regrasp in half of the demos: 10 steps after first holding the cube, open for 10 steps and go again.
Only successful demos are kept (success held 5 steps). Lengths come out at ~200-900 steps at 20 Hz
(the issue's public 1.4.1 file: 226-1143).

    python benchmarks/humanlike_demos.py -n 4 -o humanlike.hdf5 --seed 0
"""
from __future__ import annotations

import argparse

import numpy as np

from takeover.datasets import DemoWriter, EpisodeRecorder
from takeover.sim import EnvSpec, make_env
from takeover.sim.experts import EXPERT_SUCCESS_HOLD, make_expert
from takeover.sim.experts.base import gripper_command
from takeover.sim.rollout import run_episode


class HumanLikeLift:
    """The scripted Lift expert, acted out by a slow, hesitant person (see the module doc)."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng([17, seed])
        self.expert = make_expert("Lift", seed=seed)

    def reset(self, env):
        self.expert.reset(env)
        rng = self.rng
        self.idle = int(rng.integers(20, 101))
        self.slow = float(rng.uniform(0.25, 0.5))
        self.ou = np.zeros(6)
        self.regrasp = bool(rng.random() < 0.5)
        self.held_for = 0
        self.release = 0
        self.gripper = -1.0

    def _still(self):
        return np.concatenate([np.zeros(6), [self.gripper]])

    def act(self, obs, env):
        rng = self.rng
        if self.idle > 0:
            self.idle -= 1
            return self._still()
        if self.release > 0:
            self.release -= 1
            self.gripper = -1.0
            return self._still()
        if rng.random() < 0.01:
            self.idle = int(rng.integers(10, 41))
            return self._still()
        action = np.asarray(self.expert.act(obs, env), dtype=np.float64).copy()
        self.ou = 0.9 * self.ou + np.sqrt(1 - 0.81) * 0.1 * rng.normal(size=6)
        action[:6] = np.clip(self.slow * action[:6] + self.ou, -1, 1)
        self.gripper = float(action[6])
        if self.regrasp and gripper_command(env) > 0.5 and action[6] > 0:
            self.held_for += 1
            if self.held_for == 10:
                self.regrasp, self.release = False, 10
        return action


def collect(out: str, n: int, seed: int = 0, max_steps: int = 1500) -> list[int]:
    spec = EnvSpec(task="Lift")
    env = make_env(spec)
    lengths = []
    try:
        with DemoWriter(out, spec) as writer:
            s = seed
            while len(lengths) < n and s < seed + 5 * n:
                res = run_episode(env, HumanLikeLift(s), s, max_steps=max_steps, success_hold=EXPERT_SUCCESS_HOLD,
                                  record=EpisodeRecorder, episode_attrs={"source": "human", "note": "humanlike scripted"})
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
    args = p.parse_args()
    print(collect(args.out, args.n, args.seed))


if __name__ == "__main__":
    main()
