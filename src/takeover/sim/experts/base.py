"""Shared pieces of the scripted experts: the `Expert` protocol, a base class that adds seeded
noise and clipping, and helpers that read privileged simulator state and turn a target pose into an
OSC_POSE delta action.

Every expert is a closed-loop state machine: each call to `act` re-derives the phase from the
simulator state (where the object is, whether it is grasped, how open the gripper is), so the
expert acts sensibly from any state a learner wanders into. Nothing in an expert depends on how
many steps have passed.

Action convention (robosuite Panda, OSC_POSE, delta, base frame): a[0:3] = position offset, 1.0 =
5 cm; a[3:6] = axis-angle offset, 1.0 = 0.5 rad; a[6] = gripper, -1 open, +1 close.
"""
from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np

logger = logging.getLogger(__name__)

POS_SCALE = 0.05  # metres per unit action
ROT_SCALE = 0.5  # radians per unit action
OPEN, CLOSE = -1.0, 1.0

# Panda finger joint opening (qpos[0] - qpos[1]) in metres: ~0.08 fully open, ~0 closed on nothing
FINGER_OPEN_WIDTH = 0.075
FINGER_CLOSED_WIDTH = 0.004


@runtime_checkable
class Expert(Protocol):
    def reset(self, env) -> None: ...

    def act(self, obs: dict, env) -> np.ndarray: ...


class ScriptedExpert:
    """Base class: subclasses implement `_act(env) -> (action, phase)`; this adds optional seeded
    Gaussian noise on the arm dimensions and clips to [-1, 1]."""

    task: str = ""

    def __init__(self, seed: int | None = None, noise: float = 0.0):
        self.seed = seed
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)
        self.phase = "init"

    def reset(self, env) -> None:
        self.phase = "init"

    def act(self, obs: dict, env) -> np.ndarray:
        action, phase = self._act(env)
        if phase != self.phase:
            logger.debug("%s expert: %s -> %s", self.task, self.phase, phase)
            self.phase = phase
        action = np.asarray(action, dtype=np.float64)
        if self.noise > 0:
            action[:6] += self.rng.normal(0.0, self.noise, size=6)
        return np.clip(action, -1.0, 1.0)

    def _act(self, env) -> tuple[np.ndarray, str]:
        raise NotImplementedError


# --- privileged state ---------------------------------------------------------------------------
def robot(env):
    return env.raw.robots[0]


def eef_pos(env) -> np.ndarray:
    r = robot(env)
    return np.array(env.raw.sim.data.site_xpos[r.eef_site_id["right"]])


def eef_mat(env) -> np.ndarray:
    r = robot(env)
    return np.array(env.raw.sim.data.site_xmat[r.eef_site_id["right"]]).reshape(3, 3)


def base_mat(env) -> np.ndarray:
    r = robot(env)
    return np.array(env.raw.sim.data.get_body_xmat(r.robot_model.root_body)).reshape(3, 3)


def body_pos(env, body_id: int) -> np.ndarray:
    return np.array(env.raw.sim.data.body_xpos[body_id])


def body_mat(env, body_id: int) -> np.ndarray:
    return np.array(env.raw.sim.data.body_xmat[body_id]).reshape(3, 3)


def finger_width(env) -> float:
    """Distance between the two Panda fingers (metres)."""
    r = robot(env)
    q = env.raw.sim.data.qpos[r._ref_gripper_joint_pos_indexes["right"]]
    return float(q[0] - q[1])


def gripper_command(env) -> float:
    """The gripper's internal command in [-1, 1]: robosuite ramps it 0.2 per step toward the sign of
    the action, so it is state the simulator's qpos does not hold."""
    current = np.atleast_1d(getattr(robot(env).gripper["right"], "current_action", 0.0))
    return float(current[-1])


def is_grasping(env, object_geoms) -> bool:
    """Both finger pads touch the object (robosuite's contact-based check)."""
    return bool(env.raw._check_grasp(gripper=robot(env).gripper["right"], object_geoms=object_geoms))


# --- rotations ----------------------------------------------------------------------------------
def yaw_of(mat: np.ndarray) -> float:
    """Heading of a body frame's x axis in the world xy plane."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def gripper_yaw(mat: np.ndarray) -> float:
    """Heading of the gripper: the yaw of its frame's y axis. At yaw 0 (the Panda home pose) the
    fingers close along world y; `down_with_yaw(gripper_yaw(m))` is `m` with the tilt removed."""
    return float(np.arctan2(mat[1, 1], mat[0, 1]))


def wrap_angle(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


def closest_symmetric_yaw(target: float, current: float, period: float) -> float:
    """The angle equal to `target` modulo `period` that is closest to `current`."""
    return current + float((target - current + period / 2) % period - period / 2)


def rot_z(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# gripper pointing straight down, fingers closing along world y (the Panda home pose, minus its tilt):
# the eef site's x axis is world y, its y axis world x, its z axis (approach) world -z
DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def down_with_yaw(yaw: float) -> np.ndarray:
    return rot_z(yaw) @ DOWN


def rotvec_between(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """World-frame axis-angle r with exp(r) @ current = target."""
    rel = target @ current.T
    cos = np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([rel[2, 1] - rel[1, 2], rel[0, 2] - rel[2, 0], rel[1, 0] - rel[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-6:  # angle ~ pi: take the axis from the symmetric part
        w, v = np.linalg.eigh((rel + rel.T) / 2.0)
        axis = v[:, np.argmax(w)]
        norm = 1.0
    return axis / norm * angle


# --- P-control ----------------------------------------------------------------------------------
def clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v if n <= limit or n == 0 else v * (limit / n)


def position_action(env, target: np.ndarray, gain: float = 1.0, max_speed: float = 1.0) -> np.ndarray:
    """Arm-position part of the action moving the end effector toward `target` (world frame).
    `gain` is the fraction of the remaining error put into this step's set-point offset; the norm
    is capped at `max_speed` (1.0 = 5 cm per step)."""
    err_world = np.asarray(target, dtype=np.float64) - eef_pos(env)
    err_base = base_mat(env).T @ err_world
    return clip_norm(gain * err_base / POS_SCALE, max_speed)


def orientation_action(env, target_mat: np.ndarray, gain: float = 1.0, max_speed: float = 0.5) -> np.ndarray:
    """Arm-rotation part of the action turning the end effector toward `target_mat` (world frame)."""
    err_world = rotvec_between(target_mat, eef_mat(env))
    err_base = base_mat(env).T @ err_world
    return clip_norm(gain * err_base / ROT_SCALE, max_speed)


def pose_action(env, target_pos, target_mat, gripper: float, pos_gain: float = 1.0, max_speed: float = 1.0,
                rot_gain: float = 1.0, max_rot: float = 0.5) -> np.ndarray:
    return np.concatenate([
        position_action(env, target_pos, pos_gain, max_speed),
        orientation_action(env, target_mat, rot_gain, max_rot),
        [gripper],
    ])


def yaw_error(env, target_yaw: float) -> float:
    return abs(wrap_angle(gripper_yaw(eef_mat(env)) - target_yaw))


def tilt(env) -> float:
    """Angle between the gripper's approach axis (eef z) and straight down, radians."""
    z = eef_mat(env)[:, 2]
    return float(np.arccos(np.clip(-z[2], -1.0, 1.0)))
