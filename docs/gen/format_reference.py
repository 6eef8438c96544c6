"""The HDF5 demonstration format and the run folder, read from the modules that write them: the layout in
datasets/schema.py's docstring, its constants, the Episode fields, and policies/train.py's run folder."""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np


def _docstring_block(module) -> str:
    doc = inspect.getdoc(module) or ""
    return doc


def markdown(part: str = "hdf5") -> str:
    if part == "run-folder":
        from takeover.policies import train

        doc = _docstring_block(train)
        start = doc.index("Run folder")
        return "From `takeover.policies.train`:\n\n```text\n" + doc[start:].strip() + "\n```\n"
    from config_reference import source_comments
    from takeover.datasets import episode, schema

    lines = ["The layout, as `takeover.datasets.schema` states it:", "", "```text",
             _docstring_block(schema).strip(), "```", "",
             "| constant | value |", "|---|---|",
             f"| format version (`data` attribute `format_version`) | `{schema.FORMAT_VERSION}` |",
             f"| per-demo arrays every file has | {', '.join(f'`{a}`' for a in schema.CORE_ARRAYS)} |",
             f"| action-shaped arrays (checked against `takeover_action_dim`) | "
             f"{', '.join(f'`{a}`' for a in schema.ACTION_LIKE)} |",
             f"| episode id attribute | `{schema.EPISODE_ID_ATTR}` |",
             f"| observation order attribute | `{schema.OBS_KEYS_ATTR}` |",
             f"| action size attribute | `{schema.ACTION_DIM_ATTR}` |",
             f"| object layout attribute | `{schema.OBJECT_LAYOUT_ATTR}` |",
             f"| image storage (keys ending `_image` / `_depth`) | `{schema.IMAGE_STORAGE}` |", "",
             "Per-step arrays with a fixed meaning beside the core ones, and their stored types:", "",
             "| array | dtype |", "|---|---|"]
    lines += [f"| `{name}` | `{np.dtype(dtype).name}` |" for name, dtype in episode.KNOWN_EXTRAS.items()]
    comments = source_comments(episode.Episode)
    lines += ["", "In memory a demonstration is an `Episode` (`takeover.datasets.episode`):", "",
              "| field | meaning |", "|---|---|"]
    lines += [f"| `{f.name}` | {comments.get(f.name, '')} |" for f in dataclasses.fields(episode.Episode)]
    return "\n".join(lines) + "\n"
