"""A pick-and-place state machine shared by Lift, Stack, PickPlaceCan and NutAssemblySquare.

The phase is re-derived from the simulator state on every call, in this order:

    retreat  the object lies where it should be released and is not held (or the gripper has begun
             to open): open fully, then move up
    carry    the object is held (both finger pads touch it, gripper fully closed): move it along a
             funnel toward the goal -- high while far away in xy, lower as xy error shrinks
    release  the held object is at its release pose: open the gripper in place
    close    the end effector is at the grasp pose (or closing there already): close
    approach otherwise: open the gripper and follow a funnel onto the grasp pose -- hover above it
             while the xy/yaw error is large or the gripper is not open, descend as they shrink

Subclasses say what the object is and where it goes (`grasp_target`, `object_pos`, `goal`,
`in_place_zone`, ...). Both funnels are continuous functions of the errors, so a state a learner
wanders into gets a sensible action without any memory of how it got there.
"""
from __future__ import annotations

import numpy as np

from .base import (
    CLOSE,
    FINGER_CLOSED_WIDTH,
    OPEN,
    ScriptedExpert,
    closest_symmetric_yaw,
    down_with_yaw,
    eef_mat,
    eef_pos,
    finger_width,
    gripper_command,
    gripper_yaw,
    is_grasping,
    orientation_action,
    position_action,
    wrap_angle,
)


