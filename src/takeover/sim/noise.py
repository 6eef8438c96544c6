"""ActionNoise: DART-style noise injection. The operator's clean command stays the label; the
executed action is clean + noise, clipped to [-1, 1].

    noise = ActionNoise.from_option("0.1", action_dim=7, seed=0)      # std 0.1 on the arm dims
    executed = noise.apply(clean)

Option forms (`--noise`): a number (that std on every dimension except the last, the gripper; use
`noise_gripper=True` to include it), a comma list of per-dimension stds, or a .npy/.json file
holding a vector of stds or a full (A, A) covariance matrix.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SimError


def arm_dims_of(action_dim: int) -> int:
    """The arm's dimensions of an action (all but the last, the gripper)."""
    return max(1, action_dim - 1)


@dataclass
class ActionNoise:
    cov: np.ndarray  # (A, A) covariance
    seed: int | None = None
    clip: bool = True
    _rng: np.random.Generator = field(init=False, repr=False)
    _chol: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        cov = np.asarray(self.cov, dtype=np.float64)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise SimError(f"noise covariance must be a square matrix, got shape {cov.shape}")
        if not np.isfinite(cov).all() or not np.allclose(cov, cov.T, atol=1e-10):
            raise SimError("noise covariance must be finite and symmetric")
        eig = np.linalg.eigvalsh(cov)
        if eig.min() < -1e-10:
            raise SimError(f"noise covariance must be positive semi-definite (smallest eigenvalue {eig.min():.3g})")
        self.cov = cov
        # eigen-decomposition square root works for singular (zero-std) dimensions too
        w, v = np.linalg.eigh(cov)
        self._chol = v * np.sqrt(np.clip(w, 0.0, None))
        self._rng = np.random.default_rng(self.seed)

    @classmethod
    def from_std(cls, std, seed: int | None = None, clip: bool = True) -> ActionNoise:
        std = np.asarray(std, dtype=np.float64).reshape(-1)
        if (std < 0).any() or not np.isfinite(std).all():
            raise SimError(f"noise std must be finite and >= 0, got {std.tolist()}")
        return cls(np.diag(std ** 2), seed=seed, clip=clip)

    @property
    def action_dim(self) -> int:
        return int(self.cov.shape[0])

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def sample(self) -> np.ndarray:
        return self._chol @ self._rng.standard_normal(self.action_dim)

    def apply(self, action) -> np.ndarray:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.action_dim,):
            raise SimError(f"action has shape {action.shape}; the noise is {self.action_dim}-dimensional")
        out = action + self.sample()
        return np.clip(out, -1.0, 1.0) if self.clip else out

    @classmethod
    def from_option(cls, text: str, action_dim: int, seed: int | None = None,
                    noise_gripper: bool = False) -> ActionNoise:
        """Parse a `--noise` value (see the module docstring)."""
        text = str(text).strip()
        try:
            sigma = float(text)
        except ValueError:
            sigma = None
        if sigma is not None:
            std = np.full(action_dim, sigma)
            if not noise_gripper and action_dim > 1:
                std[-1] = 0.0
            return cls.from_std(std, seed)
        if "," in text and not Path(text).exists():
            try:
                std = [float(v) for v in text.split(",")]
            except ValueError:
                raise SimError(f"--noise {text!r}: expected a number, a comma list of numbers, or a .npy/.json file") from None
            if len(std) != action_dim:
                raise SimError(f"--noise lists {len(std)} stds; the action has {action_dim} dimensions")
            return cls.from_std(std, seed)
        path = Path(text)
        if not path.exists():
            raise SimError(f"--noise {text!r}: not a number, a comma list, or an existing .npy/.json file")
        try:
            if path.suffix == ".npy":
                value = np.load(path, allow_pickle=False)
            elif path.suffix == ".json":
                value = np.asarray(json.loads(path.read_text()), dtype=np.float64)
            else:
                raise SimError(f"noise file {path}: expected a .npy or .json file")
        except (ValueError, OSError) as exc:
            raise SimError(f"noise file {path} does not load: {exc}") from None
        value = np.asarray(value, dtype=np.float64)
        if value.shape == (action_dim,):
            return cls.from_std(value, seed)
        if value.shape == (action_dim, action_dim):
            return cls(value, seed=seed)
        raise SimError(f"noise file {path} holds shape {value.shape}; expected ({action_dim},) stds "
                          f"or an ({action_dim}, {action_dim}) covariance")
