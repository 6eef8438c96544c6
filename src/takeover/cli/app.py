"""The Typer app and the one error boundary: a TakeoverError or a command-line usage mistake becomes a
one-line message on stderr and exit code 2; `--debug` shows the traceback instead."""
from __future__ import annotations

import logging
import sys

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="takeover: teleoperate, record, train, correct and fine-tune robot manipulation policies.")
data_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Inspect and edit demonstration files.")
app.add_typer(data_app, name="data")

_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")):
    _state["debug"] = debug
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def fail(message: str, code: int = 2):
    """Print one line and exit; for user mistakes found in the CLI layer itself."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def run_cli(argv=None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]) and return its exit code."""
    from takeover.errors import TakeoverError

    from . import commands  # noqa: F401  (registers every subcommand on `app`)
    from .usage_errors import is_click_abort, is_click_error, is_help_request, one_line

    from .vocabulary import rewrite_renamed

    args = rewrite_renamed(list(sys.argv[1:] if argv is None else argv), lambda line: typer.echo(line, err=True))
    # --debug is read here too: a mistake in the command line itself is found before the root callback runs
    _state["debug"] = "--debug" in args
    try:
        code = app(args=args, prog_name="takeover", standalone_mode=False)  # returns typer.Exit's code in this mode
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except TakeoverError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # click's usage errors, from whichever click typer runs on
        if is_help_request(exc):
            exc.show()
            return exc.exit_code
        if is_click_error(exc):
            if _state["debug"]:
                raise
            typer.echo(one_line(exc), err=True)
            return exc.exit_code
        if is_click_abort(exc):
            typer.echo("aborted", err=True)
            return 1
        raise
