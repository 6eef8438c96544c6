"""Observation naming and the flat layout.

robosuite's dict is renamed to robomimic's keys (`object-state` -> `object`), concatenated duplicates
(`robot0_proprio-state`, per-object `cube_pos` ...) are dropped, and `robot0_joint_acc` is left out by
default because it depends on the last control input, which a saved MuJoCo state does not hold (so a
replayed state could not reproduce it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import SimError

_EXCLUDED_BY_DEFAULT = ("robot0_joint_acc",)


def robosuite_key(key: str) -> str:
    """Our (robomimic) observation key -> robosuite's."""
    return "object-state" if key == "object" else key


def default_low_dim_keys(raw_obs: dict) -> tuple[str, ...]:
    keys = []
    for key in raw_obs:
        if key == "object-state":
            keys.append("object")
        elif key.startswith("robot") and not key.endswith("-state") and key not in _EXCLUDED_BY_DEFAULT:
            keys.append(key)
    return tuple(keys)


def is_image_key(key: str) -> bool:
    return key.endswith("_image") or key.endswith("_depth")


@dataclass(frozen=True)
class ObsLayout:
    """Named slices of the flat low-dim observation vector: which key sits where."""

    keys: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(int(np.prod(s)) for s in self.shapes)

    @property
    def dim(self) -> int:
        return sum(self.sizes)

    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for key, size in zip(self.keys, self.sizes):
            out[key] = slice(start, start + size)
            start += size
        return out

    def flatten(self, obs: dict) -> np.ndarray:
        missing = [k for k in self.keys if k not in obs]
        if missing:
            raise SimError(f"observation lacks key(s) {missing}; it has {sorted(obs)}")
        if not self.keys:  # a policy that reads camera images only
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([np.asarray(obs[k], dtype=np.float32).reshape(-1) for k in self.keys])

    def unflatten(self, flat: np.ndarray) -> dict:
        return {k: flat[..., s].reshape(flat.shape[:-1] + shape) for (k, s), shape in zip(self.slices().items(), self.shapes)}

    def to_dict(self) -> dict:
        return {"keys": list(self.keys), "shapes": [list(s) for s in self.shapes]}

    @classmethod
    def from_dict(cls, data: dict) -> ObsLayout:
        return cls(tuple(data["keys"]), tuple(tuple(s) for s in data["shapes"]))
