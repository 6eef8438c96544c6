"""NutAssemblySquare: lift the square nut by its handle and drop it over the square peg.

Phases (from `PickAndPlaceExpert`): approach the handle with the fingers across it (gripper yaw =
nut yaw, period 180 degrees) and close; carry the nut up above the peg top through a funnel and lower it onto the peg while
turning the gripper so the nut's sides line up with the peg's (period 90 degrees) and its handle
does not point away from the robot (the gripper would be out of reach); release once the
nut has slid onto the peg; retreat upward while the nut slides down (robosuite counts it only
once the gripper is away). A nut that is dropped or knocked off leads back to picking it up.
"""
from __future__ import annotations

import numpy as np

from .base import body_mat, body_pos, wrap_angle, yaw_of
from .grasping import PickAndPlaceExpert

GRASP_Z_OFFSET = 0.003
# the nut is lowered onto the peg and let go only once it has slid part way down: released above the
# peg, it is dragged sideways by the opening fingers often enough to jam tilted on the peg's top
RELEASE_DEPTH = 0.005  # nut centre below the peg top at release
PEG_INDEX = 0  # the square nut belongs on peg1


class NutAssemblySquareExpert(PickAndPlaceExpert):
    task = "NutAssemblySquare"
    place_xy_tol = 0.004
    place_z_tol = 0.008
    carry_funnel = 3.0
    grasp_xy_tol = 0.008
    retreat_height = 0.12

    def _nut(self, env):
        return env.raw.nuts[env.raw.nut_id]

    def _peg_id(self, env):
        return env.raw.peg1_body_id if env.raw.nut_id == PEG_INDEX else env.raw.peg2_body_id

    def object_geoms(self, env):
        return self._nut(env)

    def object_pos(self, env):
        return body_pos(env, env.raw.obj_body_id[self._nut(env).name])

    def _nut_yaw(self, env):
        return yaw_of(body_mat(env, env.raw.obj_body_id[self._nut(env).name]))

    def grasp_target(self, env):
        handle = env.raw.sim.data.site_xpos[env.raw.sim.model.site_name2id(self._nut(env).important_sites["handle"])]
        return np.array(handle) + np.array([0.0, 0.0, GRASP_Z_OFFSET]), self._nut_yaw(env), np.pi

    def _peg_top(self, env):
        peg = self._peg_id(env)
        model = env.raw.sim.model
        tops = [model.geom_size[g][2] for g in range(model.ngeom) if model.geom_bodyid[g] == peg]
        return body_pos(env, peg)[2] + max(tops)

    def goal(self, env):
        peg = body_pos(env, self._peg_id(env))
        return np.array([peg[0], peg[1], self._peg_top(env) - RELEASE_DEPTH])

    def carry_height(self, env):
        return self._peg_top(env) + 0.05

    def goal_yaw(self, env, held_yaw):
        # the nut's sides must line up with the peg's (period 90 degrees); of those four headings,
        # never point the handle away from the robot (+x): the gripper would be out of reach
        peg_yaw = yaw_of(body_mat(env, self._peg_id(env)))
        nut_yaw = self._nut_yaw(env)
        candidates = [peg_yaw + k * np.pi / 2 for k in range(4)]
        candidates = [c for c in candidates if np.cos(c) < 0.5]
        deltas = [wrap_angle(c - nut_yaw) for c in candidates]
        best = min(deltas, key=lambda d: (abs(d), abs(held_yaw + d)))
        return held_yaw + best

    def in_place_zone(self, env):
        nut, peg = self.object_pos(env), body_pos(env, self._peg_id(env))
        return bool(np.linalg.norm(nut[:2] - peg[:2]) < 0.02 and nut[2] < self.goal(env)[2] + 0.02)
