"""DeviceState: what an input device says at one instant, as typed data (docs/architecture.md).

Axes are normalised deflections in [-1, 1] in the robot base frame (x toward the agentview camera,
y to its right, z up; rotations about those axes). `gripper` is how far the gripper control is
pressed, in [0, 1]. `events` are edge-triggered: each appears in exactly one poll after the press.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol, runtime_checkable

import numpy as np

# every event a device may report; the order fixes the bit of each in a stored input log
EVENTS: tuple[str, ...] = ("start", "save", "discard", "reset", "take_over", "quit", "help", "camera")
_EVENT_BIT = {name: 1 << i for i, name in enumerate(EVENTS)}

ZERO3 = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class DeviceState:
    translation: tuple[float, float, float] = ZERO3
    rotation: tuple[float, float, float] = ZERO3  # roll, pitch, yaw rates
    gripper: float = 0.0  # 0 = released, 1 = fully pressed
    precision: bool = False  # slow mode held
    events: frozenset[str] = field(default_factory=frozenset)
    connected: bool = True  # False: the device is gone (unplugged); the session pauses
    status: str = ""  # one line for the HUD (device name, mapping, "unplugged")
    takeover_held: bool = False  # the take-over control is held down now (live take-over: the person drives)

    def __post_init__(self):
        unknown = set(self.events) - set(EVENTS)
        if unknown:
            raise ValueError(f"unknown device event(s) {sorted(unknown)}; known: {EVENTS}")
        object.__setattr__(self, "events", frozenset(self.events))

    def has(self, event: str) -> bool:
        return event in self.events

    @property
    def moving(self) -> bool:
        return any(abs(v) > 1e-6 for v in self.translation + self.rotation)

    def with_events(self, events: Iterable[str]) -> DeviceState:
        return DeviceState(self.translation, self.rotation, self.gripper, self.precision,
                           frozenset(self.events) | frozenset(events), self.connected, self.status, self.takeover_held)

    # --- input log encoding: one float row + one event bitmask per step ---------------------
    def to_row(self) -> np.ndarray:
        """[tx, ty, tz, roll, pitch, yaw, gripper, precision] as float32."""
        return np.array([*self.translation, *self.rotation, self.gripper, float(self.precision)], dtype=np.float32)

    def event_mask(self) -> int:
        mask = 0
        for name in self.events:
            mask |= _EVENT_BIT[name]
        return mask

    @classmethod
    def from_row(cls, row, mask: int = 0) -> DeviceState:
        row = np.asarray(row, dtype=np.float64)
        if row.shape != (8,):
            raise ValueError(f"an input-log row has 8 values (translation, rotation, gripper, precision), got {row.shape}")
        events = frozenset(name for name, bit in _EVENT_BIT.items() if int(mask) & bit)
        return cls(tuple(map(float, row[0:3])), tuple(map(float, row[3:6])), float(row[6]), bool(row[7] > 0.5), events)


INPUT_LOG_COLUMNS = ("tx", "ty", "tz", "roll", "pitch", "yaw", "gripper", "precision")


@runtime_checkable
class InputDevice(Protocol):
    """A source of DeviceStates. `events` are the pygame events of this frame (the session owns the
    one event queue and hands each frame's events to the device)."""

    name: str

    def poll(self, events: Iterable = ()) -> DeviceState: ...

    def help_lines(self) -> list[str]: ...

    def close(self) -> None: ...
