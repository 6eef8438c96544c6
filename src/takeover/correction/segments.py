"""Source segments for demo generation: each successful source demo cut at its subtask boundaries
(sim/subtasks.py), with the end-effector poses of every step and its reference object's pose at the
segment's start, all read from the recorded MuJoCo states (so any recorder's files work).

    library = load_library("sources.hdf5", overrides="fix.json")
    library.segments[k]          # the segments of subtask k, one per usable source demo

Boundaries come, in order of precedence, from the override file (JSON {"demo_3": [end_1, ..., end_K]},
state indices where each subtask ends), from the demo attribute `subtask_ends` when a file carries
it, or from replaying the states. A demo where a boundary cannot be found is left out with a warning.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from takeover.datasets import DemoReader
from takeover.datasets.errors import DatasetError
from takeover.datasets.schema import SUBTASK_ENDS_ATTR
from takeover.sim.env import make_env
from takeover.sim.errors import SimError
from takeover.sim.experts.base import eef_mat, eef_pos
from takeover.sim.subtasks import find_boundaries, set_raw_state, subtasks_for

from .errors import CorrectionError

log = logging.getLogger(__name__)



@dataclass
class Segment:
    demo: str  # the source demo's name
    subtask: int
    eef_pos: np.ndarray  # (n + 1, 3) world, at each state of the segment and the state after it
    eef_mat: np.ndarray  # (n + 1, 3, 3)
    gripper: np.ndarray  # (n,) recorded gripper actions
    object_pos: np.ndarray  # (3,) the reference object at the segment's first state
    object_mat: np.ndarray  # (3, 3)
    target_pos: np.ndarray | None = None  # (n, 3) world: where each recorded action sent the hand ...
    target_mat: np.ndarray | None = None  # (n, 3, 3) ... (the controller's set-point, not where it got)
    held_offset: np.ndarray | None = None  # (3,) the carried object's position in the gripper frame at the start

    def __len__(self) -> int:
        return len(self.gripper)


@dataclass
class Library:
    task: str
    spec: object  # the source file's EnvSpec
    subtasks: tuple
    segments: list  # per subtask: [Segment, ...]
    ends: dict = field(default_factory=dict)  # demo -> [end per subtask]
    left_out: dict = field(default_factory=dict)  # demo -> why

    @property
    def demos(self) -> list[str]:
        return list(self.ends)

    # the declarations hold functions: they travel to workers by task name
    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "subtasks"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.subtasks = subtasks_for(self.task)


def read_overrides(path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CorrectionError(f"{path}: no such override file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CorrectionError(f"{path}: not a JSON boundary file ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(x, int) for x in v)
                                             for v in data.values()):
        raise CorrectionError(f'{path}: expected {{"demo_<i>": [end step per subtask, ...], ...}}')
    return {(f"demo_{k}" if str(k).isdigit() else str(k)): v for k, v in data.items()}


def _check_ends(ends, T: int, K: int) -> str | None:
    if len(ends) != K:
        return f"{len(ends)} boundaries given, the task has {K} subtasks"
    if any(e is None for e in ends):
        return None
    prev = 0
    for e in ends:
        if not prev < e <= T:
            return f"boundaries {ends} must increase within 1..{T}"
        prev = e
    return None


def load_library(path, overrides=None, env=None, recompute: bool = False) -> Library:
    """Read the successful demos of `path` and cut them into segments. Raises CorrectionError when the
    task has no subtask declarations, the file holds no successful demo, a demo's states do not fit
    the task's model, or no demo can be segmented. `recompute`: ignore boundaries stored in the file."""
    from takeover.datasets.model_loading import load_model

    path = Path(path)
    try:
        reader = DemoReader(path)
    except DatasetError as exc:
        raise CorrectionError(str(exc)) from None
    with reader:
        if reader.spec is None:
            raise CorrectionError(f"{path}: no environment spec (takeover_spec / env_args); import it first "
                                  f"(takeover data import-robosuite)")
        task = reader.spec.task
        try:
            subtasks = subtasks_for(task)
        except SimError as exc:
            raise CorrectionError(str(exc)) from None
        good = [n for n in reader.demos if reader.attrs(n).get("success", False)]
        if not good:
            raise CorrectionError(f"{path}: none of its {len(reader.demos)} demos is successful; generation needs "
                                  f"successful source demos")
        override = read_overrides(overrides) if overrides else {}
        unknown = sorted(set(override) - set(reader.demos))
        if unknown:
            raise CorrectionError(f"{overrides}: names demos the file does not have: {', '.join(unknown[:5])}")
        own_env = env is None
        if own_env:
            import dataclasses

            env = make_env(dataclasses.replace(reader.spec, camera_names=()))
        lib = Library(task, reader.spec, subtasks, [[] for _ in subtasks])
        try:
            for name in good:
                episode = reader.episode(name, check=False)
                where = f"{path}, {name}"
                states = episode.states
                if states.ndim != 2 or len(states) < 2 or states.shape[1] == 0:
                    raise CorrectionError(f"{where}: has no recorded states; generation replays states to find "
                                          f"the subtasks")
                try:
                    load_model(env, episode.model_file, states[0], where)
                except DatasetError as exc:
                    raise CorrectionError(str(exc)) from None
                if states.shape[1] != env.state_dim:
                    raise CorrectionError(f"{where}: states have {states.shape[1]} values, the {task} model needs "
                                          f"{env.state_dim}; they cannot be set")
                stored = None if recompute else reader.attrs(name).get(SUBTASK_ENDS_ATTR)
                ends = override.get(name) or (list(stored) if stored is not None else None)
                if ends is None:
                    # the state after the last action tells whether the last action reached success
                    final = _after_last(env, states[-1], episode)
                    ends = find_boundaries(env, subtasks, states, succeeded_at_end=final)
                problem = _check_ends(ends, len(states), len(subtasks))
                if problem:
                    raise CorrectionError(f"{where}: {problem}")
                if any(e is None for e in ends):
                    missing = subtasks[ends.index(None)].name
                    lib.left_out[name] = f"no end found for subtask '{missing}'"
                    log.warning("%s: no end found for subtask '%s'; left out of the sources", where, missing)
                    continue
                lib.ends[name] = [int(e) for e in ends]
                for k, seg in enumerate(_cut(env, subtasks, name, states, episode, ends)):
                    lib.segments[k].append(seg)
        finally:
            if own_env:
                env.close()
    if not lib.ends:
        why = "; ".join(f"{k}: {v}" for k, v in list(lib.left_out.items())[:3])
        raise CorrectionError(f"{path}: no source demo could be cut into subtasks ({why})")
    return lib


