"""Gamepad mappings: which physical axis/button/hat drives which command, loaded from JSON.

The built-in file is `gamepad_mappings.json` (package data); a user file given with `--mapping`
has the same layout, and its entries are tried first (an entry with a built-in's name replaces it).
Errors in a file name the file and the line.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import TeleopError

ANALOG = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
HELD = ("precision",)
EVENT_COMMANDS = ("start", "save", "discard", "reset", "take_over", "quit", "help", "camera")
COMMANDS = ANALOG + HELD + EVENT_COMMANDS
BUILTIN = "gamepad_mappings.json"
_SOURCE = re.compile(r"^(?P<sign>-?)(?:(?P<kind>axis|trigger|button)(?P<index>\d+)|hat(?P<hat>\d+)(?P<comp>[xy]))$")
_TUNING = {"deadzone": (0.0, 0.95), "sensitivity": (0.0, 10.0), "expo": (0.0, 1.0)}


@dataclass(frozen=True)
class Source:
    kind: str  # axis | trigger | button | hat
    index: int
    sign: float = 1.0
    component: int = 0  # hats: 0 = x, 1 = y

    @classmethod
    def parse(cls, text: str) -> Source:
        m = _SOURCE.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise ValueError(f"bad source {text!r}; expected axisN, -axisN, triggerN, buttonN, -buttonN, hatNx or hatNy")
        sign = -1.0 if m["sign"] else 1.0
        if m["hat"] is not None:
            return cls("hat", int(m["hat"]), sign, 0 if m["comp"] == "x" else 1)
        return cls(m["kind"], int(m["index"]), sign)


@dataclass(frozen=True)
class Tuning:
    deadzone: float = 0.12
    sensitivity: float = 1.0
    expo: float = 0.3  # 0 = linear; 1 = cubic

    def shape(self, value: float) -> float:
        """Deadzone (rescaled so output starts at 0), expo curve, sensitivity; result in [-1, 1]."""
        mag = abs(value)
        if mag <= self.deadzone:
            return 0.0
        x = min(1.0, (mag - self.deadzone) / (1.0 - self.deadzone))
        x = (1.0 - self.expo) * x + self.expo * x ** 3
        return max(-1.0, min(1.0, (x if value > 0 else -x) * self.sensitivity))


@dataclass(frozen=True)
class GamepadMapping:
    name: str
    match: tuple[str, ...]
    controls: dict  # command -> tuple[Source, ...]
    tuning: Tuning = Tuning()
    about: str = ""
    origin: str = ""  # file it came from

    def matches(self, device_name: str) -> bool:
        low = device_name.lower()
        return any(m.lower() in low for m in self.match)


def _line_of(text: str, *needles: str) -> int | None:
    """1-based line of the first line containing every needle (then the first needle alone)."""
    lines = text.splitlines()
    for want in (needles, needles[:1]):
        for i, line in enumerate(lines, 1):
            if all(n in line for n in want):
                return i
    return None


def _error(origin: str, text: str, message: str, *needles: str) -> TeleopError:
    line = _line_of(text, *needles) if needles else None
    where = f"{origin} line {line}" if line else origin
    return TeleopError(f"gamepad mapping {where}: {message}")


def parse_mappings(text: str, origin: str = "<mapping>") -> list[GamepadMapping]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TeleopError(f"gamepad mapping {origin} line {exc.lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("mappings"), list):
        raise _error(origin, text, 'expected an object with a "mappings" list', '"mappings"')
    defaults = _tuning(data.get("defaults", {}), Tuning(), origin, text)
    out = []
    for i, entry in enumerate(data["mappings"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _error(origin, text, f'mapping #{i + 1} needs a "name" string', '"mappings"')
        name = entry["name"]
        match = entry.get("match", [])
        if not isinstance(match, list) or not all(isinstance(m, str) for m in match):
            raise _error(origin, text, f'mapping {name!r}: "match" must be a list of strings', '"match"', name)
        controls = entry.get("controls")
        if not isinstance(controls, dict):
            raise _error(origin, text, f'mapping {name!r} needs a "controls" object', json.dumps(name))
        parsed = {}
        for command, spec in controls.items():
            if command not in COMMANDS:
                raise _error(origin, text, f"mapping {name!r}: unknown command {command!r}; known: {', '.join(COMMANDS)}",
                             json.dumps(command))
            specs = spec if isinstance(spec, list) else [spec]
            sources = []
            for s in specs:
                try:
                    sources.append(Source.parse(s))
                except ValueError as exc:
                    raise _error(origin, text, f"mapping {name!r}, command {command!r}: {exc}", json.dumps(s)) from None
            parsed[command] = tuple(sources)
        tuning = _tuning(entry, defaults, origin, text)
        out.append(GamepadMapping(name, tuple(match), parsed, tuning, str(entry.get("about", "")), origin))
    return out


def _tuning(obj: dict, base: Tuning, origin: str, text: str) -> Tuning:
    values = {}
    for key, (lo, hi) in _TUNING.items():
        if key in obj:
            v = obj[key]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo <= v <= hi:
                raise _error(origin, text, f"{key} must be a number in [{lo}, {hi}], got {v!r}", f'"{key}"')
            values[key] = float(v)
    return Tuning(**{**base.__dict__, **values})


def load_mappings(user_file: str | Path | None = None) -> list[GamepadMapping]:
    """User entries first (replacing built-ins of the same name), then the built-in ones."""
    builtin = parse_mappings(resources.files(__package__).joinpath(BUILTIN).read_text(), BUILTIN)
    if user_file is None:
        return builtin
    path = Path(user_file)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TeleopError(f"cannot read gamepad mapping file {path}: {exc.strerror}") from None
    user = parse_mappings(text, str(path))
    names = {m.name for m in user}
    return user + [m for m in builtin if m.name not in names]


def select_mapping(device_name: str, mappings: list[GamepadMapping]) -> tuple[GamepadMapping, bool]:
    """(mapping, True) for the first entry matching the name, else (the 'generic' entry, False)."""
    for m in mappings:
        if m.match and m.matches(device_name):
            return m, True
    for m in mappings:
        if m.name == "generic":
            return m, False
    raise TeleopError("no 'generic' gamepad mapping: a mapping file replaced it without one")
