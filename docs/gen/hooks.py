"""mkdocs hooks: the generated parts of the site, made from the code and the benchmark JSON at build time.

A page asks for generated content with a marker line, `<!-- gen: NAME ARGS -->`, which the hook replaces
(an unknown NAME fails the build). The plots under benchmarks/results/ are served as results/plots/*.png.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _importable():
    """The generators (docs/gen), the benchmark scripts whose tables they reuse, and this checkout's
    package first: mkdocs loads hooks with its own sys.path, so this runs when they are needed."""
    for extra in (ROOT / "benchmarks", Path(__file__).resolve().parent, ROOT / "src"):
        if str(extra) not in sys.path:
            sys.path.insert(0, str(extra))

MARKER = re.compile(r"^<!-- gen: (.+?) -->$", re.M)
PLOTS = ROOT / "benchmarks" / "results"


def _generators() -> dict:
    _importable()
    import cli_reference
    import config_reference
    import format_reference
    import results_tables

    return {"cli": cli_reference.markdown, "config": config_reference.markdown,
            "format": format_reference.markdown, **results_tables.GENERATORS}


def on_files(files, config):
    from mkdocs.structure.files import File

    for png in sorted(PLOTS.glob("*.png")):
        files.append(File.generated(config, f"results/plots/{png.name}", abs_src_path=str(png)))
    return files


def on_page_markdown(markdown, page, config, files):
    if "<!-- gen:" not in markdown:
        return markdown
    generators = _generators()

    def expand(match):
        name, *args = shlex.split(match.group(1))
        if name not in generators:
            raise ValueError(f"{page.file.src_uri}: unknown generated block {name!r}; known: {sorted(generators)}")
        return generators[name](*args)

    return MARKER.sub(expand, markdown)
