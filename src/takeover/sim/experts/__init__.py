"""Scripted experts: closed-loop state machines over privileged simulator state, one per task.

    expert = make_expert("Lift", seed=0)
    expert.reset(env)
    action = expert.act(obs, env)
"""
from __future__ import annotations

from ..errors import SimError
from .base import Expert, ScriptedExpert
from .door import DoorExpert
from .lift import LiftExpert
from .nut_assembly_square import NutAssemblySquareExpert
from .pick_place_can import PickPlaceCanExpert
from .stack import StackExpert

# a scripted episode counts as a success once the task's success has held this many steps in a row
# (a cube dropped right after the lift check is not a demonstration)
EXPERT_SUCCESS_HOLD = 5

EXPERTS: dict[str, type[ScriptedExpert]] = {
    "Lift": LiftExpert,
    "Stack": StackExpert,
    "PickPlaceCan": PickPlaceCanExpert,
    "NutAssemblySquare": NutAssemblySquareExpert,
    "Door": DoorExpert,
}


def make_expert(task: str, seed: int | None = None, noise: float = 0.0) -> Expert:
    """The scripted expert for `task`; `noise` is the std of Gaussian noise added to the arm
    dimensions of every action (drawn from a generator seeded with `seed`)."""
    try:
        cls = EXPERTS[task]
    except KeyError:
        raise SimError(f"no scripted expert for task {task!r}; known tasks: {', '.join(EXPERTS)}") from None
    if noise < 0:
        raise SimError(f"expert noise must be >= 0, got {noise}")
    return cls(seed=seed, noise=noise)


__all__ = ["EXPERTS", "EXPERT_SUCCESS_HOLD", "Expert", "ScriptedExpert", "make_expert"]
