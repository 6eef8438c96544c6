"""What drives an episode, and how two drivers share one.

An agent is anything with `reset(env)` and `act(obs, env)`. `act` returns the action to execute, or
a `Decision` when the step has more to say: a label that differs from what was executed (DAgger
stores the expert's action whatever ran) and per-step extras for the recorder (which actor drove,
what the learner proposed). The rollout loop (`sim/rollout.py`) treats both the same way.

Two combinators cover the corrections:
- `BetaMixture`: at every step the teacher's action runs with probability beta, the learner's
  otherwise; the label is always the teacher's (DAgger with a scripted expert).
- `GatedTakeover`: a gate (a person's take-over control, or a simulated operator) says who drives;
  the label is the driver's action and `interventions` marks the teacher's steps (HG-DAgger). When
  control returns to the learner its history and action queue are reset, so it re-plans from the
  state it is handed instead of finishing a chunk computed before the take-over.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import SimError


@dataclass
class Decision:
    action: np.ndarray  # what the environment executes (before any noise hook)
    label: np.ndarray | None = None  # what to imitate; None: the executed action
    extras: dict = field(default_factory=dict)  # per-step arrays for the recorder


def as_decision(output) -> Decision:
    if isinstance(output, Decision):
        return output
    return Decision(np.asarray(output, dtype=np.float64))


class BetaMixture:
    """Teacher with probability `beta` per step, learner otherwise; both act at every step (the
    teacher labels every visited state, the learner keeps its observation history current).

    Extras: `expert_executed` (1 where the teacher's action ran) and `policy_actions` (the learner's
    proposal). The coin flips come from a generator drawn at `reset` from numpy's global generator,
    which the rollout loop seeds with the episode seed: an episode depends only on its seed."""

    def __init__(self, teacher, learner, beta: float, seed: int = 0):
        if not 0.0 <= beta <= 1.0:
            raise SimError(f"beta must be in [0, 1], got {beta}")
        self.teacher, self.learner, self.beta, self.base_seed = teacher, learner, float(beta), int(seed)
        self.rng = np.random.default_rng(self.base_seed)

    def reset(self, env):
        self.teacher.reset(env)
        self.learner.reset(env)
        self.rng = np.random.default_rng([self.base_seed, int(np.random.randint(2**31))])

    def act(self, obs, env) -> Decision:
        label = as_decision(self.teacher.act(obs, env)).action
        proposal = as_decision(self.learner.act(obs, env)).action
        teacher_runs = bool(self.rng.random() < self.beta)
        return Decision(label if teacher_runs else proposal, label,
                        {"expert_executed": np.uint8(teacher_runs), "policy_actions": proposal.astype(np.float32)})


class GatedTakeover:
    """The teacher drives while `gate(obs, env, learner_action) -> bool` says so.

    The learner proposes at every step (its proposal is stored as `policy_actions`, also while the
    teacher drives); the teacher is asked only when the gate needs it or it drives. `interventions`
    is 1 on teacher-driven steps, and only those are labels for training (the others keep the
    executed action so the file stays a faithful record)."""

    def __init__(self, teacher, learner, gate: Callable):
        self.teacher, self.learner, self.gate = teacher, learner, gate
        self.teacher_driving = False
        self.handovers = 0

    def reset(self, env):
        self.teacher.reset(env)
        self.learner.reset(env)
        self.teacher_driving = False

    def act(self, obs, env) -> Decision:
        proposal = as_decision(self.learner.act(obs, env)).action
        drive = bool(self.gate(obs, env, proposal))
        if drive != self.teacher_driving:
            self.handovers += 1
            if not drive:
                self.learner.reset(env)  # back to the learner: drop its queue and history
                proposal = as_decision(self.learner.act(obs, env)).action
        self.teacher_driving = drive
        action = as_decision(self.teacher.act(obs, env)).action if drive else proposal
        return Decision(action, action, {"interventions": np.uint8(drive), "policy_actions": proposal.astype(np.float32)})
