"""A simulated operator: the scripted expert plays the person at the take-over control, so HG-DAgger
runs headless (CI, benchmarks) through the same take-over path as a human (`sim.agents.GatedTakeover`).

The rule, in action units of robosuite's OSC_POSE (1.0 = 5 cm / 0.5 rad of target offset per step):
- take over when the learner's proposed arm action (dims 0-5) differs from the expert's by more than
  `threshold` (L2), or its gripper command has the other sign, on `patience` consecutive steps: a
  person reacts to a policy that keeps going the wrong way, not to one noisy step;
- hand back once the learner's proposals (computed at every step, also while the operator drives)
  have agreed with the expert for `recover` consecutive steps.

Default threshold 0.5: the scripted experts' arm actions while reaching are about 0.3-1.0 in norm,
so 0.5 is "clearly another direction", and a learner trained on expert data proposes within ~0.1-0.3
on the states the demonstrations cover.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OperatorRule:
    threshold: float = 0.5
    patience: int = 3
    recover: int = 5

    def disagrees(self, expert_action, proposal) -> bool:
        expert_action, proposal = np.asarray(expert_action), np.asarray(proposal)
        arm = float(np.linalg.norm(expert_action[:6] - proposal[:6]))
        gripper = np.sign(expert_action[6]) != np.sign(proposal[6]) and abs(expert_action[6]) > 0.5
        return arm > self.threshold or bool(gripper)


class SimulatedOperator:
    """Both halves of the operator for `GatedTakeover`: `gate(obs, env, proposal)` decides who drives
    (asking the expert once per step) and `teacher` returns that step's expert action."""

    def __init__(self, expert, rule: OperatorRule = OperatorRule()):
        self.expert, self.rule = expert, rule
        self.driving, self.streak, self.action = False, 0, None
        self.teacher = _CachedTeacher(self)

    def reset(self, env):
        self.expert.reset(env)
        self.driving, self.streak, self.action = False, 0, None

    def gate(self, obs, env, proposal) -> bool:
        self.action = np.asarray(self.expert.act(obs, env), dtype=np.float64)
        disagree = self.rule.disagrees(self.action, proposal)
        if self.driving:
            self.streak = 0 if disagree else self.streak + 1
            if self.streak >= self.rule.recover:
                self.driving, self.streak = False, 0
        else:
            self.streak = self.streak + 1 if disagree else 0
            if self.streak >= self.rule.patience:
                self.driving, self.streak = True, 0
        return self.driving


class _CachedTeacher:
    def __init__(self, operator: SimulatedOperator):
        self.operator = operator

    def reset(self, env):
        self.operator.reset(env)

    def act(self, obs, env):
        return self.operator.action
