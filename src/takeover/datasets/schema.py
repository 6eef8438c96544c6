"""The demonstration file format (docs/reference/formats.md), a robomimic-compatible superset, and its validation.

    data                     attrs: env_args (robomimic JSON), total, takeover_spec (EnvSpec JSON),
                                    format_version, takeover_obs_keys (JSON list, observation order),
                                    takeover_action_dim, takeover_object_layout (JSON: names and shapes of
                                    the parts of the `object` vector, from the recording environment)
      demo_<i>               attrs: num_samples, model_file, source, success, seed, [round], takeover_episode_id,
                                    [subtask_ends, source_demos] (generated demos), ...
        actions (T,A) f32, states (T,S) f64, rewards (T,) f32, dones (T,) u8
        obs/<key>, next_obs/<key>   low-dim f32, images u8 HxWx3 (gzip, one frame per chunk)
        executed_actions, policy_actions (T,A) f32, interventions (T,) u8, any other (T, ...) array
    mask/<split>             demo names as bytes

Everything here reads or writes one h5py group; files, the journal and atomic renames live in storage.py,
journal.py and writer.py.
"""
from __future__ import annotations

import json
import re

import numpy as np

from takeover.sim.observations import ObsLayout

from .episode import KNOWN_EXTRAS, Episode
from .errors import DatasetError

FORMAT_VERSION = 1
EPISODE_ID_ATTR = "takeover_episode_id"
OBS_KEYS_ATTR = "takeover_obs_keys"
ACTION_DIM_ATTR = "takeover_action_dim"
OBJECT_LAYOUT_ATTR = "takeover_object_layout"
# per demo, optional: the step where each object-centric subtask ends (sim/subtasks.py; demo generation
# writes it on generated demos, with `source_demos`, the source demo of each subtask)
SUBTASK_ENDS_ATTR = "subtask_ends"
CORE_ARRAYS = ("actions", "states", "rewards", "dones")
ACTION_LIKE = ("actions", "executed_actions", "policy_actions")
_DEMO_RE = re.compile(r"^demo_(\d+)$")
_RESERVED_ATTRS = {"num_samples", "model_file"}
# camera frames: one frame per chunk (a training window reads a few frames, never a whole episode); gzip
# because every HDF5 reader has it (lzf is h5py's own); level 1: rendered 84x84 frames shrink 2.3x (level 4:
# 2.5x, for 1.3-2.7x the CPU, which a live session shares with the simulator and the policy); reading is
# about as fast at either level (benchmarks/results/save_cost.json, "codecs")
IMAGE_STORAGE = {"compression": "gzip", "compression_opts": 1}


def is_image_key(key: str) -> bool:
    return key.endswith("_image") or key.endswith("_depth")


def demo_index(name: str) -> int:
    match = _DEMO_RE.match(name)
    return int(match.group(1)) if match else -1


def sort_demos(names) -> list[str]:
    return sorted(names, key=lambda n: (demo_index(n), n))


# --- attributes -----------------------------------------------------------------------------------
def to_attr(value):
    """A Python value as an HDF5 attribute: str/int/float/bool/arrays as they are, dicts and lists of
    strings as JSON text."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, (dict,)) or (isinstance(value, (list, tuple)) and any(isinstance(v, (str, dict)) for v in value)):
        return json.dumps(value, sort_keys=True)
    return value


def from_attr(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        return [from_attr(v) for v in value.tolist()]
    return value


def read_attrs(group) -> dict:
    return {k: from_attr(v) for k, v in group.attrs.items()}


def data_attrs(spec) -> dict:
    """The `data` group's attributes for a new file of `spec`."""
    return {"env_args": json.dumps(spec.robomimic_env_args(), default=str), "total": 0,
            "takeover_spec": spec.to_json(), "format_version": FORMAT_VERSION}


