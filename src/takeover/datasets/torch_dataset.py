"""DemoDataset: every training window of a demonstration file, served from contiguous in-memory tensors.

    ds = DemoDataset("demos.hdf5", obs_horizon=2, action_horizon=16, split="train")
    batch = ds.get_batch(torch.randint(len(ds), (256,)))
    batch["obs"]          (B, To, D) float32  flat low-dim observation (keys in ds.obs_keys order), history
                                              ending at the current step, first step repeated before it
    batch["actions"]      (B, Ta, A) float32  chunk starting at the current step, last action repeated after it
    batch["action_mask"]  (B, Ta) bool        True where the action is a training target: not padding, and a
                                              label under the dataset's label rule (labels.py)
    batch["weights"]      (B, Ta) float32     per-step loss weights; only with a weight rule
    batch["images"]       {key: (B, To, H, W, 3) uint8}   only when image keys are requested

Camera frames are decoded into memory, or with `frame_cache` (True: the default folder, or a folder)
mapped from a uint8 file decoded once per file and key (frame_cache.py), which later datasets of the
same file share.

With `sequence_length=L` (recurrent heads) a window is L aligned steps instead: obs (B, L, D) and
actions (B, L, A), actions[:, t] taken at obs[:, t], padded after the episode's end. Steps that are not
labels stay in `obs` (history, recurrent inputs); only `action_mask` leaves them out.

There is one window per step. Everything is gathered with tensor indexing (no per-sample Python), so
`get_batch` is the fast path; `__getitem__` exists for torch's DataLoader. `stats` are the
normalisation statistics (`feature_stats`: observations over every step, actions over label steps).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetError
from .labels import label_rule
from .reader import DemoReader
from .schema import first_bad_step, is_image_key, read_attrs

log = logging.getLogger(__name__)

STD_FLOOR = 1e-6


def feature_stats(obs: np.ndarray, actions: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Normalisation statistics (mean, std floored at STD_FLOOR, min, max) of observations (N, D) and
    actions (N, A); with `labels` (N,) bool, the actions' come from the label steps only."""
    if labels is not None:
        actions = actions[labels]
    out = {}
    for name, arr in (("obs", obs), ("action", actions)):
        a = arr.astype(np.float64)
        out[f"{name}_mean"] = a.mean(0).astype(np.float32)
        out[f"{name}_std"] = np.maximum(a.std(0), STD_FLOOR).astype(np.float32)
        out[f"{name}_min"] = a.min(0).astype(np.float32)
        out[f"{name}_max"] = a.max(0).astype(np.float32)
    return out


@dataclass(frozen=True)
class Windows:
    """The windows a head trains on (HeadConfig.windows); DemoDataset(..., **asdict(windows))."""
    obs_horizon: int = 1
    action_horizon: int = 1
    sequence_length: int = 0  # > 0: aligned (obs_t, action_t) sequences of this length (recurrent heads)


