"""Stack: put the small red cube (A) on the large green cube (B) and let go.

Phases (from `PickAndPlaceExpert`): approach and close on cube A (gripper turned to its nearest face
pair), carry it up and over B through a funnel, release when A sits just above B's top face, then
retreat upward. If A falls off or is knocked away, the phases lead back to picking it up.
"""
from __future__ import annotations

import numpy as np

from .base import body_mat, body_pos, closest_symmetric_yaw, eef_mat, gripper_yaw, yaw_of
from .grasping import PickAndPlaceExpert

DROP_GAP = 0.005  # release cube A this far above cube B's top face
B_CLEARANCE = 0.12  # cube centres closer than this: pick A's face pair with the fingers away from B


class StackExpert(PickAndPlaceExpert):
    task = "Stack"
    place_xy_tol = 0.008

    def object_geoms(self, env):
        return env.raw.cubeA

    def object_pos(self, env):
        return body_pos(env, env.raw.cubeA_body_id)

    def grasp_target(self, env):
        # two face pairs to grip; when B is close, take the pair whose fingers do not come down on B
        # (a finger resting on B stalls the descent), otherwise the one needing the least turn
        a = self.object_pos(env)
        a_yaw = yaw_of(body_mat(env, env.raw.cubeA_body_id))
        to_b = body_pos(env, env.raw.cubeB_body_id)[:2] - a[:2]
        dist = float(np.linalg.norm(to_b))
        if dist > B_CLEARANCE:
            return a, a_yaw, np.pi / 2
        cur = gripper_yaw(eef_mat(env))
        candidates = [closest_symmetric_yaw(a_yaw + k * np.pi / 2, cur, np.pi) for k in (0, 1)]
        # fingers close along the gripper's yaw + 90 degrees
        overlap = [abs(np.cos(c + np.pi / 2) * to_b[0] + np.sin(c + np.pi / 2) * to_b[1]) / dist for c in candidates]
        return a, candidates[int(np.argmin(overlap))], np.pi

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
