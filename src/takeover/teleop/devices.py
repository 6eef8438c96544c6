"""Input-device registry: name -> the class that opens it, as the head registry does for heads.

A device is one module with a class that has a `name`, `gripper_mode` (its default gripper control) and
`open(options)`; its registration is its line in DEVICES (where the class lives, and whether a person
holds it, so it can take over live; read without importing the device). Commands build devices only through `open_device`, so `record` and `dagger` list no device
of their own. Modules load on first use: pygame starts with the first device, not at import.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .errors import TeleopError

@dataclass(frozen=True)
class Registration:
    where: str  # "module:Class"
    person: bool  # held by a person (live take-over); otherwise it drives itself


DEVICES = {
    "gamepad": Registration("takeover.teleop.gamepad:GamepadDevice", person=True),
    "keyboard": Registration("takeover.teleop.keyboard:KeyboardDevice", person=True),
    "scripted": Registration("takeover.teleop.scripted_device:ScriptedDevice", person=False),
}


@dataclass
class DeviceOptions:
    """What a device may need to open; each device reads its own part."""

    mapping: Path | None = None  # gamepad: extra mapping JSON
    env: object = None  # scripted: the environment its expert reads
    seed: int = 0
    save_after_success: int | None = 10  # scripted: save after success held this many steps (None: never)


def device_class(name: str):
    if name not in DEVICES:
        raise TeleopError(f"--input {name!r}: expected one of {', '.join(DEVICES)}")
    module, cls = DEVICES[name].where.split(":")
    return getattr(importlib.import_module(module), cls)


def person_devices() -> list[str]:
    """Devices a person holds (for live take-over), in registration order."""
    return [name for name, entry in DEVICES.items() if entry.person]


def open_device(name: str, options: DeviceOptions | None = None):
    return device_class(name).open(options or DeviceOptions())
