"""Checkpoints are data: tensors, JSON strings and numbers, loaded with torch.load(weights_only=True).

    {"format": "takeover-policy", "version": 1, "state_dict": {...}, "config": JSON, "shapes": JSON,
     "env_spec": JSON, "step": int, "metrics": JSON}

Written to a temp file and renamed, so a kill never leaves half a checkpoint.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import torch

from takeover.sim.spec import EnvSpec

from .base import Policy, PolicyShapes
from .errors import PolicyError
from .normalizer import Normalizer
from .registry import config_from_dict, make_policy

FORMAT = "takeover-policy"
VERSION = 1


def save_checkpoint(path, policy: Policy, spec: EnvSpec, step: int = 0, metrics: dict | None = None,
                    state_dict: dict | None = None):
    """`state_dict` overrides the policy's own (e.g. EMA weights). A residual policy saves its base as
    the checkpoint's policy and the residual beside it (`residual.ResidualPolicy.checkpoint_extras`)."""
    path = Path(path)
    extras = policy.checkpoint_extras() if hasattr(policy, "checkpoint_extras") else {}
    if state_dict is None:
        state_dict = policy.base_state_dict() if extras else policy.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "config": json.dumps(policy.config.to_dict()),
        "shapes": json.dumps(policy.shapes.to_dict()),
        "env_spec": spec.to_json(),
        "step": int(step),
        "metrics": json.dumps(metrics or {}),
        **extras,
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURE = b"PK\x03\x04"  # torch.save's format since torch 1.6
PICKLE_PROTOCOL = b"\x80"  # torch.save's legacy format starts with a pickle protocol byte


def refuse_non_checkpoint(path: Path):
    """Name what a file is when it cannot be a checkpoint, before torch.load says something obscure."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(HDF5_SIGNATURE):
        raise PolicyError(f"{path}: is a demonstration file (HDF5), not a policy checkpoint; expected a checkpoint "
                          f"written by `takeover train` (RUN/checkpoints/best.pt) or its run folder")
    if not (head.startswith(ZIP_SIGNATURE) or head.startswith(PICKLE_PROTOCOL)):
        raise PolicyError(f"{path}: not a policy checkpoint; expected a checkpoint written by `takeover train` "
                          f"(RUN/checkpoints/best.pt) or its run folder")


def load_failure(exc: BaseException) -> str:
    """torch.load's error as a few whole words: its first sentence (torch's zip errors run on for lines
    of advice), or only the diagnosis when even that is long."""
    first = (str(exc).strip().splitlines() or [""])[0]
    sentence = re.split(r"(?<=[a-z)])\. ", first, maxsplit=1)[0].rstrip(".")
    reason = f" ({sentence})" if sentence and len(sentence) <= 120 else ""
    return f"truncated or corrupted{reason}"


def read_checkpoint(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"{path}: no such checkpoint file")
    refuse_non_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsupported object"
        raise PolicyError(f"{path}: refused to load, it holds more than weights ({first[:160]})") from None
    except (RuntimeError, EOFError, KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise PolicyError(f"{path}: not a readable checkpoint, {load_failure(exc)}; copy it again, or use another "
                          f"checkpoint of its run (RUN/checkpoints/)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PolicyError(f"{path}: not a takeover policy checkpoint")
    if payload.get("version") != VERSION:
        raise PolicyError(f"{path}: checkpoint version {payload.get('version')}; this takeover reads version {VERSION}")
    return payload


def load_checkpoint(path, device: str | torch.device = "cpu", overrides: dict | None = None) -> tuple[Policy, EnvSpec, dict]:
    """-> (policy in eval mode, the EnvSpec it was trained for, payload info (step, metrics)).

    `overrides` replace inference-time config fields (e.g. a diffusion head's inference scheduler)."""
    payload = read_checkpoint(path)
    try:
        config = config_from_dict({**json.loads(payload["config"]), **(overrides or {})})
        shapes = PolicyShapes.from_dict(json.loads(payload["shapes"]))
        spec = EnvSpec.from_json(payload["env_spec"])
        stats = Normalizer.stats_from_state_dict(payload["state_dict"])
        policy = make_policy(config, shapes, stats)
        policy.load_state_dict(payload["state_dict"])
        if "residual" in payload:
            from .residual import ResidualPolicy

            policy = ResidualPolicy.from_checkpoint(policy, payload["residual"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise PolicyError(f"{path}: checkpoint does not match its own head config ({str(exc).splitlines()[0][:160]})") from None
    policy.to(device).eval()
    return policy, spec, {"step": payload["step"], "metrics": json.loads(payload["metrics"])}


def check_compatible(policy: Policy, spec: EnvSpec, env_spec: EnvSpec, obs_keys, action_dim: int, where: str):
    """Refuse to pair a policy with data or an environment of another task or observation layout."""
    if spec.task != env_spec.task:
        raise PolicyError(f"{where}: checkpoint is for task {spec.task}, not {env_spec.task}")
    if tuple(policy.shapes.obs_keys) != tuple(obs_keys):
        raise PolicyError(f"{where}: observation keys differ: checkpoint {list(policy.shapes.obs_keys)}, data {list(obs_keys)}")
    if policy.shapes.action_dim != action_dim:
        raise PolicyError(f"{where}: action size {action_dim}; checkpoint expects {policy.shapes.action_dim}")