def _after_last(env, last_state, episode) -> bool:
    from takeover.datasets.action_fit import step_from

    executed = episode.extras.get("executed_actions", episode.actions)
    step_from(env, last_state, executed[-1])
    env.raw.sim.forward()
    return bool(env.raw._check_success())


def _cut(env, subtasks, name, states, episode, ends) -> list[Segment]:
    T = len(states)
    pos, mat = np.zeros((T + 1, 3)), np.zeros((T + 1, 3, 3))
    for t, state in enumerate(states):
        set_raw_state(env, state)
        pos[t], mat[t] = eef_pos(env), eef_mat(env)
    from takeover.datasets.action_fit import step_from

    step_from(env, states[-1], episode.extras.get("executed_actions", episode.actions)[-1])
    env.raw.sim.forward()
    pos[T], mat[T] = eef_pos(env), eef_mat(env)  # after the last action
    grip = np.asarray(episode.actions, np.float64)[:, -1]
    tpos, tmat = set_points(env, pos[:T], mat[:T], episode.extras.get("executed_actions", episode.actions))
    out, start = [], 0
    for k, end in enumerate(ends):
        set_raw_state(env, states[start])
        opos, omat = subtasks[k].object_pose(env)
        held = None
        if subtasks[k].held_pose is not None:
            held = mat[start].T @ (subtasks[k].held_pose(env)[0] - pos[start])
        out.append(Segment(name, k, pos[start:end + 1].copy(), mat[start:end + 1].copy(), grip[start:end].copy(),
                           np.array(opos), np.array(omat), tpos[start:end].copy(), tmat[start:end].copy(), held))
        start = end
    return out


def rotation_from_rotvec(r) -> np.ndarray:
    angle = float(np.linalg.norm(r))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(r) / angle
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def set_points(env, pos, mat, actions):
    """The OSC set-point of each recorded (delta) action: the pose it told the controller to reach
    (experts/base.py's convention, inverted). Replaying set-points rather than the poses reached keeps
    the source's timing: the arm lags its set-point by about a step, so aiming at the next reached pose
    makes a replay lag the source by one more step each time (a grasp then closes ~1 cm too high)."""
    from takeover.sim.experts.base import POS_SCALE, ROT_SCALE, base_mat

    base = base_mat(env)
    a = np.clip(np.asarray(actions, np.float64), -1.0, 1.0)
    tpos = pos + (a[:, :3] * POS_SCALE) @ base.T
    tmat = np.stack([rotation_from_rotvec(base @ (a[t, 3:6] * ROT_SCALE)) @ mat[t] for t in range(len(a))])
    return tpos, tmat
