"""One vocabulary of options across all commands: each option name means one thing everywhere.

MEANINGS gives the words that several commands share their one meaning: every help text of such an
option starts with it (tests/test_cli_vocabulary.py walks the app and fails on a second meaning, or
on one name converting to two types). The options themselves are built here, so a command takes the
shared option instead of writing its own. RENAMED keeps the old spellings working for one release:
`run_cli` rewrites them to the new name with a one-line deprecation warning.
"""
from __future__ import annotations

import typer

from takeover.config import limit_problem


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


MEANINGS = {
    "--device": "torch device",
    "--input": "input device",
    "--episodes": "episode budget",
    "--episodes-per-round": "episodes per round",
    "--horizon": "episode length limit",
    "--video": "mp4 file to write",
    "--videos": "episodes recorded as videos",
    "--camera": "camera shown",
    "--obs-camera": "camera recorded as image observations",
    "--size": "view size",
    "--render-size": "render resolution",
    "--out": "output",
}

# command path -> {old spelling: new spelling}
RENAMED = {
    "record": {"--device": "--input", "--output": "--out", "--speed": "--gain"},  # --speed: playback (replay)
    "dagger": {"--device": "--input"},
    "dart": {"--episodes": "--episodes-per-round"},
    "eval": {"--max-steps": "--horizon", "--video": "--videos"},
    "collect": {"--camera": "--obs-camera"},
    "quickstart": {"--episodes": "--eval-episodes", "--demos": "--num-demos"},  # --demos: demo files (finetune)
    "data import-robosuite": {"--output": "--out", "--camera": "--obs-camera"},
    "data merge": {"--output": "--out"},
    "data relabel": {"--output": "--out"},
}


def help_text(name: str, detail: str = "") -> str:
    """The help of vocabulary option `name`: its one meaning, then what it means for this command."""
    meaning = MEANINGS[name]
    return meaning[0].upper() + meaning[1:] + (f": {detail}" if detail else ".")


def out_option(detail: str, default=..., **kwargs):
    return typer.Option(default, "--out", "-o", help=help_text("--out", detail), **kwargs)


def episodes_option(default: int, detail: str, min_value: int = 1):
    return typer.Option(default, "--episodes", help=help_text("--episodes", detail), callback=limits(min=min_value))


def horizon_option():
    return typer.Option(None, "--horizon", help=help_text("--horizon", "steps per episode (default: the task's)."),
                        callback=limits(min=1))


def camera_option(detail: str = "the view in the window (the camera control cycles the views)."):
    return typer.Option("agentview", "--camera", help=help_text("--camera", detail))


def size_option(detail: str = "N or WxH pixels."):
    return typer.Option("512", "--size", help=help_text("--size", detail))


def render_size_option():
    return typer.Option(256, "--render-size", help=help_text("--render-size", "of the camera, square pixels; scaled "
                                                                               "to --size."), callback=limits(min=8))


def input_option(default: str, detail: str):
    return typer.Option(default, "--input", help=help_text("--input", detail))


def parse_size(text: str, minimum: int = 64) -> tuple[int, int]:
    """--size "N" or "WxH" -> (width, height), each side in [minimum, 4096]."""
    from takeover.teleop.errors import TeleopError

    parts = text.lower().split("x")
    try:
        w, h = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        raise TeleopError(f"--size {text!r}: expected N or WxH, e.g. 512 or 640x480") from None
    if not (minimum <= w <= 4096 and minimum <= h <= 4096):
        raise TeleopError(f"--size {text!r}: each side must be between {minimum} and 4096 pixels")
    return w, h


def _command_path(args: list[str]) -> tuple[str, int]:
    """The command path named in `args` ("data merge", "eval") and the index where its options start."""
    i = 0
    while i < len(args) and args[i].startswith("-"):  # root options (--debug, -v)
        i += 1
    words = [a for a in args[i:i + 2]]
    if len(words) == 2 and not words[1].startswith("-") and " ".join(words) in RENAMED:
        return " ".join(words), i + 2
    return (words[0], i + 1) if words else ("", i)


def rewrite_renamed(args: list[str], warn) -> list[str]:
    """Old option spellings of the command in `args` -> the new ones, each with one warning line."""
    path, start = _command_path(args)
    renamed = RENAMED.get(path)
    if not renamed:
        return args
    out = list(args[:start])
    for arg in args[start:]:
        name, eq, value = arg.partition("=")
        if name in renamed:
            warn(f"warning: `{path} {name}` is deprecated; use {renamed[name]}")
            arg = renamed[name] + eq + value
        out.append(arg)
    return out
