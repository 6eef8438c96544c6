"""Config dataclass fields that carry their help text and their limits, so that one dataclass is the
single source of a setting's default, its documentation and its valid range. The CLI builds its
options from these fields (`takeover.cli.options`); the dataclass checks the same limits in
`__post_init__`, so the library refuses what the command line refuses.

    steps: int = config_field(5000, help="Gradient steps (budget).", min=1)

Metadata keys: help (str), min / max (inclusive), above / below (exclusive), choices (a tuple).
This module imports nothing heavy: the CLI reads it on every start.
"""
from __future__ import annotations

import dataclasses
from dataclasses import MISSING

_LIMITS = ("min", "max", "above", "below", "choices")


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


def check_limits(config, error: type[Exception]):
    """Raise `error` naming the first field of the dataclass instance `config` outside its limits."""
    for f in dataclasses.fields(config):
        problem = limit_problem(getattr(config, f.name), f.metadata)
        if problem:
            raise error(f"{type(config).__name__}.{f.name} {problem}")


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
