"""Typer options built from config dataclass fields (`takeover.policies.config_fields`): the default,
the help text and the limits come from the dataclass, so the CLI repeats none of them; and limits for
options that have no config field. A value outside its limits is a usage error (one line, exit 2).
"""
from __future__ import annotations

from dataclasses import MISSING

import typer
from typer.core import TyperCommand

from takeover.policies.config_fields import default_of, field_of, limit_problem

_FROM_CONFIG = object()


def limits(**bounds):
    """A typer callback refusing values outside `bounds` (min, max, above, below, choices)."""

    def check(value):
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            problem = limit_problem(v, bounds)
            if problem:
                raise typer.BadParameter(problem)
        return value

    return check


def config_option(cls, name: str, *decls: str, default=_FROM_CONFIG, help: str | None = None, **kwargs):
    """typer.Option for field `name` of config dataclass `cls`. `default` / `help` replace the field's
    where the command line spells the setting differently (e.g. `--ema 0` for ema_decay=None)."""
    meta = field_of(cls, name).metadata
    value = default_of(cls, name) if default is _FROM_CONFIG else default
    bounds = {k: v for k, v in meta.items() if k != "help"}
    return typer.Option(... if value is MISSING else value, *decls, help=help or meta.get("help"),
                        callback=limits(**bounds) if bounds else None, **kwargs)


def config_argument(cls, name: str, help: str | None = None, **kwargs):
    """typer.Argument for a required field `name` of config dataclass `cls`."""
    return typer.Argument(..., help=help or field_of(cls, name).metadata.get("help"), **kwargs)


class HeadHelpCommand(TyperCommand):
    """A command whose `--head` help lists the registered heads. They are looked up only when the help
    is shown: importing every head costs seconds, which the other commands must not pay."""

    def format_help(self, ctx, formatter):
        from takeover.policies.registry import head_names

        for param in self.params:
            if param.name == "head" and not getattr(param, "_lists_heads", False):
                param.help = f"{param.help or 'Action head.'} One of: {', '.join(head_names())}."
                param._lists_heads = True
        return super().format_help(ctx, formatter)
