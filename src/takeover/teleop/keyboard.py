"""KeyboardDevice: held keys in the pygame window give smooth, continuous motion.

Each frame reads `pygame.key.get_pressed()` (never OS auto-repeat); an axis ramps from
`ramp_start` of full speed to full speed over `ramp_s` seconds of holding, so a tap nudges and a
hold glides. Shift is the precision (slow) modifier. Episode controls are edge events from KEYDOWN.
"""
from __future__ import annotations

import time
from typing import Callable, Iterable

from ._pygame import pygame
from .state import DeviceState

# axis index (0-2 translation x, y, z; 3-5 roll, pitch, yaw) -> (key for +, key for -)
# translation is in the robot base frame, laid out for the agentview camera: W moves away from the
# camera, A/D move left/right on screen, R/F up/down.
MOTION_KEYS: dict[int, tuple[int, int]] = {
    0: (pygame.K_s, pygame.K_w),
    1: (pygame.K_d, pygame.K_a),
    2: (pygame.K_r, pygame.K_f),
    3: (pygame.K_o, pygame.K_u),
    4: (pygame.K_k, pygame.K_i),
    5: (pygame.K_j, pygame.K_l),
}
GRIPPER_KEY = pygame.K_SPACE
EVENT_KEYS: dict[int, str] = {
    pygame.K_RETURN: "start",
    pygame.K_KP_ENTER: "start",
    pygame.K_y: "save",
    pygame.K_n: "discard",
    pygame.K_BACKSPACE: "reset",
    pygame.K_t: "take_over",
    pygame.K_ESCAPE: "quit",
    pygame.K_h: "help",
    pygame.K_c: "camera",
}
TAKEOVER_KEY = pygame.K_t
HELP = [
    "W/S  away from / toward camera",
    "A/D  left / right    R/F  up / down",
    "U/O  roll   I/K  pitch   J/L  yaw",
    "Shift  precision (slow)",
    "Space  gripper",
    "Enter  start     Y  save",
    "N  discard (retry same start)",
    "Backspace  reset (next start)",
    "T (hold)  take over    C  camera",
    "H  help    Esc  quit",
]


class KeyboardDevice:
    name = "keyboard"
    gripper_mode = "toggle"

    @classmethod
    def open(cls, options):
        return cls()

    def __init__(self, speed: float = 1.0, ramp_s: float = 0.3, ramp_start: float = 0.3,
                 clock: Callable[[], float] = time.monotonic):
        self.speed = float(speed)
        self.ramp_s = float(ramp_s)
        self.ramp_start = float(ramp_start)
        self._clock = clock
        self._held_since: dict[int, float] = {}  # axis -> time its key went down (signed by direction)
        self._held_sign: dict[int, int] = {}

    def _ramp(self, axis: int, sign: int, now: float) -> float:
        if sign == 0:
            self._held_since.pop(axis, None)
            self._held_sign.pop(axis, None)
            return 0.0
        if self._held_sign.get(axis) != sign:
            self._held_since[axis] = now
            self._held_sign[axis] = sign
        if self.ramp_s <= 0:
            return sign * self.speed
        frac = min(1.0, self.ramp_start + (1.0 - self.ramp_start) * (now - self._held_since[axis]) / self.ramp_s)
        return sign * self.speed * frac

    def poll(self, events: Iterable = ()) -> DeviceState:
        pressed = pygame.key.get_pressed()
        names, gripper_tapped = set(), False
        for ev in events:
            if ev.type == pygame.KEYDOWN:
                if ev.key in EVENT_KEYS:
                    names.add(EVENT_KEYS[ev.key])
                elif ev.key == GRIPPER_KEY:
                    gripper_tapped = True  # a tap shorter than a frame still counts as one press
            elif ev.type == pygame.QUIT:
                names.add("quit")
        now = self._clock()
        values = []
        for axis in range(6):
            plus, minus = MOTION_KEYS[axis]
            values.append(self._ramp(axis, int(pressed[plus]) - int(pressed[minus]), now))
        gripper = 1.0 if (pressed[GRIPPER_KEY] or gripper_tapped) else 0.0
        precision = bool(pygame.key.get_mods() & pygame.KMOD_SHIFT)
        return DeviceState(tuple(values[:3]), tuple(values[3:]), gripper, precision, frozenset(names),
                           status="keyboard", takeover_held=bool(pressed[TAKEOVER_KEY]))

    def help_lines(self) -> list[str]:
        return list(HELP)

    def close(self) -> None:
        pass
