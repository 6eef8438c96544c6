"""One vocabulary of options: an option name means one thing in every command. The test walks the app,
so a new command is covered without editing this file."""
import collections
import pathlib
import typing

import typer

from takeover.cli import commands  # noqa: F401  (registers every command on the app)
from takeover.cli.app import app, run_cli
from takeover.cli.vocabulary import MEANINGS, RENAMED


def _options():
    """(command path, option name, click parameter) for every visible option of every command."""
    def walk(command, path=()):
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, path + (name,))
        if not hasattr(command, "commands"):
            for param in command.params:
                if param.param_type_name == "option" and not param.hidden:
                    for name in param.opts:
                        yield " ".join(path), name, param

    return list(walk(typer.main.get_command(app)))


def test_each_vocabulary_word_has_one_meaning_in_every_command():
    wrong = [f"{path} {name}: {param.help!r}" for path, name, param in _options()
             if name in MEANINGS and not (param.help or "").lower().startswith(MEANINGS[name])]
    assert not wrong, "\n".join(wrong)


def _value_type(param):
    """What an option converts its value to, on typer with or without a click ParamType."""
    click_type = getattr(param, "type", None)
    if click_type is not None:
        return getattr(click_type, "name", str(click_type))
    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    value = args[0] if len(args) == 1 else annotation
    return "text" if value in (str, pathlib.Path) else str(value)  # a path is text on the command line


def test_an_option_name_used_twice_converts_to_one_type():
    """A name that is a count in one command and a path in another (`--video` once was) has two meanings."""
    uses = collections.defaultdict(list)
    for path, name, param in _options():
        if not getattr(param, "is_flag", False):
            uses[name].append((path, _value_type(param)))
    clashes = [f"{name}: {group}" for name, group in uses.items() if len({t for _, t in group}) > 1]
    assert not clashes, "\n".join(clashes)


def test_the_vocabulary_covers_every_word_that_once_had_two_meanings():
    shared = collections.Counter(name for _, name, _ in {(p, n, None) for p, n, _ in _options()})
    for name in ("--device", "--episodes", "--horizon", "--camera", "--size", "--out", "-o", "--video"):
        assert name in MEANINGS or name == "-o", name
        assert shared[name] >= 2, f"{name} is used by {shared[name]} command(s)"


def test_the_words_that_had_two_meanings_now_have_one():
    names = {(path, name) for path, name, _ in _options()}
    assert ("train", "--device") in names and ("augment", "--device") in names
    assert not {("record", "--device"), ("dagger", "--device"), ("eval", "--video"), ("eval", "--max-steps")} & names
    assert {("record", "--input"), ("dagger", "--input"), ("eval", "--videos"), ("eval", "--horizon"),
            ("collect", "--obs-camera"), ("record", "-o"), ("eval", "-o"), ("data merge", "-o")} <= names
    outputs = {path for path, name, _ in _options() if name == "--output"}
    assert not outputs, f"--output left in {outputs}; every output is -o/--out"


def test_old_spellings_work_with_one_deprecation_line(tmp_path, capsys):
    for path, renamed in RENAMED.items():
        for old, new in renamed.items():
            assert (path, new) in {(p, n) for p, n, _ in _options()}, (path, old, new)
    code = run_cli(["eval", str(tmp_path / "missing.pt"), "--max-steps", "5", "--video", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2  # the run itself fails (no checkpoint), after the two renamed options were accepted
    assert lines[:2] == ["warning: `eval --max-steps` is deprecated; use --horizon",
                         "warning: `eval --video` is deprecated; use --videos"], lines
    assert "No such option" not in " ".join(lines)
