"""InputLogDevice: plays back a recorded input log (the `device_input` / `device_events` arrays a
recording session stores with every episode), to reproduce a session or drive tests.

    dev = InputLogDevice.from_episode(reader.episode("demo_0"))
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from .errors import TeleopError
from .state import DeviceState

INPUT_LOG_KEY = "device_input"  # (T, 8) float32: translation, rotation, gripper, precision
EVENTS_LOG_KEY = "device_events"  # (T,) uint32 bitmask of DeviceState events (state.EVENTS order)


class InputLogDevice:
    name = "replay"
    source = "human"

    def __init__(self, rows, masks=None, start: bool = True, end_events: tuple[str, ...] = ("save",),
                 then_quit: bool = False):
        self.rows = np.asarray(rows, dtype=np.float32)
        if self.rows.ndim != 2 or self.rows.shape[1] != 8:
            raise TeleopError(f"an input log is (T, 8); got shape {self.rows.shape}")
        self.masks = np.zeros(len(self.rows), np.uint32) if masks is None else np.asarray(masks, dtype=np.uint32)
        if self.masks.shape != (len(self.rows),):
            raise TeleopError(f"input-log events have shape {self.masks.shape}; expected ({len(self.rows)},)")
        self.start = start  # press start together with the first row
        self.end_events = tuple(end_events)
        self.then_quit = then_quit
        self.i = 0
        self._started = False
        self._ended = False

    @classmethod
    def from_episode(cls, episode, **kwargs) -> InputLogDevice:
        extras = getattr(episode, "extras", {})
        if INPUT_LOG_KEY not in extras:
            raise TeleopError(f"this episode has no input log ({INPUT_LOG_KEY!r}); only teleoperated demos carry one")
        return cls(extras[INPUT_LOG_KEY], extras.get(EVENTS_LOG_KEY), **kwargs)

    @classmethod
    def from_states(cls, states: list[DeviceState], **kwargs) -> InputLogDevice:
        return cls(np.stack([s.to_row() for s in states]) if states else np.zeros((0, 8), np.float32),
                   np.array([s.event_mask() for s in states], np.uint32), **kwargs)

    @property
    def done(self) -> bool:
        return self._ended

    def poll(self, events: Iterable = ()) -> DeviceState:
        first = not self._started
        self._started = True
        if first and self.start and len(self.rows) == 0:
            return DeviceState(events=frozenset({"start"}), status="replay")
        if self.i < len(self.rows):
            state = DeviceState.from_row(self.rows[self.i], int(self.masks[self.i]))
            self.i += 1
            events = state.events | ({"start"} if first and self.start else set())
            return DeviceState(state.translation, state.rotation, state.gripper, state.precision, events,
                               status=f"replay {self.i}/{len(self.rows)}")
        if not self._ended:
            self._ended = True
            return DeviceState(events=frozenset(self.end_events), status="replay finished")
        return DeviceState(events=frozenset({"quit"} if self.then_quit else ()), status="replay finished")

    def help_lines(self) -> list[str]:
        return ["replaying a recorded input log"]

    def close(self) -> None:
        pass
