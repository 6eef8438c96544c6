"""Head registry: name -> (config dataclass, policy class). Heads register themselves on import."""
from __future__ import annotations

import importlib

from .base import Policy, PolicyShapes
from .config import HeadConfig
from .errors import PolicyError

HEADS: dict[str, type[Policy]] = {}
_HEAD_MODULES = ("gaussian", "gmm", "cvae", "autoregressive", "lstm", "diffusion")


def register_head(cls: type[Policy]) -> type[Policy]:
    HEADS[cls.config_class.head] = cls
    return cls


def _load_heads():
    for name in _HEAD_MODULES:
        try:
            importlib.import_module(f"takeover.policies.heads.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"takeover.policies.heads.{name}":
                raise


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
