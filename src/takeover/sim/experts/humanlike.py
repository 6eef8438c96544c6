"""Human-like demonstrations: a scripted pick-and-place expert acted out by a slow, hesitant person
(issue 17: learning from few slow human demos; issue 34: generation from human-like sources).

A person at a keyboard or gamepad is not a scripted expert: they wait before starting, move slowly and
unevenly, stop to look, and sometimes let go and grasp again. This perturbs the task's scripted expert
(a state machine re-derived from the simulator state on every call, so it recovers from anything)
the same ways, per demo at random:
- an idle start of 20-100 steps (no motion, gripper open);
- a slow hand: arm commands scaled by 0.25-0.5, plus smooth (Ornstein-Uhlenbeck) noise of std 0.1;
- pauses: with probability 1% per step, 10-40 idle steps;
- a regrasp in half of the demos (or as asked): once the object is first held (the expert's carry),
  keep still for 8 steps, open for 10, back off upward for 8, and let the expert approach and grasp
  again.

    agent = HumanLike("PickPlaceCan", seed=3)        # Lift, Stack, PickPlaceCan, NutAssemblySquare
    agent.phases                                      # per step: the expert's phase, or idle / hold / release / back off

Lengths come out at ~200-900 steps at 20 Hz for Lift (the issue's public 1.4.1 file: 226-1143).
"""
from __future__ import annotations

import numpy as np

from ..errors import SimError
from . import make_expert
from .grasping import PickAndPlaceExpert

HOLD_STEPS = 8  # a regrasping person, once the object is first held, keeps still this long (the grasp settles) ...
RELEASE_STEPS = 10  # ... then opens the gripper in place ...
BACK_OFF_STEPS = 8  # ... and moves up, open, before approaching again
BACK_OFF_SPEED = 0.4  # upward arm command while backing off (before the slow-hand scale)


class HumanLike:
    """The task's scripted expert, acted out by a slow, hesitant person (see the module doc).
    `regrasp`: None draws it (probability 0.5), True / False forces it."""

    def __init__(self, task: str, seed: int, regrasp: bool | None = None):
        self.expert = make_expert(task, seed=seed)
        if not isinstance(self.expert, PickAndPlaceExpert):
            raise SimError(f"human-like demos need a pick-and-place expert; {task} has none")
        self.rng = np.random.default_rng([17, seed])
        self.force_regrasp = regrasp

    def reset(self, env):
        self.expert.reset(env)
        rng = self.rng
        self.idle = int(rng.integers(20, 101))
        self.slow = float(rng.uniform(0.25, 0.5))
        self.ou = np.zeros(6)
        drawn = bool(rng.random() < 0.5)
        self.regrasp = drawn if self.force_regrasp is None else self.force_regrasp
        self.hold = self.release = self.back_off = 0
        self.gripper = -1.0
        self.phases: list[str] = []
        self.released_at: int | None = None  # the step the regrasp let go

    def _still(self):
        return np.concatenate([np.zeros(6), [self.gripper]])

    def act(self, obs, env):
        action, phase = self._act(obs, env)
        self.phases.append(phase)
        return action

    def _act(self, obs, env):
        rng = self.rng
        if self.idle > 0:
            self.idle -= 1
            return self._still(), "idle"
        if self.hold > 0:
            self.hold -= 1
            if self.hold == 0:
                self.release, self.back_off = RELEASE_STEPS, BACK_OFF_STEPS
                self.released_at = len(self.phases) + 1
            return self._still(), "hold"
        if self.release > 0:
            self.release -= 1
            self.gripper = -1.0
            return self._still(), "release"
        if self.back_off > 0:
            self.back_off -= 1
            up = np.zeros(7)
            up[2], up[6] = self.slow * BACK_OFF_SPEED, -1.0
            return up, "back off"
        if rng.random() < 0.01:
            self.idle = int(rng.integers(10, 41))
            return self._still(), "idle"
        action = np.asarray(self.expert.act(obs, env), dtype=np.float64).copy()
        phase = self.expert.phase
        if self.regrasp and phase == "carry":
            self.regrasp, self.hold, self.gripper = False, HOLD_STEPS, 1.0
            return self._still(), "hold"
        self.ou = 0.9 * self.ou + np.sqrt(1 - 0.81) * 0.1 * rng.normal(size=6)
        action[:6] = np.clip(self.slow * action[:6] + self.ou, -1, 1)
        self.gripper = float(action[6])
        return action, phase
