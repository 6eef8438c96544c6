"""Every configuration dataclass of the package, field by field: type, default, limits and help.

Found, not listed: every module under `takeover` is imported and each dataclass whose name ends in
`Config` (or whose fields carry a `help` in their metadata, as `config_field` writes it) gets a table.
The help comes from the field's metadata; where a field has none, from the comment beside it in the
source (the head and RL hyperparameter classes document their fields that way). Limits are the
metadata keys min / max / above / below / choices, whichever module defines the helper."""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import io
import pkgutil
import tokenize

LIMIT_WORDS = {"min": ">= {}", "above": "> {}", "max": "<= {}", "below": "< {}"}


def config_classes() -> list[type]:
    import takeover

    found = {}
    for info in pkgutil.walk_packages(takeover.__path__, "takeover."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__):
                continue
            helped = any("help" in f.metadata for f in dataclasses.fields(obj))
            if name.endswith("Config") or helped:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found, key=lambda k: (k.split(".")[1], k))]


def source_comments(cls) -> dict[str, str]:
    """field name -> the comments on its lines and the comment-only lines that follow it, in cls's own body."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    body = tree.body[0].body
    starts = [(node.lineno, node.target.id) for node in body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)]
    ends = {node.target.id: node.end_lineno for node in body if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)}
    code_lines = {n for node in body for n in range(node.lineno, node.end_lineno + 1)}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out = {}
    for i, (line, name) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else max(code_lines | set(comments)) + 1
        parts = [comments[n] for n in range(line, ends[name] + 1) if n in comments]
        for n in range(ends[name] + 1, stop):  # continuation comments, up to the next statement
            if n in code_lines:
                break
            if n in comments:
                parts.append(comments[n])
        out[name] = " ".join(p for p in parts if p)
    return out


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return f"`{value!r}`"


def _limits(metadata) -> str:
    parts = [word.format(metadata[key]) for key, word in LIMIT_WORDS.items() if key in metadata]
    if "choices" in metadata:
        parts.append("one of " + ", ".join(f"`{c}`" for c in metadata["choices"]))
    return "; ".join(parts)


def _type(f: dataclasses.Field) -> str:
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return f"`{t}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown() -> str:
    lines = []
    for cls in config_classes():
        comments = {}
        for base in reversed(cls.__mro__):  # a subclass's own comment wins over an inherited field's
            if dataclasses.is_dataclass(base):
                comments.update({k: v for k, v in source_comments(base).items() if v})
        doc = inspect.getdoc(cls) or ""
        if doc.startswith(cls.__name__ + "("):  # dataclass's generated signature, not documentation
            doc = ""
        lines += [f"## {cls.__name__}", "", f"`{cls.__module__}.{cls.__qualname__}`", ""]
        if doc:
            lines += [doc.split("\n\n")[0], ""]
        lines += ["| field | type | default | limits | help |", "|---|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            help_text = f.metadata.get("help") or comments.get(f.name, "")
            lines.append(f"| `{f.name}` | {_cell(_type(f))} | {_cell(_default(f))} | {_cell(_limits(f.metadata))} | "
                         f"{_cell(help_text)} |")
        lines.append("")
    return "\n".join(lines)
