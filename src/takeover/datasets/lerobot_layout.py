"""What a takeover demonstration file looks like as a LeRobotDataset v3.0 (DESIGN §8), shared by the
exporter (lerobot_export.py) and the importer (lerobot_import.py): feature names, the folder's paths,
the statistics LeRobot keeps per feature, and typed attributes as JSON.

    observation.state               the low-dim keys except `object`, concatenated (names: key.x, key.0, ...)
    observation.environment_state   the `object` vector (names from the file's object layout)
    observation.images.<camera>     `<camera>_image` frames, as video
    action, next.reward, next.done, next.success
    intervention                    1 where a human was in control (the name LeRobot's rollout DAgger
                                    strategy writes: lerobot/rollout/context.py, bool, shape (1,))
    takeover.<name>                 what LeRobot has no column for: states, policy_actions, ... (1-D)

and `meta/takeover/` (file.json: the file's attributes, keys, masks; episodes.parquet: each demo's
name, attributes, model XML and last next-observation), so that an import gives the file back.
"""
from __future__ import annotations

import json

import numpy as np

CODEBASE_VERSION = "v3.0"
CHUNK_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILE_MB = 100  # LeRobot's defaults for when to start a new file
VIDEO_FILE_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
TAKEOVER_FILE = "meta/takeover/file.json"
TAKEOVER_EPISODES = "meta/takeover/episodes.parquet"
TAKEOVER_FORMAT = 1

STATE = "observation.state"
ENV_STATE = "observation.environment_state"
IMAGES = "observation.images."
ACTION = "action"
REWARD, DONE, SUCCESS = "next.reward", "next.done", "next.success"
INTERVENTION = "intervention"
EXTRA = "takeover."
ENV_STATE_KEY = "object"  # robomimic's name for robosuite's object-state
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                  "task_index": "int64"}

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_BINS = 5000

# the task text written when --task-text is not given
TASK_TEXT = {
    "Lift": "Lift the cube.",
    "Stack": "Stack the red cube on the green cube.",
    "PickPlaceCan": "Pick up the can and place it in its bin.",
    "NutAssemblySquare": "Fit the square nut onto the square peg.",
    "Door": "Open the door.",
    "PickPlace": "Place each object in its bin.",
    "NutAssembly": "Fit each nut onto the peg of its shape.",
}

_AXES = {"pos": "xyz", "vel": "xyz", "quat": ("x", "y", "z", "w")}  # robosuite quaternions are (x, y, z, w)


def camera_feature(obs_key: str) -> str:
    return IMAGES + (obs_key[: -len("_image")] if obs_key.endswith("_image") else obs_key)


def part_names(key: str, size: int) -> list[str]:
    """Names of a low-dim key's entries: `robot0_eef_pos.x`, `robot0_eef_quat.w`, else `key.0`, `key.1`, ..."""
    for suffix, axes in _AXES.items():
        if key.endswith(suffix) and len(axes) == size:
            return [f"{key}.{a}" for a in axes]
    return [f"{key}.{i}" for i in range(size)] if size != 1 else [key]


def layout_names(parts) -> list[str]:
    """Names for a vector made of (key, shape) parts."""
    out = []
    for key, shape in parts:
        out += part_names(key, int(np.prod(shape)) if len(shape) else 1)
    return out


def keys_from_names(names: list[str]) -> list[tuple[str, int]] | None:
    """(key, size) runs of a vector's names written by `layout_names` (`key.x`, `key.0`, a bare `key`);
    None when a name repeats a key already closed (the names do not come from a layout)."""
    runs: list[tuple[str, int]] = []
    for name in names:
        key = name.rsplit(".", 1)[0] if "." in name else name
        if runs and runs[-1][0] == key and "." in name:
            runs[-1] = (key, runs[-1][1] + 1)
        elif any(k == key for k, _ in runs):
            return None
        else:
            runs.append((key, 1))
    return runs


def action_names(dim: int) -> list[str]:
    if dim == 7:  # one arm, OSC_POSE: position and axis-angle offsets, then the gripper
        return ["x", "y", "z", "rx", "ry", "rz", "gripper"]
    return [f"a{i}" for i in range(dim)]


# --- typed attributes ---------------------------------------------------------------------------------
def encode_attr(value) -> dict:
    """An HDF5 attribute as JSON that `decode_attr` turns back into the same type and value."""
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, bytes):
        return {"bytes": value.decode("latin-1")}
    arr = np.asarray(value)
    if arr.dtype.kind in "OSU":
        return {"strings": [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in arr.reshape(-1).tolist()],
                "shape": list(arr.shape), "dtype": arr.dtype.str if arr.dtype.kind == "S" else "O"}
    out = {"dtype": arr.dtype.str, "value": arr.tolist()}
    if isinstance(value, np.ndarray):
        out["array"] = True
    return out


def decode_attr(data: dict):
    if "str" in data:
        return data["str"]
    if "bytes" in data:
        return data["bytes"].encode("latin-1")
    if "strings" in data:
        if data["dtype"] == "O":
            import h5py
            return np.array(data["strings"], dtype=h5py.string_dtype()).reshape(data["shape"])
        return np.array([s.encode("utf-8") for s in data["strings"]], dtype=data["dtype"]).reshape(data["shape"])
    arr = np.array(data["value"], dtype=np.dtype(data["dtype"]))
    return arr if data.get("array") else arr[()]


def encode_attrs(attrs) -> dict:
    return {key: encode_attr(attrs[key]) for key in attrs}


def decode_attrs(data: dict) -> dict:
    return {key: decode_attr(value) for key, value in data.items()}


