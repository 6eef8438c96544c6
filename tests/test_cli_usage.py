"""Command-line usage mistakes: every command and subcommand answers an unknown option, a missing
required argument and a value of the wrong type with one line on stderr and exit code 2, no traceback.
The commands are found by walking the app, so a new command is covered without editing this file."""
import subprocess
import sys
import typing

import pytest
import typer

from takeover.cli import commands  # noqa: F401  (registers every command on the app)
from takeover.cli.app import app, run_cli


def _walk(command, path=()):
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, path + (name,))


COMMANDS = list(_walk(typer.main.get_command(app)))
LEAVES = [(path, cmd) for path, cmd in COMMANDS if not hasattr(cmd, "commands")]


def _annotation(param):
    """The Python type a parameter converts to, on typer with or without a click ParamType."""
    click_type = getattr(param, "type", None)
    if click_type is not None:
        return {"integer": int, "float": float}.get(getattr(click_type, "name", "").split(" ")[0])
    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else annotation


def _numeric_option(cmd):
    for param in cmd.params:
        if param.param_type_name == "option" and not getattr(param, "is_flag", False) and not param.hidden \
                and _annotation(param) in (int, float):
            return param
    return None


def _required_args(cmd) -> list[str]:
    """Placeholder values for every required parameter, so that only the mistake under test is wrong."""
    args = []
    for param in cmd.params:
        if not param.required:
            continue
        args += ["placeholder"] if param.param_type_name == "argument" else [param.opts[0], "placeholder"]
    return args


def _cases():
    for path, cmd in COMMANDS:
        name = " ".join(path) or "(root)"
        yield pytest.param(list(path) + ["--no-such-option"], "No such option", id=f"{name}: unknown option")
    for path, cmd in LEAVES:
        name = " ".join(path)
        if any(p.required for p in cmd.params):
            yield pytest.param(list(path), "Missing", id=f"{name}: missing argument")
        option = _numeric_option(cmd)
        if option is not None:
            yield pytest.param(list(path) + _required_args(cmd) + [option.opts[0], "abc"], option.opts[0],
                               id=f"{name}: wrong type")


def test_the_walk_finds_commands_and_subcommands():
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"train", "eval", "collect", "data", "data info"} <= paths


@pytest.mark.parametrize("argv, expected", list(_cases()))
def test_usage_mistake_is_one_line_and_exit_2(argv, expected, capsys):
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err and "Traceback" not in err


def test_unknown_command_suggests_the_close_one(capsys):
    assert run_cli(["trian", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "No such command 'trian'" in err and "Did you mean 'train'?" in err and len(err.splitlines()) == 1


def test_debug_shows_the_traceback_and_does_not_stick():
    with pytest.raises(Exception, match="No such option"):
        run_cli(["--debug", "train", "--no-such-option"])
    assert run_cli(["train", "--no-such-option"]) == 2  # the next call in the same process is quiet again


@pytest.mark.parametrize("argv, expected", [
    (["trian", "x"], "Did you mean 'train'?"),
    (["data", "info"], "Missing argument"),
    (["train", "--bogus-flag"], "No such option: --bogus-flag"),
    (["collect", "--task", "Lift", "-n", "abc"], "'-n'"),
    (["train", "demos.hdf5", "--out", "r", "--steps", "0"], "--steps"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_real_entry_point(argv, expected, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "takeover.cli.main", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and expected in proc.stderr, proc.stderr


def test_errors_of_either_click_copy_are_recognised():
    from takeover.cli.usage_errors import is_click_error, one_line

    copies = [pytest.importorskip(name) for name in ("click.exceptions",)]
    try:
        import typer._click.exceptions as vendored
        copies.append(vendored)
    except ImportError:  # typer before it vendored click
        pass
    for module in copies:
        exc = module.NoSuchOption("--bogus", possibilities=["--bogus-flag"])
        assert is_click_error(exc) and exc.exit_code == 2
        line = one_line(exc)  # click 8.5: "No such option '--bogus'. Did you mean ...", older: "No such option: --bogus"
        assert line.startswith("error: No such option") and "--bogus-flag" in line and "\n" not in line
    assert not is_click_error(ValueError("not a usage error"))
