"""Command-line usage mistakes (unknown command or option, missing argument, a value of the wrong
type) turned into one line for stderr, whichever click the installed typer runs on.

typer builds its commands on click, but which click depends on the version: typer 0.12-0.2x uses the
`click` package, later releases vendor their own copy as `typer._click`, whose exceptions share no
class with `click`'s. Both copies are recognised here by class where importable, and any other
exception shaped like click's (`format_message()`, an integer `exit_code`, `show()`) by its shape.
"""
from __future__ import annotations

import importlib

_CLICK_MODULES = ("typer._click.exceptions", "click.exceptions")


def _classes(name: str) -> tuple[type, ...]:
    found = []
    for module_name in _CLICK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def is_click_error(exc: BaseException) -> bool:
    """A ClickException of any click copy (usage errors, bad parameters, unreadable files)."""
    if isinstance(exc, _classes("ClickException")):
        return True
    return (callable(getattr(exc, "format_message", None)) and callable(getattr(exc, "show", None))
            and isinstance(getattr(exc, "exit_code", None), int))


def is_click_abort(exc: BaseException) -> bool:
    return isinstance(exc, _classes("Abort"))


def is_help_request(exc: BaseException) -> bool:
    """click >= 8.2 raises NoArgsIsHelpError for a group called without a subcommand: it is the help."""
    return type(exc).__name__ == "NoArgsIsHelpError"


def one_line(exc: BaseException) -> str:
    """`error: <what is wrong> (usage: <the command's usage>)`, on one line."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    usage = ""
    if ctx is not None:
        try:
            usage = " ".join(ctx.get_usage().split())
        except Exception:  # noqa: BLE001  (the usage is a courtesy; the message is what matters)
            usage = ""
    if usage.lower().startswith("usage:"):
        usage = usage[len("usage:"):].strip()
    return f"error: {message}" + (f" (usage: {usage})" if usage else "")
