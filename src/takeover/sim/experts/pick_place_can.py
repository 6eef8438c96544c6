"""PickPlaceCan: move the can from the left bin into its quarter of the right bin.

Phases (from `PickAndPlaceExpert`): approach the can from above and close around it (the can is
round, so the gripper keeps its yaw), carry it high over the bin walls through a funnel to the
centre of the can's target quarter, release a few centimetres above the bin floor, then retreat
upward (robosuite counts the can as placed only once the gripper is away from it).
"""
from __future__ import annotations

import numpy as np

from .base import body_pos
from .grasping import PickAndPlaceExpert

CARRY_Z = 1.02  # can body height while crossing the bin walls
RELEASE_ABOVE_FLOOR = 0.08  # can body height above the bin floor at release (the body is 6 cm above its bottom)
GRASP_Z_OFFSET = 0.01
# release point inside the target quarter, measured from its corner nearest the robot: the quarter's
# centre is at the edge of the Panda's reach at bin height
RELEASE_INSET = np.array([0.05, 0.06])


class PickPlaceCanExpert(PickAndPlaceExpert):
    task = "PickPlaceCan"
    place_xy_tol = 0.02
    place_z_tol = 0.02
    carry_funnel = 2.0
    retreat_height = 0.15

    def _can(self, env):
        return env.raw.objects[env.raw.object_id]

    def object_geoms(self, env):
        return self._can(env)

    def object_pos(self, env):
        return body_pos(env, env.raw.obj_body_id[self._can(env).name])

    def grasp_target(self, env):
        return self.object_pos(env) + np.array([0.0, 0.0, GRASP_Z_OFFSET]), 0.0, None

    def goal(self, env):
        r = env.raw
        x_low, y_low = r.bin2_pos[0], r.bin2_pos[1]
        if r.object_id in (0, 2):
            x_low -= r.bin_size[0] / 2
        if r.object_id < 2:
            y_low -= r.bin_size[1] / 2
        return np.array([x_low + RELEASE_INSET[0], y_low + RELEASE_INSET[1], r.bin2_pos[2] + RELEASE_ABOVE_FLOOR])

    def carry_height(self, env):
        return CARRY_Z

    def in_place_zone(self, env):
        # robosuite's own region (the target quarter, body below 10 cm above the floor), with room
        # above for the short drop after release
        pos = self.object_pos(env)
        lowered = pos - np.array([0.0, 0.0, 0.05])
        return not env.raw.not_in_bin(lowered, env.raw.object_id) or not env.raw.not_in_bin(pos, env.raw.object_id)
