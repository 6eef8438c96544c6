"""Head configuration. Each head has one dataclass deriving from HeadConfig; configs are plain JSON."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from takeover.datasets.torch_dataset import Windows

from .errors import PolicyError


@dataclass
class HeadConfig:
    head: ClassVar[str] = ""
    default_lr: ClassVar[float] = 1e-3  # the trainer's learning rate unless --lr is given
    obs_horizon: int = 1  # observations fed to the policy (history ending at the current step)
    action_horizon: int = 1  # actions predicted per call (an action chunk)
    exec_horizon: int = 1  # actions of each chunk executed before predicting again
    hidden_dims: tuple[int, ...] = (512, 512)
    action_norm: str = "zscore"  # "zscore" or "minmax" (to [-1, 1])

    def __post_init__(self):
        self.hidden_dims = tuple(self.hidden_dims)
        if not 1 <= self.exec_horizon <= self.action_horizon:
            raise PolicyError(f"exec_horizon {self.exec_horizon} must lie in [1, action_horizon={self.action_horizon}]")
        if self.action_norm not in ("zscore", "minmax"):
            raise PolicyError(f"action_norm must be 'zscore' or 'minmax', not {self.action_norm!r}")

    @property
    def windows(self) -> Windows:
        """The training windows this head reads (the trainer asks the dataset for these)."""
        return Windows(obs_horizon=self.obs_horizon, action_horizon=self.action_horizon)

    def to_dict(self) -> dict:
        return {"head": self.head, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict) -> HeadConfig:
        data = {k: v for k, v in data.items() if k != "head"}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"{cls.head} config has no option(s) {unknown}; options: {sorted(known)}")
        return cls(**data)
