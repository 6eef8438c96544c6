"""Typer options built from config dataclass fields (`takeover.config`): the default, the help text
and the limits come from the dataclass, so the CLI repeats none of them. `config_options` gives a
command one option per field of a config class (nothing listed by hand); `config_option` builds one
option where a command spells a setting its own way; `limits` checks options that have no config
field. A value outside its limits is a usage error (one line, exit 2).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from dataclasses import MISSING
from typing import List, Optional

import typer
from typer.core import TyperCommand

from takeover.config import default_of, field_of

from .vocabulary import limits

_FROM_CONFIG = object()


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


def _cli_type(hint):
    """The type a command-line option of a field of type `hint` converts to; None where a field has no
    option form (a dict or a tuple: a command sets it from its own options, e.g. --set key=value)."""
    if hint in (int, float, str, bool):
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return Optional[_cli_type(inner[0])] if len(inner) == 1 and _cli_type(inner[0]) else None
    if hint is list or origin is list:
        return List[str]
    return None


def _field_parameters(cls, taken, *, arguments=(), decls=None, replace=None, **option_kwargs):
    """One inspect.Parameter per field of config class `cls` not in `taken` and of a type with an
    option form, its default a typer Option (or Argument, for the fields in `arguments`)."""
    decls, replace = decls or {}, replace or {}
    hints = typing.get_type_hints(cls)
    generated = []
    for f in dataclasses.fields(cls):
        annotation = _cli_type(hints[f.name])
        if f.name in taken or annotation is None:
            continue
        info = (config_argument(cls, f.name, **replace.get(f.name, {})) if f.name in arguments
                else config_option(cls, f.name, *decls.get(f.name, ()), **replace.get(f.name, {}), **option_kwargs))
        generated.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=info,
                                           annotation=annotation))
    return generated


def config_options(cls, *, skip=(), arguments=(), decls: dict | None = None, replace: dict | None = None):
    """Decorator: give the command one option per field of config class `cls`, built from the field.

    The decorated function declares its own parameters (those that are no field, and fields it spells
    its own way) and a `settings` parameter: a dict of the generated options' values, by field name,
    ready for `cls(**settings)`. `skip`: fields without an option; `arguments`: fields that are
    positional arguments; `decls`: {field: ("--name", "-n")}; `replace`: {field: {"default": ...,
    "help": ...}}. Fields of a type with no option form (dict, tuple) are left to the function."""

    def decorate(func):
        signature = inspect.signature(func)
        own = [p for name, p in signature.parameters.items() if name != "settings"]
        generated = _field_parameters(cls, {p.name for p in own} | set(skip), arguments=arguments, decls=decls,
                                      replace=replace)
        names = [p.name for p in generated]

        @functools.wraps(func)
        def command(**kwargs):
            return func(settings={name: kwargs.pop(name) for name in names}, **kwargs)

        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        positional = [p for p in generated if p.name in arguments]
        command.__signature__ = signature.replace(
            parameters=positional + own + [p for p in generated if p.name not in arguments])
        return command

    return decorate


def chosen_config_options(choice: str, configs: dict, *, decls: dict | None = None, replace: dict | None = None):
    """Decorator: the options of several config classes, one of which the command's option `choice`
    picks (`augment --method`: {method name: config class}). Each class's options are shown under its
    own heading; the function gets `settings`, the values of the chosen class's options by field name.
    An option of another class given on the command line is refused in one line naming the choice it
    belongs to, before the command runs. A field name in two classes would be one option with two
    meanings: refused when the command is defined."""
    owner = {}
    for key, cls in configs.items():
        for f in dataclasses.fields(cls):
            if f.name in owner:
                raise TypeError(f"chosen_config_options: field {f.name!r} is in both {owner[f.name]} and {key}")
            owner[f.name] = key

    def decorate(func):
        from .app import fail

        signature = inspect.signature(func)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for name, p in signature.parameters.items()
               if name != "settings"]
        option = "--" + choice.replace("_", "-")
        generated = [p for key, cls in configs.items() for p in _field_parameters(
            cls, {p.name for p in own}, decls=decls, replace=replace, rich_help_panel=f"{option} {key}")]
        names = {p.name for p in generated}

        @functools.wraps(func)
        def command(**kwargs):
            chosen = kwargs[choice]
            if chosen not in configs:
                fail(f"{option} {chosen!r}: one of {', '.join(configs)}")
            ctx = kwargs.pop("_context")
            for param in ctx.command.params:
                source = ctx.get_parameter_source(param.name)  # typer's click copy: compared by name
                if param.name in names and owner[param.name] != chosen and source is not None \
                        and source.name not in ("DEFAULT", "DEFAULT_MAP"):
                    spelling = max(param.opts, key=len)
                    fail(f"{spelling} is an option of {option} {owner[param.name]}, not {chosen}")
            settings = {name: kwargs.pop(name) for name in names}
            return func(settings={k: v for k, v in settings.items() if owner[k] == chosen}, **kwargs)

        context = inspect.Parameter("_context", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
        command.__signature__ = signature.replace(parameters=own + generated + [context])
        return command

    return decorate


def retrain_overrides(weighting: str, train_steps: int | None) -> dict:
    """A correction run's `train_overrides` from its --weighting and --train-steps options."""
    return {"weighting": weighting, **({"steps": train_steps} if train_steps else {})}


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
