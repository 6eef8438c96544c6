"""Episode (one demonstration in memory) and EpisodeRecorder (builds one step by step).

    rec = EpisodeRecorder()
    obs = env.reset(seed=3)
    while ...:
        state = env.get_state()                       # before the action
        next_obs, reward, success, truncated, info = env.step(action)
        rec.add(obs, action, reward, next_obs, done, state, interventions=0)
        obs = next_obs
    episode = rec.finish(model_file=env.model_xml(), source="expert", success=success, seed=3)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import DatasetError

# per-step arrays with a fixed meaning and their stored dtypes (docs/reference/formats.md); any other extra
# keeps its own
KNOWN_EXTRAS = {"executed_actions": np.float32, "policy_actions": np.float32, "interventions": np.uint8,
                "expert_executed": np.uint8}


@dataclass
class Episode:
    actions: np.ndarray  # (T, A) float32, the label to imitate
    states: np.ndarray  # (T, S) float64, MuJoCo state before each action
    obs: dict  # key -> (T, ...) array
    next_obs: dict  # key -> (T, ...) array
    rewards: np.ndarray  # (T,) float32
    dones: np.ndarray  # (T,) uint8
    attrs: dict = field(default_factory=dict)  # source, success, seed, round, ...
    extras: dict = field(default_factory=dict)  # name -> (T, ...) array (executed_actions, interventions, ...)
    model_file: str = ""

    def __len__(self) -> int:
        return int(len(self.actions))

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def step_arrays(self) -> dict:
        """Every per-step array by its stored name (`obs/<key>`, `next_obs/<key>`, `actions`, ...)."""
        out = {"actions": self.actions, "states": self.states, "rewards": self.rewards, "dones": self.dones}
        out.update({f"obs/{k}": v for k, v in self.obs.items()})
        out.update({f"next_obs/{k}": v for k, v in self.next_obs.items()})
        out.update(self.extras)
        return out


def _stack(values: list, dtype=None) -> np.ndarray:
    arr = np.stack([np.asarray(v) for v in values])
    return arr.astype(dtype, copy=False) if dtype is not None else arr


class EpisodeRecorder:
    """Collects steps; `finish()` turns them into an Episode (and empties the recorder)."""

    def __init__(self):
        self.clear()

    def clear(self):
        self._obs, self._next_obs, self._actions, self._rewards, self._dones, self._states = [], [], [], [], [], []
        self._extras: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self._actions)

    def add(self, obs: dict, action, reward, next_obs: dict, done, state, **extras):
        t = len(self._actions)
        if t and set(obs) != set(self._obs[0]):
            raise DatasetError(f"step {t}: observation keys {sorted(obs)} differ from step 0's {sorted(self._obs[0])}")
        if t and set(extras) != set(self._extras):
            raise DatasetError(f"step {t}: extra arrays {sorted(extras)} differ from step 0's {sorted(self._extras)}")
        self._obs.append({k: np.array(v) for k, v in obs.items()})
        self._next_obs.append({k: np.array(v) for k, v in next_obs.items()})
        self._actions.append(np.asarray(action, dtype=np.float32).reshape(-1))
        self._rewards.append(float(reward))
        self._dones.append(bool(done))
        self._states.append(np.asarray(state, dtype=np.float64).reshape(-1))
        for key, value in extras.items():
            self._extras.setdefault(key, []).append(np.array(value))

    def finish(self, model_file: str = "", **attrs) -> Episode:
        """Build the Episode. `attrs` become the demo's attributes (source, success, seed, round, ...)."""
        if not self._actions:
            raise DatasetError("cannot finish an episode with no steps (call add() at least once)")
        keys = list(self._obs[0])
        episode = Episode(
            actions=_stack(self._actions, np.float32),
            states=_stack(self._states, np.float64),
            obs={k: _stack([o[k] for o in self._obs]) for k in keys},
            next_obs={k: _stack([o[k] for o in self._next_obs]) for k in keys},
            rewards=np.asarray(self._rewards, dtype=np.float32),
            dones=np.asarray(self._dones, dtype=np.uint8),
            attrs=dict(attrs),
            extras={k: _stack(v, KNOWN_EXTRAS.get(k)) for k, v in self._extras.items()},
            model_file=model_file or "",
        )
        self.clear()
        return episode
