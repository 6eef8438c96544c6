"""takeover.policies: observation encoders, the action heads, training, checkpoints, evaluation.

The names below are loaded on first use (PEP 562), so importing a light module of this package
(`train_config`, `seeds`: what the CLI reads its defaults from) does not import torch.
"""
import importlib

_EXPORTS = {
    "Policy": ".base", "PolicyShapes": ".base", "HeadConfig": ".config", "PolicyError": ".errors",
    "config_from_dict": ".registry", "head_names": ".registry", "make_config": ".registry",
    "make_policy": ".registry", "register_head": ".registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
