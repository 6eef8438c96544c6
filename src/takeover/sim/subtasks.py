"""Object-centric subtasks per task (for demo generation, MimicGen-style; DESIGN §8).

Each task with objects is a sequence of subtasks. A subtask names its reference object (whose frame
its end-effector motion is replayed in), how that object's frame may be turned without changing the
task (`yaw_period`: a cube looks the same every 90 degrees; 0 = any turn, e.g. a can, so only its
position counts; None = no symmetry), and an end signal computed from the simulator state alone, so
boundaries are found by replaying a demo's recorded states whatever recorded it.

    subtasks = subtasks_for("Lift")                 # SimError naming the tasks that have them
    ends = find_boundaries(env, subtasks, states)   # one end step per subtask, or None where not found

A subtask ends once its signal has held SETTLE states in a row: a grasp once both finger pads have
touched the object that long (the gripper closes over ~5 steps; ending at first contact would hand a
half-closed grasp to the next subtask, which is bridged to its start while the fingers still close),
the last subtask once the task's success has held that long (ending at the first success leaves a
replay on the threshold: a cube lifted exactly 4 cm by a lagging arm often stops just short). A grasp
subtask ends at the last such grasp before the next subtask's end: a grasp let go again (a person
regrasping: close, open, back off, come again) is not the one the next subtask carries on from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import SimError
from .experts.base import body_mat, body_pos, is_grasping

SETTLE = 5  # a subtask ends once its signal has held this many recorded states in a row


@dataclass(frozen=True)
class Subtask:
    name: str
    object_name: str  # the reference object, for reports
    object_pose: Callable  # env -> (pos (3,), rotation (3, 3)) of the reference object
    yaw_period: float | None  # symmetry of the reference object about the vertical; 0: any turn
    end: str  # "grasp" (both finger pads touch the object) or "success" (the task's own check)
    grasped_geoms: Callable | None = None  # env -> the object's geoms (grasp subtasks)
    held_pose: Callable | None = None  # env -> pose of the object carried during this subtask

    def signal(self, env) -> bool:
        """The end signal at the simulator's current state (a single state; settling is counted by
        the caller)."""
        if self.end == "grasp":
            return is_grasping(env, self.grasped_geoms(env))
        return bool(env.raw._check_success())


def _body(body_id_of: Callable):
    return lambda env: (body_pos(env, body_id_of(env)), body_mat(env, body_id_of(env)))


def _named_body(name: str):
    return _body(lambda env: env.raw.sim.model.body_name2id(name))


def _can(env):
    return env.raw.objects[env.raw.object_id]


def _nut(env):
    return env.raw.nuts[env.raw.nut_id]


def _square_peg(env):
    return env.raw.peg1_body_id if env.raw.nut_id == 0 else env.raw.peg2_body_id


_CUBE = _body(lambda env: env.raw.cube_body_id)
_QUARTER = np.pi / 2

SUBTASKS: dict[str, tuple[Subtask, ...]] = {
    "Lift": (
        Subtask("grasp cube", "cube", _CUBE, _QUARTER, "grasp", lambda env: env.raw.cube),
        Subtask("lift", "cube", _CUBE, _QUARTER, "success"),
    ),
    "PickPlaceCan": (
        Subtask("grasp can", "can", _body(lambda env: env.raw.obj_body_id[_can(env).name]), 0.0, "grasp", _can),
        Subtask("place in bin", "bin2", _named_body("bin2"), None, "success",
                held_pose=_body(lambda env: env.raw.obj_body_id[_can(env).name])),
    ),
    "NutAssemblySquare": (
        Subtask("grasp nut", "square nut", _body(lambda env: env.raw.obj_body_id[_nut(env).name]), None, "grasp", _nut),
        Subtask("place over peg", "square peg", _body(_square_peg), None, "success",
                held_pose=_body(lambda env: env.raw.obj_body_id[_nut(env).name])),
    ),
    "Stack": (
        Subtask("grasp cubeA", "cubeA", _body(lambda env: env.raw.cubeA_body_id), _QUARTER, "grasp",
                lambda env: env.raw.cubeA),
        Subtask("place on cubeB", "cubeB", _body(lambda env: env.raw.cubeB_body_id), _QUARTER, "success",
                held_pose=_body(lambda env: env.raw.cubeA_body_id)),
    ),
}


def subtasks_for(task: str) -> tuple[Subtask, ...]:
    try:
        return SUBTASKS[task]
    except KeyError:
        raise SimError(f"task {task!r} has no subtask declarations; tasks that have them: "
                       f"{', '.join(SUBTASKS)}") from None


def set_raw_state(env, state) -> None:
    """Put the simulator in a flattened state for reading poses and contacts (no observations)."""
    env.raw.sim.set_state_from_flattened(np.asarray(state, dtype=np.float64))
    env.raw.sim.forward()


def signals(env, subtasks, states) -> np.ndarray:
    """(T, K) bool: each subtask's end signal at each recorded state."""
    out = np.zeros((len(states), len(subtasks)), dtype=bool)
    for t, state in enumerate(states):
        set_raw_state(env, state)
        for k, sub in enumerate(subtasks):
            out[t, k] = sub.signal(env)
    return out


def boundaries_from_signals(subtasks, sig: np.ndarray, succeeded_at_end: bool = False) -> list:
    """One end step per subtask (a state index; the subtask's actions are those before it), each after
    the previous one; None from the first subtask whose signal is never seen. `succeeded_at_end`: the
    demo's last action reached success (its next state is not among the recorded ones)."""
    T = len(sig)
    ends, start = [], 0
    for k, sub in enumerate(subtasks):
        end = _first_settled(sig[:, k], start)
        if end is None and sub.end == "success" and k == len(subtasks) - 1 and succeeded_at_end and T > start + 1:
            end = T  # success came at the very end (a demo stopped as soon as it succeeded)
        if end is None:
            return ends + [None] * (len(subtasks) - k)
        if sub.end == "grasp" and k + 1 < len(subtasks):
            end = _last_grasp_before_next(subtasks, sig, k, end, succeeded_at_end)
        ends.append(int(end))
        start = end
    return ends


def _first_settled(signal: np.ndarray, start: int, stop: int | None = None) -> int | None:
    """The first state after `start` (and before `stop`) at which `signal` has held SETTLE states."""
    run = 0
    for t in range(start + 1, len(signal) if stop is None else stop):
        run = run + 1 if signal[t] else 0
        if run >= SETTLE:
            return t
    return None


def _last_grasp_before_next(subtasks, sig: np.ndarray, k: int, first: int, succeeded_at_end: bool) -> int:
    """A grasp that was let go is not the grasp the next subtask continues from (a person regrasps: closes,
    opens, backs off, comes again): grasp subtask k ends at the last settled grasp before the next
    subtask's end, found from the first settled grasp `first`."""
    # the following subtasks' search starts at `first`: blank their signals before it
    rest = sig[:, k + 1:].copy()
    rest[:first + 1] = False
    following = boundaries_from_signals(subtasks[k + 1:], rest, succeeded_at_end)
    stop = following[0]
    if stop is None:
        return first
    end = first
    while (later := _first_settled(sig[:, k], _run_end(sig[:, k], end), stop)) is not None:
        end = later
    return end


def _run_end(signal: np.ndarray, t: int) -> int:
    """The last state of the run of `signal` that holds at state t."""
    while t + 1 < len(signal) and signal[t + 1]:
        t += 1
    return t


def find_boundaries(env, subtasks, states, succeeded_at_end: bool = False) -> list:
    return boundaries_from_signals(subtasks, signals(env, subtasks, states), succeeded_at_end)