class DemoDataset(torch.utils.data.Dataset):
    def __init__(self, path_or_reader, obs_keys=None, obs_horizon: int = 1, action_horizon: int = 1,
                 split: str | None = None, demos=None, *, sequence_length: int = 0, labels="all",
                 weights=None, frame_cache=False):
        """`labels`: a label rule or its name (labels.py; "all": every step, the trainer uses
        "interventions"); `weights`: a weight rule, or None (every step weighs 1)."""
        if obs_horizon < 1 or action_horizon < 1 or sequence_length < 0:
            raise DatasetError(f"obs_horizon and action_horizon must be >= 1 and sequence_length >= 0, got "
                               f"{obs_horizon}, {action_horizon} and {sequence_length}")
        if sequence_length and (obs_horizon, action_horizon) != (1, 1):
            raise DatasetError("sequence windows align one observation with one action: obs_horizon and "
                               "action_horizon must be 1")
        own = not isinstance(path_or_reader, DemoReader)
        reader = DemoReader(path_or_reader) if own else path_or_reader
        try:
            self._load(reader, obs_keys, split, demos, label_rule(labels), weights, frame_cache)
        finally:
            if own:
                reader.close()
        self.obs_horizon, self.action_horizon = int(obs_horizon), int(action_horizon)
        self.sequence_length = int(sequence_length)
        self._obs_offsets = torch.arange(-self.obs_horizon + 1, 1)
        self._act_offsets = torch.arange(max(self.action_horizon, self.sequence_length))

    # --- loading ----------------------------------------------------------------------------------
    def _load(self, reader: DemoReader, obs_keys, split, demos, labels_of, weights_of, frame_cache):
        self.path, self.spec = Path(reader.path), reader.spec
        if demos is not None:
            names = list(demos)
            for n in names:
                reader.num_samples(n)  # DatasetError naming the file and the missing demo
        elif split is not None:
            names = reader.split_demos(split)
        else:
            names = list(reader.demos)
        if not names:
            raise DatasetError(f"{reader.path}: no demos to load")
        first = reader.group(names[0])
        available = list(reader.obs_keys) + sorted(set(first["obs"].keys()) - set(reader.obs_keys)) if "obs" in first else []
        keys = list(obs_keys) if obs_keys is not None else [k for k in available if not is_image_key(k)]
        missing = [k for k in keys if k not in available]
        if missing:
            raise DatasetError(f"{reader.path}: no observation key(s) {missing}; available: {available}")
        self.obs_keys = [k for k in keys if not is_image_key(k)]
        self.image_keys = [k for k in keys if is_image_key(k)]
        self.demos = names
        lengths = np.array([reader.num_samples(n) for n in names], dtype=np.int64)
        N = int(lengths.sum())
        sizes = [int(np.prod(first["obs"][k].shape[1:])) for k in self.obs_keys]
        self.action_dim = int(first["actions"].shape[1])
        self.obs_dim = int(sum(sizes))
        obs = np.empty((N, self.obs_dim), np.float32)
        actions = np.empty((N, self.action_dim), np.float32)
        in_memory = [] if frame_cache else self.image_keys
        images = {k: np.empty((N,) + tuple(first["obs"][k].shape[1:]), np.uint8) for k in in_memory}
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        labels = np.ones(N, bool)
        interventions = np.zeros(N, bool)
        weights = np.ones(N, np.float32) if weights_of is not None else None
        for name, s, T in zip(names, starts, lengths):
            g = reader.group(name)
            where = f"{reader.path}, {name}"
            try:
                self._step_values(labels, s, T, labels_of, g, where, "label rule")
                if "interventions" in g:
                    interventions[s:s + T] = np.asarray(g["interventions"][()]).reshape(-1) != 0
                if weights_of is not None:
                    self._step_values(weights, s, T, weights_of, g, where, "weight rule")
                actions[s:s + T] = g["actions"][()]
                col = 0
                for k, size in zip(self.obs_keys, sizes):
                    if k not in g["obs"]:
                        raise DatasetError(f"{where}: no observation key {k!r}; it has {sorted(g['obs'].keys())}")
                    value = g["obs"][k][()]
                    if len(value) != T:
                        raise DatasetError(f"{where}, key obs/{k}: has {len(value)} steps, expected {T} (the length of actions)")
                    obs[s:s + T, col:col + size] = value.reshape(T, -1)
                    col += size
                for k in in_memory:
                    value = g["obs"][k][()]
                    if len(value) != T:
                        raise DatasetError(f"{where}, key obs/{k}: has {len(value)} steps, expected {T} (the length of actions)")
                    images[k][s:s + T] = value
            except ValueError as exc:
                raise DatasetError(f"{where}: array shape differs from {names[0]}'s ({exc})") from None
            except OSError as exc:
                raise DatasetError(f"{where}: data cannot be read, the file is truncated or corrupt ({exc})") from None
        if frame_cache:
            from .frame_cache import cached_frames

            cache_dir = None if frame_cache is True else frame_cache
            for k in self.image_keys:
                try:
                    images[k] = cached_frames(reader, k, names, lengths, cache_dir)
                except OSError as exc:
                    raise DatasetError(f"{reader.path}, key obs/{k}: frames cannot be read or cached ({exc})") from None
        for label, arr, cols in (("actions", actions, None), ("obs", obs, sizes)):
            step = first_bad_step(arr)
            if step >= 0:
                d = int(np.searchsorted(starts, step, side="right") - 1)
                key = label
                if cols is not None:
                    bad_col = int(np.argmax(~np.isfinite(arr[step])))
                    key = f"obs/{self.obs_keys[int(np.searchsorted(np.cumsum(cols), bad_col, side='right'))]}"
                raise DatasetError(f"{reader.path}, {names[d]}, key {key}: NaN or inf at step {step - starts[d]} "
                                   f"(values must be finite)")
        self.lengths = lengths
        self.obs = torch.from_numpy(obs)
        self.actions = torch.from_numpy(actions)
        self.images = {k: torch.from_numpy(v) for k, v in images.items()}
        episode = np.repeat(np.arange(len(names)), lengths)
        self.episode_index = torch.from_numpy(episode)
        self.ep_start = torch.from_numpy(starts[episode])
        self.ep_end = torch.from_numpy((starts + lengths - 1)[episode])
        if not labels.any():
            raise DatasetError(f"{reader.path}: no step is a training label under the label rule "
                               f"({len(names)} demos, {N} steps)")
        if weights is not None and not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise DatasetError(f"{reader.path}: the weight rule gave a negative, NaN or inf weight")
        # None where every step is a label / weighs 1: batches then skip the gather
        self.labels = None if labels.all() else torch.from_numpy(labels)
        self.step_weights = None if weights is None else torch.from_numpy(weights)
        self.interventions = torch.from_numpy(interventions)  # a person drove this step (take-over episodes)
        self._warned_balance = False
        self.stats = feature_stats(obs, actions, None if labels.all() else labels)
        log.info("%s: loaded %d demos, %d steps (%d labels), obs dim %d, action dim %d", reader.path, len(names), N,
                 int(labels.sum()), self.obs_dim, self.action_dim)

    @staticmethod
    def _step_values(out: np.ndarray, start: int, T: int, rule, group, where: str, what: str):
        """Write rule(group, attrs) for one demo into out[start:start + T] (None leaves the defaults)."""
        value = rule(group, read_attrs(group))
        if value is None:
            return
        value = np.asarray(value).reshape(-1)
        if len(value) != T:
            raise DatasetError(f"{where}: the {what} gave {len(value)} values for {T} steps")
        out[start:start + T] = value

    def stats_for(self, obs_features: torch.Tensor) -> dict:
        """Normalisation statistics with these per-step observation features (N, F) in place of the
        observations (e.g. quaternions turned into matrices); actions as in `stats`."""
        labels = None if self.labels is None else self.labels.numpy()
        return feature_stats(obs_features.numpy(), self.actions.numpy(), labels)

    def labelled_actions(self) -> torch.Tensor:
        """Raw actions (n, A) of the label steps: what heads are fitted to (Policy.prepare)."""
        return self.actions if self.labels is None else self.actions[self.labels]

    # --- windows ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def num_steps(self) -> int:
        return len(self)

    def sample_indices(self, n: int, generator: torch.Generator, balance_interventions: bool = False) -> torch.Tensor:
        """`n` window indices drawn uniformly, or (balance_interventions, IWR) half of them from the
        windows that start on an intervention step and half from the rest, when both exist."""
        if balance_interventions:
            flagged = torch.nonzero(self.interventions).reshape(-1)
            rest = torch.nonzero(~self.interventions).reshape(-1)
            if len(flagged) and len(rest):
                half = n // 2
                pick = lambda pool, k: pool[torch.randint(len(pool), (k,), generator=generator)]  # noqa: E731
                return torch.cat([pick(flagged, half), pick(rest, n - half)])
            if not self._warned_balance:
                log.warning("%s: no intervention steps (or nothing else) to balance; sampling uniformly", self.path)
                self._warned_balance = True
        return torch.randint(len(self), (n,), generator=generator)

    def get_batch(self, index) -> dict:
        idx = torch.as_tensor(index, dtype=torch.long).reshape(-1)
        end = self.ep_end[idx][:, None]
        act_idx = idx[:, None] + self._act_offsets
        mask = act_idx <= end
        act_idx = torch.minimum(act_idx, end)
        if self.sequence_length:  # aligned sequences: the observations are the action steps
            obs_idx = act_idx
        else:
            obs_idx = torch.maximum(idx[:, None] + self._obs_offsets, self.ep_start[idx][:, None])
        if self.labels is not None:
            mask &= self.labels[act_idx]
        batch = {"obs": self.obs[obs_idx], "actions": self.actions[act_idx], "action_mask": mask}
        if self.step_weights is not None:
            batch["weights"] = self.step_weights[act_idx]
        if self.images:
            batch["images"] = {k: v[obs_idx] for k, v in self.images.items()}
        return batch

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        batch = self.get_batch([i % len(self)])
        out = {k: v[0] for k, v in batch.items() if k != "images"}
        if "images" in batch:
            out["images"] = {k: v[0] for k, v in batch["images"].items()}
        return out
