"""Door: grasp the lever handle, turn it up to free the latch, pull the door open.

The gripper holds the handle bar horizontally (approaching it from the robot's side, fingers closing
on the bar's top and bottom faces): from above, the hand would hit the door panel. Every target is
a fixed pose in the latch body's frame, moved by a desired latch angle (about the latch joint) and a
desired hinge angle (about the hinge), so the gripper rolls with the handle and swings with the door.

Phases, re-derived from the simulator state each step:

    approach  not holding the handle: open, line up on the bar's approach line in front of it
              (a funnel: stand off while position/orientation errors are large), move in
    close     at the grasp pose (or closing there already): close
    turn      holding, latch not yet free: roll the handle up toward LATCH_TARGET
    pull      holding, latch free (or door already ajar): swing the door open along the hinge arc,
              keeping the handle pressed
"""
from __future__ import annotations

import numpy as np

from .base import (
    CLOSE,
    OPEN,
    ScriptedExpert,
    eef_mat,
    eef_pos,
    finger_width,
    gripper_command,
    is_grasping,
    orientation_action,
    position_action,
    rotvec_between,
)

# gripper pose in the latch body frame (x along the lever, y away from the robot/into the door,
# z up at latch angle 0): approach along +y, fingers along z, grasping the bar at 10 cm
GRASP_POS = np.array([0.10, -0.10, 0.0])
GRASP_ROT = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
# The latch frees the door past about 1 rad either way. Turning the handle up (negative angle) rolls
# the wrist away from joint 7's limit; pressing it down runs into the limit near 1 rad.
LATCH_SIGN = -1.0
STANDOFF = 0.08  # pre-grasp distance in front of the bar
LATCH_FREE = 1.3  # handle angle past which the latch tip clears the frame (at ~1.2 it still catches it)
LATCH_TARGET = 1.45  # the joint stops at 1.57
LATCH_STEP = 0.35  # lead of the latch set-point while turning (rad)
HINGE_STEP = 0.12  # lead of the hinge set-point while pulling (rad)
HINGE_GOAL = 0.42
AJAR = 0.04  # hinge angle past which the latch no longer matters


def axis_angle_mat(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


class DoorExpert(ScriptedExpert):
    task = "Door"
    grasp_tol = 0.012
    keep_closing_tol = 0.025
    rot_tol = 0.15
    open_width = 0.065

    def _ids(self, env):
        r = env.raw
        model = r.sim.model
        return (r.object_body_ids["latch"], model.joint_name2id(r.door.joints[1]), model.joint_name2id(r.door.joints[0]))

    def _handle_geoms(self, env):
        model = env.raw.sim.model
        latch = env.raw.object_body_ids["latch"]
        return [model.geom_id2name(g) for g in range(model.ngeom)
                if model.geom_bodyid[g] == latch and model.geom_id2name(g) and model.geom_contype[g] + model.geom_conaffinity[g] > 0]

    def _latch_frame(self, env, latch_delta: float = 0.0, hinge_delta: float = 0.0):
        """World pose of the latch body after turning the latch and the hinge by the given deltas."""
        data = env.raw.sim.data
        latch, latch_joint, hinge_joint = self._ids(env)
        pos = np.array(data.body_xpos[latch])
        mat = np.array(data.body_xmat[latch]).reshape(3, 3)
        for joint, delta in ((latch_joint, latch_delta), (hinge_joint, hinge_delta)):
            if delta:
                rot = axis_angle_mat(np.array(data.xaxis[joint]), delta)
                anchor = np.array(data.xanchor[joint])
                pos = anchor + rot @ (pos - anchor)
                mat = rot @ mat
        return pos, mat

    def _grasp_pose(self, env, latch_delta=0.0, hinge_delta=0.0, standoff=0.0):
        pos, mat = self._latch_frame(env, latch_delta, hinge_delta)
        return pos + mat @ (GRASP_POS + np.array([0.0, -standoff, 0.0])), mat @ GRASP_ROT

    def _act(self, env):
        data = env.raw.sim.data
        latch_q = float(data.qpos[env.raw.handle_qpos_addr])
        hinge_q = float(data.qpos[env.raw.hinge_qpos_addr])
        grasped = is_grasping(env, self._handle_geoms(env))
        cmd = gripper_command(env)
        if grasped and cmd >= 0.99:
            turned = LATCH_SIGN * latch_q  # how far the handle has turned the useful way
            if turned < LATCH_FREE and hinge_q < AJAR:
                step = min(LATCH_STEP, LATCH_TARGET - turned)
                pos, mat = self._grasp_pose(env, latch_delta=LATCH_SIGN * step)
                return self._action(env, pos, mat, CLOSE, 0.6), "turn"
            latch_delta = LATCH_SIGN * max(0.0, LATCH_TARGET - turned) if hinge_q < AJAR else 0.0
            hinge_delta = max(0.0, min(HINGE_STEP, HINGE_GOAL - hinge_q))
            pos, mat = self._grasp_pose(env, latch_delta=latch_delta, hinge_delta=hinge_delta)
            return self._action(env, pos, mat, CLOSE, 0.6), "pull"
        return self._approach(env, grasped, cmd)

    def _approach(self, env, grasped, cmd):
        grasp, mat = self._grasp_pose(env)
        eef = eef_pos(env)
        approach_axis = mat[:, 2]  # into the door
        err = eef - grasp
        along = float(err @ approach_axis)  # negative: in front of the bar
        lateral = float(np.linalg.norm(err - along * approach_axis))
        rot_err = float(np.linalg.norm(rotvec_between(mat, eef_mat(env))))
        width = finger_width(env)
        dist = float(np.linalg.norm(err))
        closing = cmd > -0.99 and dist < self.keep_closing_tol and (grasped or width > 0.01)
        if closing or (dist < self.grasp_tol and rot_err < self.rot_tol and width > self.open_width):
            return self._action(env, grasp, mat, CLOSE, 0.3), "close"
        standoff = min(STANDOFF, 4.0 * max(lateral - 0.005, 0.0) + 0.3 * max(rot_err - 0.05, 0.0))
        if width < self.open_width:
            standoff = STANDOFF
        target = grasp - standoff * approach_axis
        # beside the bar, level with it or behind it, while misaligned: back out toward the robot
        # before moving sideways, so the fingers do not sweep the handle
        if along > -0.03 and 0.02 < lateral < 0.1:
            target = eef - (standoff + along) * approach_axis
        return self._action(env, target, mat, OPEN, 1.0), "approach"

    def _action(self, env, pos, mat, gripper, speed):
        return np.concatenate([position_action(env, pos, 1.0, speed), orientation_action(env, mat, 1.0, 0.5), [gripper]])
