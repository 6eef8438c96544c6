"""The person's half of a live take-over (HG-DAgger), for `takeover.sim.agents.GatedTakeover`:

- `gate`: the person drives while the take-over control is held, or (`stick_takeover`, the gamepad's
  default) while any motion axis is pushed past the deadzone; letting go hands control back.
- `teacher`: the person's action through the one mapping (`DeviceAgent`), started seamlessly: the
  first step of a take-over holds the pose (zero arm action), the arm command then ramps up to the
  person's over `ramp_steps` steps. The gripper is the person's from the first step, as their control
  says: with a held control (the gamepad's trigger, `gripper_mode="hold"`) it closes while the trigger
  is squeezed and opens when it is not, so a person taking over a closed gripper squeezes to keep it
  closed; with a toggle (the keyboard's Space) there is no position to read, so it stays as the policy
  left it and each press flips it. `gripper_help` says so in the window.

The learner's side of a seamless hand-back (queue and history reset) is GatedTakeover's.
"""
from __future__ import annotations

import numpy as np

from .action import GripperLatch, PRESS_THRESHOLD
from .device_agent import DeviceAgent


class HumanTakeover:
    def __init__(self, device_agent: DeviceAgent, stick_takeover: bool = True, ramp_steps: int = 3):
        self.device_agent = device_agent
        self.stick_takeover = bool(stick_takeover)
        self.ramp_steps = max(1, int(ramp_steps))
        self.teacher = _HumanTeacher(self)
        self.reset()

    def reset(self):
        self.driving = False
        self.takeovers = 0
        self.last_gripper = -1.0  # robosuite starts with the gripper open
        self.step_in_takeover = 0

    def wants_control(self, ds) -> bool:
        return bool(ds.connected and (ds.takeover_held or (self.stick_takeover and ds.moving)))

    def gate(self, obs, env, proposal) -> bool:
        want = self.wants_control(self.device_agent.state)
        if want and not self.driving:
            held = self.device_agent.state.gripper > PRESS_THRESHOLD
            if self.device_agent.gains.gripper_mode == "hold":  # the trigger's position is the command
                command = 1.0 if held else -1.0
            else:  # a toggle has no position: the command stays the policy's until the next press
                command = self.last_gripper
            self.device_agent.latch = GripperLatch(command=command, pressed=held)
            self.step_in_takeover = 0
            self.takeovers += 1
        if not want:  # the learner's proposal is what runs this step
            self.last_gripper = 1.0 if float(proposal[6]) > 0 else -1.0
        self.driving = want
        return want

    def person_action(self, obs, env) -> np.ndarray:
        action = np.array(self.device_agent.act(obs, env), dtype=np.float64)
        action[:6] *= min(1.0, self.step_in_takeover / self.ramp_steps)
        self.step_in_takeover += 1
        self.last_gripper = 1.0 if action[6] > 0 else -1.0
        return action


def gripper_help(gripper_mode: str) -> str:
    """How the gripper behaves at a take-over, for the window's help."""
    if gripper_mode == "hold":
        return "take over: gripper = your control (held: closed)"
    return "take over: gripper stays; a press flips it"


class _HumanTeacher:
    def __init__(self, owner: HumanTakeover):
        self.owner = owner

    def reset(self, env):
        self.owner.device_agent.reset(env)
        self.owner.reset()

    def act(self, obs, env):
        return self.owner.person_action(obs, env)