class PickAndPlaceExpert(ScriptedExpert):
    # approach
    hover = 0.08  # metres above the grasp point while xy/yaw are not aligned
    xy_funnel = 4.0  # metres of height per metre of xy error
    yaw_funnel = 0.15  # metres of height per radian of yaw error
    grasp_xy_tol = 0.01  # start closing within these tolerances
    grasp_z_tol = 0.01
    grasp_yaw_tol = 0.1
    keep_closing_tol = 0.02  # keep closing while still this close
    open_width = 0.065  # fingers at least this far apart count as open
    min_grasp_width = FINGER_CLOSED_WIDTH  # closed tighter than this: nothing between the fingers
    approach_gain = 1.0
    approach_speed = 1.0
    # carry
    carry_funnel = 3.0
    place_xy_tol = 0.01
    place_z_tol = 0.01
    carry_gain = 1.0
    carry_speed = 1.0
    retreat_height = 0.1  # metres above the release point

    # --- task hooks -----------------------------------------------------------------------------
    def object_geoms(self, env):
        raise NotImplementedError

    def object_pos(self, env) -> np.ndarray:
        """The object point that `goal` refers to."""
        raise NotImplementedError

    def grasp_target(self, env) -> tuple[np.ndarray, float, float]:
        """(eef position to close at, object yaw to align the gripper with, symmetry period)."""
        raise NotImplementedError

    def goal(self, env) -> np.ndarray:
        """Where the held object point should be when it is released."""
        raise NotImplementedError

    def carry_height(self, env) -> float:
        """Object height while moving sideways to the goal."""
        raise NotImplementedError

    def goal_yaw(self, env, held_yaw: float) -> float | None:
        """Yaw the gripper should have at the goal (None: keep the current one)."""
        return None

    def releases(self) -> bool:
        return True

    def in_place_zone(self, env) -> bool:
        """The (unheld) object is where it was meant to be released: leave it alone."""
        return False

    # --- the state machine -----------------------------------------------------------------------
    def _act(self, env):
        grasped = is_grasping(env, self.object_geoms(env))
        cmd = gripper_command(env)
        if grasped and cmd >= 0.99:
            return self._carry(env)
        if self.releases() and (not grasped or cmd < 0.99) and self.in_place_zone(env):
            return self._retreat(env)
        return self._pick(env, grasped, cmd)

    def _retreat(self, env):
        eef = eef_pos(env)
        target_mat = down_with_yaw(gripper_yaw(eef_mat(env)))
        if finger_width(env) < self.open_width:
            target = eef  # let the fingers open before moving, or the object comes along
        else:
            target = np.array([eef[0], eef[1], max(eef[2], self.goal(env)[2] + self.retreat_height)])
        return np.concatenate([position_action(env, target, 1.0, 0.5), orientation_action(env, target_mat), [OPEN]]), "retreat"

    def _pick(self, env, grasped: bool, cmd: float):
        eef = eef_pos(env)
        grasp, obj_yaw, period = self.grasp_target(env)
        cur_yaw = gripper_yaw(eef_mat(env))
        yaw = closest_symmetric_yaw(obj_yaw, cur_yaw, period) if period else cur_yaw
        yaw_err = abs(wrap_angle(cur_yaw - yaw))
        target_mat = down_with_yaw(yaw)
        xy_err = float(np.linalg.norm(eef[:2] - grasp[:2]))
        z_err = float(eef[2] - grasp[2])
        width = finger_width(env)

        # robosuite ramps the gripper command 0.2 a step, so a command between the extremes means a
        # close is in progress (an aborted grasp rises out of this band within a step or two)
        closing = cmd > -0.99 and xy_err < self.keep_closing_tol and abs(z_err) < self.keep_closing_tol \
            and (grasped or width > self.min_grasp_width)
        at_grasp = xy_err < self.grasp_xy_tol and abs(z_err) < self.grasp_z_tol and yaw_err < self.grasp_yaw_tol \
            and width > self.open_width
        if closing or at_grasp:
            pos = position_action(env, grasp, self.approach_gain, 0.3)
            return np.concatenate([pos, orientation_action(env, target_mat), [CLOSE]]), "close"

        lift = self.xy_funnel * max(xy_err - 0.5 * self.grasp_xy_tol, 0.0) \
            + self.yaw_funnel * max(yaw_err - 0.5 * self.grasp_yaw_tol, 0.0)
        if width < self.open_width:
            lift = self.hover
        z_target = grasp[2] + min(self.hover, lift)
        target = np.array([grasp[0], grasp[1], z_target])
        # below the funnel: rise before moving sideways so the fingers do not sweep the object
        deficit = z_target - eef[2]
        xy_scale = float(np.clip(1.0 - (deficit - 0.01) / 0.03, 0.0, 1.0))
        target[:2] = eef[:2] + xy_scale * (target[:2] - eef[:2])
        pos = position_action(env, target, self.approach_gain, self.approach_speed)
        return np.concatenate([pos, orientation_action(env, target_mat), [OPEN]]), "approach"

    def _carry(self, env):
        eef, mat = eef_pos(env), eef_mat(env)
        obj = self.object_pos(env)
        offset_local = mat.T @ (obj - eef)  # object point in the gripper frame (fixed while held)
        cur_yaw = gripper_yaw(mat)
        goal = np.asarray(self.goal(env), dtype=np.float64)
        yaw = self.goal_yaw(env, cur_yaw)
        target_mat = down_with_yaw(cur_yaw if yaw is None else yaw)
        # where the object point will be once the gripper has turned to target_mat
        obj_after = eef + target_mat @ offset_local
        xy_dist = float(np.linalg.norm(obj_after[:2] - goal[:2]))
        carry_z = max(self.carry_height(env), goal[2])
        z_des = goal[2] + min(carry_z - goal[2], self.carry_funnel * max(xy_dist - 0.5 * self.place_xy_tol, 0.0))
        obj_target = np.array([goal[0], goal[1], z_des])
        deficit = z_des - obj[2]
        xy_scale = float(np.clip(1.0 - (deficit - 0.01) / 0.03, 0.0, 1.0))
        obj_target[:2] = obj_after[:2] + xy_scale * (obj_target[:2] - obj_after[:2])
        eef_target = obj_target - target_mat @ offset_local

        if self.releases() and xy_dist < self.place_xy_tol and abs(obj[2] - goal[2]) < self.place_z_tol:
            return np.concatenate([np.zeros(3), orientation_action(env, target_mat), [OPEN]]), "release"
        pos = position_action(env, eef_target, self.carry_gain, self.carry_speed)
        return np.concatenate([pos, orientation_action(env, target_mat), [CLOSE]]), "carry"
