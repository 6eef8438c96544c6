"""Imports each command module; a module registers its commands on `app` / `data_app` at import."""
import importlib

_COMMAND_MODULES = ["collect", "data_cmds", "record", "train", "evaluate", "quickstart", "dagger", "augment", "dart",
                    "finetune"]

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"{__package__}.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{_name}":
            raise
