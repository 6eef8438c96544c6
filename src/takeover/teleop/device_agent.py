"""The person at the device as a rollout agent, so a recording (and a take-over) runs through the
same episode loop as every expert and policy (`takeover.sim.rollout.EpisodeRun`).

The window polls the device once per frame and hands the state over (`agent.state = ds`); `act`
turns it into an action through the one mapping, `to_action`, with the gripper latch carried here.
"""
from __future__ import annotations

import numpy as np

from .action import DEFAULT_GAINS, ActionGains, GripperLatch, to_action
from .state import DeviceState


class DeviceAgent:
    def __init__(self, device, gains: ActionGains = DEFAULT_GAINS):
        self.device = device
        self.gains = gains
        self.state = DeviceState()
        self.latch = GripperLatch()

    def reset(self, env) -> None:
        self.latch = GripperLatch()
        if hasattr(self.device, "reset"):
            self.device.reset(env)

    def act(self, obs, env) -> np.ndarray:
        action, self.latch = to_action(self.state, self.gains, self.latch)
        return action
