"""The one configuration base. Every setting of the project (a training run, a head, a correction
run, an RL algorithm) is a field of a `Config` dataclass that carries its default, its help text and
its limits in one place:

    steps: int = config_field(5000, help="Gradient steps (budget).", min=1)

`Config` checks the limits after construction (and then the cross-field rules of `validate`), reads
and writes plain JSON dicts (`to_dict` / `from_dict`, unknown keys refused by name), and the CLI builds
a command's options from the same fields (`takeover.cli.options`). Each package names its own error
class (`error = PolicyError`), so a bad value raises the family the caller already handles.

Metadata keys: help (str), min / max (inclusive), above / below (exclusive), choices (a tuple).
This module sits at the bottom of the import order and imports nothing heavy: the CLI reads it on
every start.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import MISSING
from typing import ClassVar

from takeover.errors import TakeoverError

_LIMITS = ("min", "max", "above", "below", "choices")


class ConfigError(TakeoverError):
    """A configuration value outside its limits, or a key no field has (when the class names no error)."""


def config_field(default=MISSING, *, help: str, default_factory=MISSING, **limits) -> dataclasses.Field:
    unknown = sorted(set(limits) - set(_LIMITS))
    if unknown:
        raise TypeError(f"config_field: unknown limit(s) {unknown}; known: {list(_LIMITS)}")
    metadata = {"help": help, **{k: v for k, v in limits.items() if v is not None}}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def limit_problem(value, metadata) -> str | None:
    """What is wrong with `value` under a field's limits ("must be at least 1, got 0"), or None.
    None always passes: optional settings use it for "off" or "the default"."""
    if value is None or isinstance(value, bool):
        return None
    if "choices" in metadata and value not in metadata["choices"]:
        return f"must be one of {', '.join(map(str, metadata['choices']))}, got {value!r}"
    if "min" in metadata and value < metadata["min"]:
        return f"must be at least {metadata['min']}, got {value}"
    if "above" in metadata and value <= metadata["above"]:
        return f"must be above {metadata['above']}, got {value}"
    if "max" in metadata and value > metadata["max"]:
        return f"must be at most {metadata['max']}, got {value}"
    if "below" in metadata and value >= metadata["below"]:
        return f"must be below {metadata['below']}, got {value}"
    return None


def field_of(cls, name: str) -> dataclasses.Field:
    for f in dataclasses.fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def default_of(cls, name: str):
    """The field's default (a fresh value for default_factory fields); MISSING for required fields."""
    f = field_of(cls, name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


class Config:
    """Base of every configuration dataclass (subclasses are `@dataclass`es of `config_field`s).

    Construction checks each field's limits, turns JSON lists back into tuples where the default is a
    tuple, then runs `validate` (rules between fields). `error` is the exception a bad value raises."""

    error: ClassVar[type[Exception]] = ConfigError

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list) and isinstance(f.default, tuple):
                setattr(self, f.name, value := tuple(value))
            problem = limit_problem(value, f.metadata)
            if problem:
                raise self.error(f"{type(self).__name__}.{f.name} {problem}")
        self.validate()

    def validate(self) -> None:
        """Rules between fields (a subclass raises `self.error`); single-field limits are in the fields."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def check_keys(cls, data, exclude=(), what: str | None = None, error: type[Exception] | None = None):
        """Refuse keys of `data` that are not fields of this config (or are in `exclude`), naming them."""
        known = field_names(cls) - set(exclude)
        unknown = sorted(set(data) - known)
        if unknown:
            raise (error or cls.error)(f"{what or cls.__name__} has no option(s) {unknown}; "
                                       f"known: {', '.join(sorted(known))}")

    @classmethod
    def from_dict(cls, data: dict):
        cls.check_keys(data)
        return cls(**data)


def with_default(cls, name: str, default) -> dataclasses.Field:
    """The field `name` of config `cls` (help and limits) with another default, for a subclass."""
    meta = dict(field_of(cls, name).metadata)
    return config_field(default, **meta)


def parse_assignments(pairs, what: str = "--set") -> dict:
    """["key=value", ...] -> {key: value}, each value parsed as JSON where it parses (numbers, lists,
    true/false), else kept as text: the one parser of `--set key=value` and of benchmarks' settings."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"{what} expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
