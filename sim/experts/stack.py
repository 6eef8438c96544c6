"""Stack: put the small red cube (A) on the large green cube (B) and let go.

Phases (from `PickAndPlaceExpert`): approach and close on cube A (gripper turned to its nearest face
pair), carry it up and over B through a funnel, release when A sits just above B's top face, then
retreat upward. If A falls off or is knocked away, the phases lead back to picking it up.
"""
from __future__ import annotations

import numpy as np

from .base import body_mat, body_pos, yaw_of
from .grasping import PickAndPlaceExpert

DROP_GAP = 0.005  # release cube A this far above cube B's top face


class StackExpert(PickAndPlaceExpert):
    task = "Stack"
    place_xy_tol = 0.008

    def object_geoms(self, env):
        return env.raw.cubeA

    def object_pos(self, env):
        return body_pos(env, env.raw.cubeA_body_id)

    def grasp_target(self, env):
        return self.object_pos(env), yaw_of(body_mat(env, env.raw.cubeA_body_id)), np.pi / 2

    def goal(self, env):
        b = body_pos(env, env.raw.cubeB_body_id)
        return b + np.array([0.0, 0.0, env.raw.cubeB.size[2] + env.raw.cubeA.size[2] + DROP_GAP])

    def carry_height(self, env):
        return self.goal(env)[2] + 0.04

    def goal_yaw(self, env, held_yaw):
        # turn A to match B's faces (period 90 degrees) so it lands flat
        a_yaw = yaw_of(body_mat(env, env.raw.cubeA_body_id))
        b_yaw = yaw_of(body_mat(env, env.raw.cubeB_body_id))
        delta = (b_yaw - a_yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4
        return held_yaw + delta

    def in_place_zone(self, env):
        a, b = self.object_pos(env), body_pos(env, env.raw.cubeB_body_id)
        on_top = a[2] > b[2] + env.raw.cubeB.size[2]
        return bool(np.linalg.norm(a[:2] - b[:2]) < 0.02 and on_top and a[2] < self.goal(env)[2] + 0.02)
