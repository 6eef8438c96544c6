"""GamepadDevice: full 6-DoF plus gripper from a game controller through pygame/SDL's joystick API.

Which axis drives what comes from a JSON mapping (see mapping.py); an unknown controller falls back
to the 'generic' mapping and says so. A controller plugged in later is picked up (JOYDEVICEADDED);
one unplugged reports `connected=False` until a controller comes back, and the session pauses.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

from ._pygame import pygame
from .errors import TeleopError
from .mapping import ANALOG, EVENT_COMMANDS, GamepadMapping, Source, load_mappings, select_mapping
from .state import DeviceState

logger = logging.getLogger(__name__)

NO_CONTROLLER = "no game controller found (SDL sees 0 joysticks); plug one in, or use --input keyboard"
UNPLUGGED = "controller unplugged: plug it back in to resume"


class GamepadDevice:
    name = "gamepad"
    gripper_mode = "hold"

    @classmethod
    def open(cls, options):
        return cls(mapping_file=options.mapping)  # no controller: one line naming the fix

    def __init__(self, mapping_file: str | Path | None = None, require_connected: bool = True):
        self.mappings = load_mappings(mapping_file)
        if not pygame.joystick.get_init():
            pygame.joystick.init()
        self.joystick = None
        self.mapping: GamepadMapping | None = None
        self.known_mapping = False
        self.notice = ""
        self._was_connected = False
        self._prev_events: dict[str, bool] = {}
        self._missing_logged: set[Source] = set()
        if pygame.joystick.get_count() > 0:
            self._open(0)
        elif require_connected:
            raise TeleopError(NO_CONTROLLER)

    # --- connection ---------------------------------------------------------------------------
    def _open(self, device_index: int):
        js = pygame.joystick.Joystick(device_index)
        js.init()
        self.joystick = js
        self.mapping, self.known_mapping = select_mapping(js.get_name(), self.mappings)
        if self.known_mapping:
            self.notice = f"{js.get_name()}: mapping '{self.mapping.name}'"
            logger.info("gamepad %r uses mapping %r", js.get_name(), self.mapping.name)
        else:
            self.notice = f"unknown controller {js.get_name()!r}: using the generic mapping"
            logger.warning("unknown controller %r: using the generic mapping (add an entry for it with --mapping FILE)",
                           js.get_name())
        if self._was_connected:
            logger.info("controller reconnected: %s", js.get_name())
        self._was_connected = True
        self._prev_events = {c: self._pressed(c) for c in EVENT_COMMANDS}  # held buttons do not fire on plug-in

    @property
    def connected(self) -> bool:
        return self.joystick is not None

    def _handle(self, ev):
        if ev.type == pygame.JOYDEVICEADDED and self.joystick is None:
            self._open(ev.device_index)
        elif ev.type == pygame.JOYDEVICEREMOVED and self.joystick is not None \
                and ev.instance_id == self.joystick.get_instance_id():
            logger.warning("controller %r unplugged", self.joystick.get_name())
            self.joystick = None
            self.notice = UNPLUGGED

    # --- reading ------------------------------------------------------------------------------
    def _read(self, src: Source) -> float:
        js = self.joystick
        count = {"axis": js.get_numaxes, "trigger": js.get_numaxes, "button": js.get_numbuttons,
                 "hat": js.get_numhats}[src.kind]()
        if src.index >= count:
            if src not in self._missing_logged:
                self._missing_logged.add(src)
                logger.debug("mapping %r reads %s%d, which %r lacks", self.mapping.name, src.kind, src.index, js.get_name())
            return 0.0
        tuning = self.mapping.tuning
        if src.kind == "axis":
            value = tuning.shape(js.get_axis(src.index))
        elif src.kind == "trigger":  # rests at -1
            t = (js.get_axis(src.index) + 1.0) / 2.0
            value = 0.0 if t <= tuning.deadzone else min(1.0, (t - tuning.deadzone) / (1.0 - tuning.deadzone))
        elif src.kind == "button":
            value = float(js.get_button(src.index))
        else:
            value = float(js.get_hat(src.index)[src.component])
        return src.sign * value

    def _value(self, command: str) -> float:
        total = sum(self._read(s) for s in self.mapping.controls.get(command, ()))
        return max(-1.0, min(1.0, total))

    def _pressed(self, command: str) -> bool:
        return any(self._read(s) > 0.5 for s in self.mapping.controls.get(command, ()))

    def poll(self, events: Iterable = ()) -> DeviceState:
        names = set()
        button_downs = []
        for ev in events:
            if ev.type in (pygame.JOYDEVICEADDED, pygame.JOYDEVICEREMOVED):
                self._handle(ev)
            elif ev.type == pygame.JOYBUTTONDOWN:
                button_downs.append(ev)
            elif ev.type == pygame.QUIT:
                names.add("quit")
            elif ev.type == pygame.KEYDOWN and ev.key == pygame.K_ESCAPE:
                names.add("quit")
        if self.joystick is None:
            return DeviceState(events=frozenset(names), connected=False, status=self.notice or UNPLUGGED)
        instance = self.joystick.get_instance_id()
        for command in EVENT_COMMANDS:
            now = self._pressed(command)
            tapped = any(ev.instance_id == instance and Source("button", ev.button) in self.mapping.controls.get(command, ())
                         for ev in button_downs)
            if (now and not self._prev_events.get(command, False)) or tapped:
                names.add(command)
            self._prev_events[command] = now
        v = {c: self._value(c) for c in ANALOG}
        return DeviceState((v["x"], v["y"], v["z"]), (v["roll"], v["pitch"], v["yaw"]), max(0.0, v["gripper"]),
                           self._pressed("precision"), frozenset(names), True,
                           f"{self.joystick.get_name()} [{self.mapping.name}]", self._pressed("take_over"))

    def help_lines(self) -> list[str]:
        if self.mapping is None:
            return ["no controller: plug one in"]
        c = self.mapping.controls

        def src(cmd):
            return "+".join(f"{'-' if s.sign < 0 else ''}{s.kind}{s.index}{'xy'[s.component] if s.kind == 'hat' else ''}"
                            for s in c.get(cmd, ())) or "-"

        return [f"mapping '{self.mapping.name}'",
                f"x {src('x')}  y {src('y')}  z {src('z')}",
                f"roll {src('roll')}  pitch {src('pitch')}",
                f"yaw {src('yaw')}",
                f"gripper {src('gripper')}",
                f"precision {src('precision')}",
                f"start {src('start')}  save {src('save')}",
                f"discard {src('discard')}  reset {src('reset')}",
                f"take over {src('take_over')}  camera {src('camera')}"]

    def close(self) -> None:
        self.joystick = None