# --- statistics, as LeRobot computes them (lerobot/datasets/compute_stats.py) --------------------------
def _quantile(hist: np.ndarray, edges: np.ndarray, target: float) -> float:
    """The value below which `target` samples lie, interpolated inside its histogram bin."""
    cumsum = np.cumsum(hist)
    idx = int(np.searchsorted(cumsum, target))
    if idx == 0:
        return float(edges[0])
    if idx >= len(cumsum):
        return float(edges[-1])
    before = cumsum[idx - 1]
    inside = cumsum[idx] - before
    if inside == 0:
        return float(edges[idx])
    return float(edges[idx] + (target - before) / inside * (edges[idx + 1] - edges[idx]))


def vector_stats(values: np.ndarray, count: int | None = None) -> dict:
    """min/max/mean/std/count and q01..q99 per column of (N, D) samples: LeRobot's per-episode statistics
    (quantiles from a 5,000-bin histogram spanning the episode's range). Computed in float64."""
    if np.asarray(values).dtype == np.uint8 and len(values) >= 2:
        return _uint8_stats(np.asarray(values).reshape(len(values), -1), count)
    x = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    n = len(x)
    mean = x.mean(0)
    stats = {"min": x.min(0), "max": x.max(0), "mean": mean, "count": np.array([count if count is not None else n])}
    if n < 2:
        stats["std"] = x.std(0)
        for q in QUANTILES:
            stats[_qkey(q)] = mean.copy()
        return stats
    stats["std"] = np.sqrt(np.maximum(0.0, (x ** 2).mean(0) - mean ** 2))
    hists, edges = [], []
    for d in range(x.shape[1]):
        e = np.linspace(stats["min"][d] - 1e-10, stats["max"][d] + 1e-10, QUANTILE_BINS + 1)
        hists.append(np.histogram(x[:, d], bins=e)[0])
        edges.append(e)
    for q in QUANTILES:
        stats[_qkey(q)] = np.array([_quantile(h, e, q * n) for h, e in zip(hists, edges)])
    return stats


def _uint8_stats(x: np.ndarray, count: int | None) -> dict:
    """`vector_stats` of uint8 samples (camera pixels) from each column's 256 value counts: the same
    numbers without sorting millions of pixels."""
    n, levels = len(x), np.arange(256, dtype=np.float64)
    out = {k: [] for k in ("min", "max", "mean", "std", *map(_qkey, QUANTILES))}
    for d in range(x.shape[1]):
        counts = np.bincount(x[:, d], minlength=256).astype(np.float64)
        present = np.flatnonzero(counts)
        lo, hi = levels[present[0]], levels[present[-1]]
        mean = (levels * counts).sum() / n
        edges = np.linspace(lo - 1e-10, hi + 1e-10, QUANTILE_BINS + 1)
        # np.histogram's bins: [a, b) except the last, [a, b]
        idx = np.clip(np.searchsorted(edges, levels[present], side="right") - 1, 0, QUANTILE_BINS - 1)
        hist = np.bincount(idx, weights=counts[present], minlength=QUANTILE_BINS)
        out["min"].append(lo)
        out["max"].append(hi)
        out["mean"].append(mean)
        out["std"].append(np.sqrt(max(0.0, (levels ** 2 * counts).sum() / n - mean ** 2)))
        for q in QUANTILES:
            out[_qkey(q)].append(_quantile(hist, edges, q * n))
    stats = {k: np.array(v) for k, v in out.items()}
    stats["count"] = np.array([count if count is not None else n])
    return stats


def _qkey(q: float) -> str:
    return f"q{int(q * 100):02d}"


def sample_indices(length: int) -> np.ndarray:
    """The frames LeRobot samples from an episode for image statistics (compute_stats.sample_indices)."""
    num = max(min(100, length), min(int(length ** 0.75), 10_000))
    return np.round(np.linspace(0, length - 1, num)).astype(int)


def image_stats(frames: np.ndarray) -> dict:
    """Per-channel statistics of (T, H, W, C) uint8 frames in [0, 1], shape (C, 1, 1), from the frames
    LeRobot samples (count = frames sampled), as LeRobot's compute_episode_stats does for video."""
    picked = frames[sample_indices(len(frames))]
    h, w = picked.shape[1:3]
    if max(h, w) >= 300:  # LeRobot's auto_downsample_height_width
        step = int(w / 150) if w > h else int(h / 150)
        picked = picked[:, ::step, ::step]
    stats = vector_stats(picked.reshape(-1, picked.shape[-1]), count=len(picked))
    return {k: v if k == "count" else (v / 255.0).reshape(-1, 1, 1) for k, v in stats.items()}


def aggregate_stats(per_episode: list[dict]) -> dict:
    """LeRobot's aggregate_feature_stats: count-weighted means and quantiles, pooled variance."""
    counts = np.stack([s["count"] for s in per_episode]).astype(np.float64)
    total = counts.sum(0)
    means = np.stack([s["mean"] for s in per_episode])
    w = counts.reshape(counts.shape + (1,) * (means.ndim - counts.ndim))
    mean = (means * w).sum(0) / total
    var = ((np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2) * w).sum(0) / total
    out = {"min": np.min(np.stack([s["min"] for s in per_episode]), 0),
           "max": np.max(np.stack([s["max"] for s in per_episode]), 0),
           "mean": mean, "std": np.sqrt(var), "count": total.astype(np.int64)}
    for q in QUANTILES:
        out[_qkey(q)] = (np.stack([s[_qkey(q)] for s in per_episode]) * w).sum(0) / total
    return out


def stats_json(stats: dict) -> dict:
    return {feature: {k: np.asarray(v).tolist() for k, v in s.items()} for feature, s in stats.items()}


def dumps(data) -> str:
    return json.dumps(data, indent=2, allow_nan=True)
