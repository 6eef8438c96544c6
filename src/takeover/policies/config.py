"""Head configuration. Each head has one dataclass deriving from HeadConfig (a `takeover.config.Config`:
fields with help and limits, JSON via to_dict / from_dict); `--set key=value` changes them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeover.config import Config, config_field
from takeover.datasets.torch_dataset import Windows

from .errors import PolicyError


@dataclass
class HeadConfig(Config):
    error: ClassVar[type[Exception]] = PolicyError
    head: ClassVar[str] = ""
    default_lr: ClassVar[float] = 1e-3  # the trainer's learning rate unless --lr is given
    obs_horizon: int = config_field(1, min=1, help="Observations fed to the policy (history ending at the current "
                                                   "step).")
    action_horizon: int = config_field(1, min=1, help="Actions predicted per call (an action chunk).")
    exec_horizon: int = config_field(1, min=1, help="Actions of each chunk executed before predicting again "
                                                    "(at most action_horizon).")
    hidden_dims: tuple[int, ...] = config_field((512, 512), help="Widths of the MLP's hidden layers.")
    action_norm: str = config_field("zscore", choices=("zscore", "minmax"),
                                    help="Action normalisation: zscore, or minmax (to [-1, 1]).")

    def validate(self):
        if self.exec_horizon > self.action_horizon:
            raise PolicyError(f"exec_horizon {self.exec_horizon} must lie in [1, action_horizon={self.action_horizon}]")

    @property
    def windows(self) -> Windows:
        """The training windows this head reads (the trainer asks the dataset for these)."""
        return Windows(obs_horizon=self.obs_horizon, action_horizon=self.action_horizon)

    def to_dict(self) -> dict:
        return {"head": self.head, **super().to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> HeadConfig:
        cls.check_keys(set(data) - {"head"}, what=f"{cls.head} config")
        return cls(**{k: v for k, v in data.items() if k != "head"})
