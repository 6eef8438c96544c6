"""Entry point of the `takeover` command: imports every command module so they register on `app`."""
import sys

from . import commands  # noqa: F401  (registers subcommands)
from .app import run_cli


def main():
    sys.exit(run_cli())


if __name__ == "__main__":
    main()
