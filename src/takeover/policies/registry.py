"""Head registry: name -> policy class (its `config_class` is the head's config dataclass).

Heads register themselves with `@register_head` when their module is imported. The registry imports
every module of `takeover.policies.heads` (found with pkgutil, so a new or renamed head file is picked
up without a list to edit); modules that register no head are helpers (the U-Net, distributions).
A module that fails to import raises HeadImportError naming it: a head never drops out silently.
"""
from __future__ import annotations

import importlib
import pkgutil

from .base import Policy, PolicyShapes
from .config import HeadConfig
from .errors import HeadImportError, PolicyError

HEADS: dict[str, type[Policy]] = {}
HEADS_PACKAGE = "takeover.policies.heads"
_loaded = False


def register_head(cls: type[Policy]) -> type[Policy]:
    name = cls.config_class.head
    known = HEADS.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise PolicyError(f"head {name!r} is registered twice: by {known.__module__}.{known.__qualname__} "
                          f"and by {cls.__module__}.{cls.__qualname__}")
    HEADS[name] = cls
    return cls


def import_head_modules(package_name: str = HEADS_PACKAGE) -> dict[str, list[str]]:
    """Import every module of the package (found with pkgutil) -> {module: head names it registered};
    an empty list marks a helper module. A module that fails to import raises HeadImportError."""
    package = importlib.import_module(package_name)
    registered: dict[str, list[str]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        name = f"{package_name}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001  (whatever breaks a head module is reported by its name)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise HeadImportError(f"{name} failed to import ({type(exc).__name__}: {first[:160]}); "
                                  f"its head, if it defines one, is unavailable") from exc
        registered[name] = sorted(h for h, cls in HEADS.items() if cls.__module__ == module.__name__)
    return registered


def _load_heads():
    global _loaded
    if not _loaded:
        import_head_modules()
        _loaded = True


def head_names() -> list[str]:
    _load_heads()
    return sorted(HEADS)


def policy_class(head: str) -> type[Policy]:
    _load_heads()
    if head not in HEADS:
        raise PolicyError(f"unknown head {head!r}; known heads: {', '.join(sorted(HEADS))}")
    return HEADS[head]


def make_config(head: str, **overrides) -> HeadConfig:
    return policy_class(head).config_class.from_dict(overrides)


def config_from_dict(data: dict) -> HeadConfig:
    if "head" not in data:
        raise PolicyError("head config lacks the 'head' field")
    return policy_class(data["head"]).config_class.from_dict(data)


def make_policy(config: HeadConfig, shapes: PolicyShapes, stats: dict) -> Policy:
    return policy_class(config.head)(config, shapes, stats)
