"""DeviceState -> OSC_POSE action: one pure function, every gain in `ActionGains`.

robosuite Panda OSC_POSE (delta, base frame): a[0:3] position offset (1.0 = 5 cm), a[3:6]
axis-angle offset (1.0 = 0.5 rad), a[6] gripper (-1 open, +1 close). A zero DeviceState gives a
zero arm action, which holds the current pose, and keeps the gripper command where it was (open
after a reset: robosuite's gripper action 0 is not "hold" but drives the fingers half-closed from a
reset, so the latch starts at -1).

Gripper modes: "hold" closes while the control is pressed and opens on release; "toggle" flips
open/closed on each press. The latch (last command, whether the control was down) is passed in and
returned, so the function stays pure.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TeleopError
from .state import DeviceState

GRIPPER_MODES = ("hold", "toggle")
PRESS_THRESHOLD = 0.5


@dataclass(frozen=True)
class ActionGains:
    translation: float = 0.6  # action units per unit deflection (0.6 -> 3 cm target offset per step)
    rotation: float = 0.6  # (0.6 -> 0.3 rad)
    precision_scale: float = 0.25  # multiplies both while the precision modifier is held
    gripper_mode: str = "toggle"

    def __post_init__(self):
        if self.gripper_mode not in GRIPPER_MODES:
            raise TeleopError(f"gripper mode must be one of {GRIPPER_MODES}, got {self.gripper_mode!r}")
        for name in ("translation", "rotation", "precision_scale"):
            if not getattr(self, name) > 0:
                raise TeleopError(f"gain {name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GripperLatch:
    command: float = -1.0  # last gripper command: -1 open, +1 close
    pressed: bool = False  # the gripper control was down at the previous step


DEFAULT_GAINS = ActionGains()


def to_action(state: DeviceState, gains: ActionGains = DEFAULT_GAINS,
              latch: GripperLatch = GripperLatch()) -> tuple[np.ndarray, GripperLatch]:
    """The 7-D action in [-1, 1] for `state`, and the gripper latch for the next step."""
    scale = gains.precision_scale if state.precision else 1.0
    action = np.zeros(7, dtype=np.float64)
    action[0:3] = np.asarray(state.translation, dtype=np.float64) * gains.translation * scale
    action[3:6] = np.asarray(state.rotation, dtype=np.float64) * gains.rotation * scale
    pressed = state.gripper > PRESS_THRESHOLD
    command = latch.command
    if gains.gripper_mode == "hold":
        if pressed:
            command = 1.0
        elif latch.pressed:
            command = -1.0
    elif pressed and not latch.pressed:
        command = -1.0 if command > 0 else 1.0
    action[6] = command
    return np.clip(action, -1.0, 1.0), GripperLatch(command, pressed)
