"""The documentation: the site builds with warnings as errors, every `takeover ...` command the pages
and the README show exists with the options they use, and the benchmark results hold no absolute path."""
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "gen"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cli_reference import arguments, is_group, options, root_command  # noqa: E402
from common import relative_paths  # noqa: E402

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`(takeover [^`]+)`")


def doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "gen" not in p.relative_to(DOCS).parts) + [ROOT / "README.md"]


def shown_commands(text: str) -> list[tuple[str, bool]]:
    """`takeover ...` command lines in a page, each with whether it is a whole command to run: fenced and
    indented code blocks (a trailing backslash continues a line; `$ ` prompts are dropped), and inline
    code, where prose names a command and its options (`takeover collect --noise`) without values."""
    blocks = FENCE.findall(text)
    blocks.append("\n".join(line[4:] for line in text.splitlines() if line.startswith("    ")))
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line.startswith("takeover "):
                commands.append((line, True))
    commands += [(span, False) for span in INLINE.findall(text)]
    return commands


def command_problem(line: str, root, runnable: bool = True) -> str | None:
    """Why the command line would not run as written (an unknown command or option, an option that
    takes a value without one), or None. Placeholders (`takeover COMMAND --help`, `...`) are skipped."""
    try:
        words = shlex.split(line, comments=True)[1:]
    except ValueError as exc:
        return f"cannot split: {exc}"
    if any(w == "..." or w.endswith("...") for w in words):
        return None
    command, path = root, ["takeover"]
    while words and words[0].startswith("-"):  # options of `takeover` itself
        if words[0] != "--help" and command_option(root, words[0]) is None:
            return f"`takeover` has no option {words[0]}"
        words = words[1:]
    while is_group(command) and words:
        if words[0].isupper():
            return None
        if words[0] not in command.commands:
            return f"`{' '.join(path)}` has no command {words[0]!r} (it has {', '.join(command.commands)})"
        command = command.commands[words[0]]
        path.append(words.pop(0))
    if is_group(command):
        return None if not words else f"`{' '.join(path)}` needs a subcommand"
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-") and not re.fullmatch(r"-\d[\d.e-]*", word):
            name = word.split("=", 1)[0]
            if name == "--help":
                i += 1
                continue
            option = command_option(command, name)
            if option is None:
                return f"`{' '.join(path)}` has no option {name}"
            takes_value = not (option.is_flag or getattr(option, "count", False))
            if takes_value and "=" not in word:
                if not runnable and i + 1 >= len(words):
                    break
                if i + 1 >= len(words) or (words[i + 1].startswith("--") and command_option(command, words[i + 1])):
                    return f"`{' '.join(path)} {name}` needs a value"
                i += 1
        i += 1
    return None


def command_option(command, name: str):
    for option in options(command):
        if name in option.opts or name in option.secondary_opts:
            return option
    return None


def test_command_checker_catches_mistakes():
    root = root_command()
    assert command_problem("takeover train demos.hdf5 --head gmm --out runs/x", root) is None
    assert "no option --no-such" in command_problem("takeover train demos.hdf5 --no-such 3 --out x", root)
    assert "no command 'trian'" in command_problem("takeover trian demos.hdf5", root)
    assert "needs a value" in command_problem("takeover eval runs/x --episodes", root)
    assert command_problem("takeover data info demos.hdf5 --json", root) is None
    assert command_problem("takeover collect --noise", root, runnable=False) is None  # prose naming an option
    assert "no option --nosie" in command_problem("takeover collect --nosie", root, runnable=False)
    assert "no command" in command_problem("takeover data inspect demos.hdf5", root)


def test_every_command_in_the_docs_exists():
    root = root_command()
    problems, seen = [], 0
    for page in doc_pages():
        for line, runnable in shown_commands(page.read_text()):
            seen += 1
            problem = command_problem(line, root, runnable)
            if problem:
                problems.append(f"{page.relative_to(ROOT)}: {line}\n    {problem}")
    assert seen >= 40, f"only {seen} `takeover` commands found in the docs: is the parser still reading them?"
    assert not problems, "commands in the docs that the CLI does not accept:\n" + "\n".join(problems)


def test_options_named_in_prose_exist():
    """An option the tutorials or the README name on its own (`--weighting iwr`) belongs to some command.
    The results pages are left out: they also name the benchmark scripts' own options."""
    from cli_reference import walk

    root = root_command()
    known = {"--help"} | {name for _, command in walk(root) for option in options(command)
                          for name in (*option.opts, *option.secondary_opts)}
    known |= {name for option in options(root) for name in option.opts}
    unknown = []
    for page in doc_pages():
        if "results" in page.relative_to(ROOT).parts:
            continue
        for span in re.findall(r"`(--?[a-z][a-z0-9-]*)[ =`]", page.read_text()):
            if span not in known:
                unknown.append(f"{page.relative_to(ROOT)}: {span}")
    assert not unknown, "options named in the docs that no command has:\n" + "\n".join(unknown)


def test_every_cli_command_has_a_reference_entry():
    """The reference page is generated, so this holds by construction; it guards the generator."""
    import cli_reference

    text = cli_reference.markdown()
    root = root_command()
    for path, command in cli_reference.walk(root):
        assert f"### `takeover {' '.join(path)}`" in text
        for option in options(command):
            assert option.opts[0] in text, f"{path}: {option.opts[0]} missing from the CLI reference"
        for argument in arguments(command):
            assert f"`{argument.name.upper()}`" in text


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_benchmark_results_hold_no_absolute_path():
    results = ROOT / "benchmarks" / "results"
    files = [p for p in results.rglob("*") if p.is_file() and "work" not in p.relative_to(results).parts
             and p.suffix in (".json", ".md", ".txt", ".csv")]
    assert any(p.suffix == ".json" for p in files)
    found = []
    for path in files:
        text = path.read_text()
        strings = list(_strings(json.loads(text))) if path.suffix == ".json" else text.split()
        found += [f"{path.name}: {s}" for s in strings if os.path.isabs(s) or re.match(r"^[A-Za-z]:[\\/]", s)]
    assert not found, f"{len(found)} absolute path(s) in benchmarks/results:\n" + "\n".join(found[:20])


def test_results_paths_are_written_relative(tmp_path):
    inside = ROOT / "benchmarks" / "results" / "work" / "x" / "best.pt"
    out = relative_paths({"run": str(inside), "runs": [inside], "note": "a/b", "n": 3})
    assert out == {"run": "benchmarks/results/work/x/best.pt", "runs": ["benchmarks/results/work/x/best.pt"],
                   "note": "a/b", "n": 3}
    import tempfile

    assert relative_paths(str(Path(tempfile.gettempdir()) / "ccil" / "exp")) == "$TMPDIR/ccil/exp"
    assert not os.path.isabs(relative_paths("/opt/elsewhere/file.hdf5"))


@pytest.mark.slow
def test_docs_site_builds_strict(tmp_path):
    """mkdocs in strict mode: a broken link, a page missing from the navigation, a generated block that
    fails or a results file a page names that is gone fails the build."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "takeover dagger" in cli and "--retrain-every" in cli
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "TrainConfig" in config and "RLPDConfig" in config
    corrections = (site / "results" / "corrections" / "index.html").read_text()
    assert "hg-dagger" in corrections and "<!-- gen:" not in corrections
    assert (site / "results" / "plots" / "corrections_PickPlaceCan.png").is_file()