def object_layout_from_attrs(attrs: dict, where) -> ObsLayout | None:
    """The `object` part layout stored in the `data` attributes, or None for a file recorded without it."""
    text = attrs.get(OBJECT_LAYOUT_ATTR)
    if text is None:
        return None
    try:
        return ObsLayout.from_dict(json.loads(text))
    except (json.JSONDecodeError, TypeError, KeyError, ValueError):
        raise DatasetError(f"{where}: data attribute {OBJECT_LAYOUT_ATTR} is not a layout ({str(text)[:80]!r})") from None


# --- writing --------------------------------------------------------------------------------------
def _obs_array(key: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if is_image_key(key) or arr.dtype == np.uint8:
        return arr
    return arr.astype(np.float32, copy=False)


def compressible(key: str, arr) -> bool:
    """Whether `arr` (an array or a dataset) at `key` is a camera stream stored with IMAGE_STORAGE."""
    return bool(IMAGE_STORAGE) and is_image_key(key) and arr.ndim >= 3 and arr.shape[0] > 0


def _create_obs(group, key: str, value, compress: bool):
    arr = _obs_array(key, value)
    if compress and compressible(key, arr):
        group.create_dataset(key, data=arr, chunks=(1,) + arr.shape[1:], **IMAGE_STORAGE)
    else:
        group.create_dataset(key, data=arr)


def copy_demo(src, dst_parent, name: str):
    """Copy a stored demo group into `dst_parent` as `name`, compressing camera frames stored raw (a
    journal episode); everything else is copied as stored, attributes with their types."""
    dst = dst_parent.create_group(name)
    copy_attrs(src, dst)
    for key, item in src.items():
        if hasattr(item, "keys"):
            copy_demo(item, dst, key)
        elif item.compression is None and compressible(key, item):
            copy_attrs(item, dst.create_dataset(key, data=item[()], chunks=(1,) + item.shape[1:], **IMAGE_STORAGE))
        else:
            src.copy(item, dst, name=key)
    return dst


def copy_attrs(src, dst):
    """Copy every attribute of one h5py object to another, keeping each one's stored type."""
    for key in src.attrs:
        dst.attrs.create(key, src.attrs[key], dtype=src.attrs.get_id(key).dtype)


def write_episode(group, episode: Episode, episode_id: str | None = None, compress_images: bool = True):
    """Write `episode` into an empty h5py group (a demo). `compress_images=False` stores camera frames raw
    (a journal episode, written while the operator waits; folding compresses them)."""
    T = len(episode)
    group.create_dataset("actions", data=np.asarray(episode.actions, np.float32))
    group.create_dataset("states", data=np.asarray(episode.states, np.float64))
    group.create_dataset("rewards", data=np.asarray(episode.rewards, np.float32))
    group.create_dataset("dones", data=np.asarray(episode.dones, np.uint8))
    for prefix, obs in (("obs", episode.obs), ("next_obs", episode.next_obs)):
        sub = group.create_group(prefix)
        for key, value in obs.items():
            _create_obs(sub, key, value, compress_images)
    for key, value in episode.extras.items():
        group.create_dataset(key, data=np.asarray(value, KNOWN_EXTRAS.get(key)))
    for key, value in episode.attrs.items():
        if value is None or key in _RESERVED_ATTRS:
            continue
        group.attrs[key] = to_attr(value)
    group.attrs["num_samples"] = T
    group.attrs["model_file"] = episode.model_file or ""
    if episode_id is not None:
        group.attrs[EPISODE_ID_ATTR] = episode_id


# --- validation -----------------------------------------------------------------------------------
def first_bad_step(arr: np.ndarray) -> int:
    """Index of the first step holding NaN or inf, or -1."""
    if arr.dtype.kind not in "fc" or arr.size == 0:
        return -1
    bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else -1


def check_episode(episode: Episode, where: str, action_dim: int | None = None, obs_keys=None):
    """Raise DatasetError unless every array has T steps, the actions have `action_dim` columns, the
    observation keys are `obs_keys` (when given) and actions/observations hold no NaN or inf."""
    T = len(episode)
    if T == 0:
        raise DatasetError(f"{where}: episode has no steps")
    if episode.actions.ndim != 2:
        raise DatasetError(f"{where}, key actions: expected shape (T, A), got {episode.actions.shape}")
    for key, arr in episode.step_arrays().items():
        if key == "states" and np.asarray(arr).size == 0:
            continue
        if len(arr) != T:
            raise DatasetError(f"{where}, key {key}: has {len(arr)} steps, expected {T} (the length of actions)")
    if action_dim is not None:
        for key in ACTION_LIKE:
            arr = episode.actions if key == "actions" else episode.extras.get(key)
            if arr is not None and (arr.ndim != 2 or arr.shape[1] != action_dim):
                raise DatasetError(f"{where}, key {key}: shape {tuple(arr.shape)}, expected (T, {action_dim}) "
                                   f"(the file's action size)")
    if obs_keys is not None and set(episode.obs) != set(obs_keys):
        raise DatasetError(f"{where}: observation keys {sorted(episode.obs)} differ from the file's {sorted(obs_keys)}")
    if episode.next_obs and set(episode.next_obs) != set(episode.obs):
        raise DatasetError(f"{where}: next_obs keys {sorted(episode.next_obs)} differ from obs keys {sorted(episode.obs)}")
    checked = {"actions": episode.actions, **{f"obs/{k}": v for k, v in episode.obs.items()},
               **{f"next_obs/{k}": v for k, v in episode.next_obs.items()}}
    checked.update({k: episode.extras[k] for k in ("executed_actions", "policy_actions") if k in episode.extras})
    for key, arr in checked.items():
        step = first_bad_step(np.asarray(arr))
        if step >= 0:
            raise DatasetError(f"{where}, key {key}: NaN or inf at step {step} (values must be finite)")


def check_group_shapes(group, where: str, action_dim: int | None):
    """Cheap structural check of a stored demo, done for every demo when a file is opened (metadata of
    `actions` only; the other arrays are checked as an episode is loaded)."""
    import h5py

    actions = group.get("actions")
    if not isinstance(actions, h5py.Dataset):
        raise DatasetError(f"{where}: no 'actions' dataset (every demo needs actions (T, A))")
    shape = actions.shape
    if len(shape) != 2:
        raise DatasetError(f"{where}, key actions: expected shape (T, A), got {shape}")
    n = group.attrs.get("num_samples")
    if n is not None and int(n) != shape[0]:
        raise DatasetError(f"{where}: attribute num_samples = {int(n)} but actions has {shape[0]} steps")
    if action_dim is not None and shape[1] != action_dim:
        raise DatasetError(f"{where}, key actions: shape {shape}, expected (T, {action_dim}) (the file's action size)")


# --- reading --------------------------------------------------------------------------------------
def read_episode(group, obs_order=None) -> Episode:
    """Load a stored demo group into an Episode (no validation)."""
    T = group["actions"].shape[0]

    def arr(name, dtype, shape):
        return group[name][()] if name in group else np.zeros(shape, dtype)

    def obs_dict(prefix):
        if prefix not in group:
            return {}
        keys = list(group[prefix].keys())
        if obs_order:
            keys = [k for k in obs_order if k in keys] + [k for k in keys if k not in obs_order]
        return {k: group[prefix][k][()] for k in keys}

    attrs = read_attrs(group)
    model_file = attrs.pop("model_file", "")
    attrs.pop("num_samples", None)
    skip = set(CORE_ARRAYS) | {"obs", "next_obs"}
    extras = {k: group[k][()] for k in group.keys() if k not in skip and not hasattr(group[k], "keys")}
    return Episode(actions=arr("actions", np.float32, (T, 0)), states=arr("states", np.float64, (T, 0)),
                   obs=obs_dict("obs"), next_obs=obs_dict("next_obs"), rewards=arr("rewards", np.float32, (T,)),
                   dones=arr("dones", np.uint8, (T,)), attrs=attrs, extras=extras, model_file=str(model_file))
