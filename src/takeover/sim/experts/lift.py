"""Lift: grasp the cube and hold it 15 cm above the table.

Phases (from `PickAndPlaceExpert`): approach (hover over the cube with the gripper turned to the
nearest face pair, descend through a funnel), close, carry (lift straight up and hold). The cube is
never released, so success persists once reached.
"""
from __future__ import annotations

import numpy as np

from .base import body_mat, body_pos, yaw_of
from .grasping import PickAndPlaceExpert

LIFT_HEIGHT = 0.15  # cube centre above the table top while held


class LiftExpert(PickAndPlaceExpert):
    task = "Lift"

    def object_geoms(self, env):
        return env.raw.cube

    def object_pos(self, env):
        return body_pos(env, env.raw.cube_body_id)

    def grasp_target(self, env):
        return self.object_pos(env), yaw_of(body_mat(env, env.raw.cube_body_id)), np.pi / 2

    def goal(self, env):
        obj = self.object_pos(env)
        return np.array([obj[0], obj[1], env.raw.table_offset[2] + LIFT_HEIGHT])

    def carry_height(self, env):
        return env.raw.table_offset[2] + LIFT_HEIGHT

    def releases(self):
        return False
