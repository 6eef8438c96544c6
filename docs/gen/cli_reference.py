"""The command-line reference, read from the Typer app itself: every command, argument and option with
its help and default, so the page cannot disagree with `takeover ... --help`."""
from __future__ import annotations

# typer may run on its own copy of click (typer._click), so nothing here checks click's classes: a group
# has `commands`, a parameter says what it is in `param_type_name`, a command makes its own context.


def is_group(command) -> bool:
    return hasattr(command, "commands")


def arguments(command) -> list:
    return [p for p in command.params if p.param_type_name == "argument"]


def options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]


def context(command, name: str):
    return command.context_class(command, info_name=name)


def root_command():
    """The `takeover` command as click sees it, every subcommand registered."""
    import typer

    import takeover.cli.commands  # noqa: F401  (registers every subcommand on the app)
    from takeover.cli.app import app

    return typer.main.get_command(app)


def walk(group, path: tuple[str, ...] = ()):
    """(command path, command) for every command under `group`, depth first, in registration order."""
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        yield (*path, name), command
        if is_group(command):
            yield from walk(command, (*path, name))


def _cell(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _command_section(path: tuple[str, ...], command) -> list[str]:
    ctx = context(command, " ".join(("takeover", *path)))
    title = "takeover " + " ".join(path)
    lines = [f"### `{title}`", "", (command.help or "").strip(), ""]
    if is_group(command):
        lines += ["Subcommands: " + ", ".join(f"`{name}`" for name in command.commands), ""]
        return lines
    args, opts = arguments(command), options(command)
    usage = " ".join([title] + [p.name.upper() + ("..." if p.nargs == -1 else "") for p in args]
                     + (["[OPTIONS]"] if opts else []))
    lines += [f"Usage: `{usage}`", ""]
    if args:
        lines += ["| argument | required | help |", "|---|---|---|"]
        lines += [f"| `{p.name.upper()}` | {'yes' if p.required else 'no'} | {_cell(getattr(p, 'help', ''))} |"
                  for p in args]
        lines.append("")
    if opts:
        lines += ["| option | help |", "|---|---|"]
        for p in opts:
            record = p.get_help_record(ctx)
            if record is None:
                continue
            flags, help_text = record
            lines.append(f"| `{_cell(flags)}` | {_cell(help_text)} |")
        lines.append("")
    return lines


def markdown() -> str:
    root = root_command()
    ctx = context(root, "takeover")
    lines = [(root.help or "").strip(), "", "Options of `takeover` itself (before the command):", "",
             "| option | help |", "|---|---|"]
    for p in options(root):
        record = p.get_help_record(ctx)
        if record:
            lines.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
    lines.append("")
    for path, command in walk(root):
        lines += _command_section(path, command)
    return "\n".join(lines)
