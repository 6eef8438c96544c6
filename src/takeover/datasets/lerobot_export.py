"""`takeover data export DATA --format lerobot -o DIR`: a demonstration file as a LeRobotDataset v3.0
folder (feature names and meta files: lerobot_layout.py). The folder is built beside DIR under a temp
name and renamed into place when complete, so DIR either does not exist or holds a whole export; DATA
is only read.

Episodes are written in split order (mask/train, then mask/valid, ...) when the file's masks split
every demo once, so that info.json's `splits` are LeRobot's "start:end" episode ranges; each episode's
demo name travels in meta/takeover/episodes.parquet and the import restores the original names.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import lerobot_layout as L
from .errors import DatasetError
from .reader import DemoReader
from .schema import is_image_key, sort_demos
from .video_files import PIX_FMTS, VideoEncoder

log = logging.getLogger(__name__)
MB = 1024 * 1024
# LeRobot starts a new video file once one reaches its size limit; ffmpeg's output size lags behind the
# frames given to it, so the encoded size is estimated from the raw frames (rendered scenes at these
# settings shrink about this much), which also keeps the layout the same from run to run
RAW_PER_ENCODED_BYTE = 4


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetError("LeRobot export and import need pyarrow (pip install pyarrow)") from None
    return pa, pq


@dataclass
class Layout:
    """Which stored array goes to which LeRobot feature (decided from the first demo, checked on all)."""
    state_parts: list = field(default_factory=list)  # [(obs key, shape)] -> observation.state (float32)
    env_state: tuple | None = None  # (obs key, shape) -> observation.environment_state
    cameras: dict = field(default_factory=dict)  # feature -> (obs key, (H, W, 3))
    other_obs: dict = field(default_factory=dict)  # feature -> (obs key, dtype, shape): depth, non-float low-dim
    extras: dict = field(default_factory=dict)  # feature -> (extra name, dtype, shape)
    interventions: bool = False
    state_dim: int = 0
    action_dim: int = 0

    def to_json(self) -> dict:
        return {"state_parts": [[k, list(s)] for k, s in self.state_parts],
                "env_state": None if self.env_state is None else [self.env_state[0], list(self.env_state[1])],
                "cameras": {f: [k, list(s)] for f, (k, s) in self.cameras.items()},
                "other_obs": {f: [k, d, list(s)] for f, (k, d, s) in self.other_obs.items()},
                "extras": {f: [k, d, list(s)] for f, (k, d, s) in self.extras.items()},
                "interventions": self.interventions, "state_dim": self.state_dim, "action_dim": self.action_dim}


def _layout(reader: DemoReader) -> Layout:
    lay = Layout(action_dim=int(reader.action_dim))
    first = reader.group(reader.demos[0])
    obs = first["obs"] if "obs" in first else {}
    for key in reader.obs_keys:
        if key not in obs:
            continue
        ds = obs[key]
        shape, dtype = tuple(ds.shape[1:]), ds.dtype
        if dtype == np.uint8 and len(shape) == 3 and shape[2] == 3:
            lay.cameras[L.camera_feature(key)] = (key, shape)
        elif key == L.ENV_STATE_KEY and dtype == np.float32 and len(shape) == 1:
            lay.env_state = (key, shape)
        elif dtype == np.float32 and not is_image_key(key):
            lay.state_parts.append((key, shape))
        else:
            lay.other_obs[f"{L.EXTRA}obs.{key}"] = (key, dtype.str, shape)
    extras: dict[str, tuple] = {}
    for name in reader.demos:
        group = reader.group(name)
        if "states" in group and group["states"].ndim == 2 and group["states"].shape[1]:
            dim = int(group["states"].shape[1])
            if lay.state_dim and dim != lay.state_dim:
                raise DatasetError(f"{reader.path}, {name}: states have {dim} columns, {reader.demos[0]}'s "
                                   f"{lay.state_dim}; LeRobot columns have one size")
            lay.state_dim = dim
        for key, item in group.items():
            if key in ("actions", "states", "rewards", "dones") or hasattr(item, "keys"):
                continue
            if key == "interventions":
                lay.interventions = True
                continue
            sig = (item.dtype.str, tuple(item.shape[1:]))
            if extras.setdefault(key, sig) != sig:
                raise DatasetError(f"{reader.path}, {name}, key {key}: dtype/shape {sig} differ from another "
                                   f"demo's {extras[key]}")
    lay.extras = {f"{L.EXTRA}{k}": (k, d, s) for k, (d, s) in sorted(extras.items())}
    return lay


def _check_demos(reader: DemoReader, lay: Layout):
    """Every demo has every observation key the first one has, with frames; lengths and values are sane."""
    wanted = [k for k, _ in lay.state_parts] + ([lay.env_state[0]] if lay.env_state else []) + \
        [k for k, _ in lay.cameras.values()] + [k for k, _, _ in lay.other_obs.values()]
    for name in reader.demos:
        group = reader.group(name)
        obs = group["obs"] if "obs" in group else {}
        for key in wanted:
            if key not in obs:
                kind = "image key" if is_image_key(key) else "observation key"
                raise DatasetError(f"{reader.path}, {name}: {kind} {key} is missing (its frames are not in the file)")
            if obs[key].shape[0] != reader.num_samples(name) or obs[key].shape[0] == 0:
                raise DatasetError(f"{reader.path}, {name}, key obs/{key}: has {obs[key].shape[0]} frames, "
                                   f"expected {reader.num_samples(name)}")
        reader.check(name)


def _episode_order(reader: DemoReader) -> tuple[list[str], dict, dict]:
    """Demo order and LeRobot's `splits`: contiguous "start:end" ranges when the masks split every demo once."""
    masks = _raw_masks(reader)
    demos = list(reader.demos)
    if not masks:
        return demos, {"train": f"0:{len(demos)}"}, masks
    named = [n for names in masks.values() for n in names]
    if sorted(named) == sorted(demos) and len(set(named)) == len(named):
        order, splits = [], {}
        for split, names in masks.items():
            if names:
                splits[split] = f"{len(order)}:{len(order) + len(names)}"
                order += sort_demos(names)
        return order, splits, masks
    log.warning("%s: the masks do not split the demos once each; LeRobot's splits list all demos as train "
                "(the masks are kept in meta/takeover/file.json)", reader.path)
    return demos, {"train": f"0:{len(demos)}"}, masks


def _raw_masks(reader: DemoReader) -> dict:
    if "mask" not in reader._file:
        return {}
    out = {}
    for split, ds in reader._file["mask"].items():
        values = ds[()].tolist() if ds.shape else []
        out[split] = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    return out


def _next_obs_blob(episode) -> bytes:
    """The next observations the frames do not already hold: the last one of each key when next_obs[t]
    is obs[t+1] (the usual case), else the whole array."""
    arrays = {}
    for key, nxt in episode.next_obs.items():
        cur = episode.obs.get(key)
        if cur is not None and nxt.dtype == cur.dtype and nxt.shape == cur.shape and np.array_equal(nxt[:-1], cur[1:]):
            arrays[f"last/{key}"] = nxt[-1:]
        else:
            arrays[f"full/{key}"] = nxt
    if not arrays:
        return b""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


class _Files:
    """Rolls data and video files over at their size limits (LeRobot's chunk/file numbering)."""

    def __init__(self, limit_mb: float):
        self.limit, self.chunk, self.file, self.size, self.count = limit_mb * MB, 0, 0, 0, 0

    def roll_if_full(self, adding: int) -> bool:
        if self.count and self.size + adding > self.limit:
            self.advance()
            return True
        return False

    def advance(self):
        self.file += 1
        if self.file == L.CHUNK_SIZE:
            self.chunk, self.file = self.chunk + 1, 0
        self.size = self.count = 0


def _fixed(pa, arr: np.ndarray, pa_type):
    arr = np.ascontiguousarray(arr)
    flat = pa.array(arr.reshape(-1), type=pa_type)
    return pa.FixedSizeListArray.from_arrays(flat, arr.shape[1])


def _pa_type(pa, dtype: str):
    return pa.from_numpy_dtype(np.dtype(dtype))


def export_lerobot(data, out, fps: int | None = None, task_text: str | None = None, pix_fmt: str = "yuv444p",
                   data_file_mb: float = L.DATA_FILE_MB, video_file_mb: float = L.VIDEO_FILE_MB, progress=None) -> dict:
    """Write demonstration file `data` as a LeRobotDataset v3.0 folder `out` (must not exist)."""
    pa, pq = _pa()
    out = Path(out)
    if out.exists():
        raise DatasetError(f"{out}: already exists; the export writes a new folder (remove it or pick another name)")
    if pix_fmt not in PIX_FMTS:
        raise DatasetError(f"pixel format {pix_fmt!r} is not one of {', '.join(PIX_FMTS)}")
    with DemoReader(data) as reader:
        if not reader.demos:
            raise DatasetError(f"{reader.path}: has no demos; nothing to export")
        lay = _layout(reader)
        _check_demos(reader, lay)
        if fps is None:
            if reader.spec is None:
                raise DatasetError(f"{reader.path}: has no environment spec to take the frame rate from; pass --fps")
            fps = int(reader.spec.control_freq)
        if int(fps) < 1:
            raise DatasetError(f"fps must be >= 1, got {fps}")
        if task_text is None:
            if reader.spec is None or reader.spec.task not in L.TASK_TEXT:
                raise DatasetError(f"{reader.path}: no known task to describe; pass --task-text")
            task_text = L.TASK_TEXT[reader.spec.task]
        order, splits, masks = _episode_order(reader)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-export-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            result = _write(reader, lay, order, splits, masks, tmp, int(fps), task_text, pix_fmt,
                            data_file_mb, video_file_mb, progress, pa, pq)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    result["output"] = str(out)
    return result


def _features(lay: Layout, reader: DemoReader, fps: int, pix_fmt: str) -> dict:
    feats = {}
    if lay.state_parts:
        dim = sum(int(np.prod(s)) for _, s in lay.state_parts)
        feats[L.STATE] = {"dtype": "float32", "shape": [dim], "names": L.layout_names(lay.state_parts)}
    if lay.env_state is not None:
        layout = reader.object_layout if lay.env_state[1][0] else None
        names = L.layout_names(zip(layout.keys, layout.shapes)) if layout is not None else None
        if names is None or len(names) != lay.env_state[1][0]:
            names = L.part_names(L.ENV_STATE_KEY, lay.env_state[1][0])
        feats[L.ENV_STATE] = {"dtype": "float32", "shape": list(lay.env_state[1]), "names": names}
    for feature, (key, shape) in lay.cameras.items():
        h, w, c = shape
        feats[feature] = {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                          "info": {"video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": pix_fmt,
                                   "video.is_depth_map": False, "video.fps": fps, "video.channels": c,
                                   "has_audio": False}}
    feats[L.ACTION] = {"dtype": "float32", "shape": [lay.action_dim], "names": L.action_names(lay.action_dim)}
    feats[L.REWARD] = {"dtype": "float32", "shape": [1], "names": None}
    feats[L.DONE] = {"dtype": "bool", "shape": [1], "names": None}
    feats[L.SUCCESS] = {"dtype": "bool", "shape": [1], "names": None}
    if lay.interventions:
        feats[L.INTERVENTION] = {"dtype": "bool", "shape": [1], "names": None}
    if lay.state_dim:
        feats[f"{L.EXTRA}states"] = {"dtype": "float64", "shape": [lay.state_dim], "names": None}
    for feature, (key, dtype, shape) in {**lay.other_obs, **lay.extras}.items():
        feats[feature] = {"dtype": np.dtype(dtype).name, "shape": [max(1, int(np.prod(shape)))], "names": None}
    for key, dtype in L.INDEX_FEATURES.items():
        feats[key] = {"dtype": dtype, "shape": [1], "names": None}
    return feats


def _frame_columns(episode, lay: Layout, features: dict, ep_index: int, start: int, fps: int) -> dict:
    """Every non-video feature of one episode as a numpy array (T,) or (T, D)."""
    T = len(episode)
    cols = {}
    if lay.state_parts:
        parts = [np.asarray(episode.obs[k], np.float32).reshape(T, -1) for k, _ in lay.state_parts]
        cols[L.STATE] = np.concatenate(parts, 1)
    if lay.env_state is not None:
        cols[L.ENV_STATE] = np.asarray(episode.obs[lay.env_state[0]], np.float32).reshape(T, -1)
    cols[L.ACTION] = np.asarray(episode.actions, np.float32)
    cols[L.REWARD] = np.asarray(episode.rewards, np.float32)
    cols[L.DONE] = np.asarray(episode.dones).astype(bool)
    success = np.zeros(T, bool)
    success[-1] = bool(episode.attrs.get("success", False))
    cols[L.SUCCESS] = success
    if lay.interventions:
        cols[L.INTERVENTION] = np.asarray(episode.extras.get("interventions", np.zeros(T))).reshape(T).astype(bool)
    if lay.state_dim:
        cols[f"{L.EXTRA}states"] = np.asarray(episode.states, np.float64).reshape(T, lay.state_dim)
    for feature, (key, dtype, shape) in lay.other_obs.items():
        cols[feature] = np.asarray(episode.obs[key], dtype).reshape(T, -1)
    for feature, (key, dtype, shape) in lay.extras.items():
        value = episode.extras.get(key)
        cols[feature] = (np.zeros((T, max(1, int(np.prod(shape)))), dtype) if value is None
                         else np.asarray(value, dtype).reshape(T, -1))
    frame = np.arange(T, dtype=np.int64)
    cols["timestamp"] = (frame / fps).astype(np.float32)
    cols["frame_index"] = frame
    cols["episode_index"] = np.full(T, ep_index, np.int64)
    cols["index"] = start + frame
    cols["task_index"] = np.zeros(T, np.int64)
    return {k: (v.reshape(T) if features[k]["shape"] == [1] else v) for k, v in cols.items()}


def _table(pa, cols: dict, features: dict):
    arrays, names = [], []
    for key, value in cols.items():
        pa_type = _pa_type(pa, features[key]["dtype"])
        arrays.append(pa.array(value, type=pa_type) if value.ndim == 1 else _fixed(pa, value, pa_type))
        names.append(key)
    return pa.Table.from_arrays(arrays, names=names)


def _write(reader, lay, order, splits, masks, root, fps, task_text, pix_fmt, data_file_mb, video_file_mb, progress,
           pa, pq):
    root.mkdir(parents=True)
    features = _features(lay, reader, fps, pix_fmt)
    data_files = _Files(data_file_mb)
    video_files = {f: _Files(video_file_mb) for f in lay.cameras}
    writer, encoders, video_frames = None, {}, {f: 0 for f in lay.cameras}
    episodes_rows, takeover_rows, per_episode_stats = [], [], []
    start = 0
    try:
        for ep_index, name in enumerate(order):
            episode = reader.episode(name)
            T = len(episode)
            cols = _frame_columns(episode, lay, features, ep_index, start, fps)
            table = _table(pa, cols, features)
            if writer is None or data_files.roll_if_full(table.nbytes):
                if writer is not None:
                    writer.close()
                path = root / L.DATA_PATH.format(chunk_index=data_files.chunk, file_index=data_files.file)
                path.parent.mkdir(parents=True, exist_ok=True)
                writer = pq.ParquetWriter(path, table.schema, compression="snappy")
            writer.write_table(table)
            data_files.size += table.nbytes
            data_files.count += 1
            row = {"episode_index": ep_index, "tasks": [task_text], "length": T,
                   "data/chunk_index": data_files.chunk, "data/file_index": data_files.file,
                   "dataset_from_index": start, "dataset_to_index": start + T}
            ep_stats = {k: L.vector_stats(v.reshape(T, -1).astype(np.float64)) for k, v in cols.items()}
            for feature, (key, shape) in lay.cameras.items():
                frames = episode.obs[key]
                files = video_files[feature]
                enc = encoders.get(feature)
                if enc is not None and files.size / RAW_PER_ENCODED_BYTE >= files.limit:
                    enc.close()  # LeRobot's rule: a new file once this one reached the size limit
                    files.advance()
                    enc = None
                if enc is None:
                    path = root / L.VIDEO_PATH.format(video_key=feature, chunk_index=files.chunk, file_index=files.file)
                    enc = encoders[feature] = VideoEncoder(path, shape[0], shape[1], fps, pix_fmt)
                    video_frames[feature] = 0
                from_s = video_frames[feature] / fps
                enc.write(frames)
                files.count += 1
                files.size += frames.nbytes
                video_frames[feature] += T
                row.update({f"videos/{feature}/chunk_index": files.chunk, f"videos/{feature}/file_index": files.file,
                            f"videos/{feature}/from_timestamp": from_s,
                            f"videos/{feature}/to_timestamp": video_frames[feature] / fps})
                ep_stats[feature] = L.image_stats(frames)
            per_episode_stats.append(ep_stats)
            for feature, s in ep_stats.items():
                for stat, value in s.items():
                    row[f"stats/{feature}/{stat}"] = np.asarray(value).tolist()
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
            episodes_rows.append(row)
            group = reader.group(name)
            takeover_rows.append({
                "episode_index": ep_index, "demo": name,
                "attrs": json.dumps(L.encode_attrs({k: v for k, v in group.attrs.items() if k != "model_file"})),
                "model_file": str(episode.model_file) if "model_file" in group.attrs else None,
                "extras": json.dumps(sorted(episode.extras)),
                "has_next_obs": bool(episode.next_obs),
                "next_obs": _next_obs_blob(episode)})
            start += T
            if progress is not None:
                progress(name)
        if writer is not None:
            writer.close()
            writer = None
        for enc in encoders.values():
            enc.close()
    except BaseException:
        for enc in encoders.values():
            enc.kill()
        if writer is not None:
            writer.close()
        raise
    stats = {feature: L.aggregate_stats([s[feature] for s in per_episode_stats]) for feature in per_episode_stats[0]}
    _write_meta(root, pa, pq, reader, lay, features, episodes_rows, takeover_rows, stats, splits, masks, task_text,
                fps, start, data_file_mb, video_file_mb)
    return {"episodes": len(order), "frames": start, "fps": fps, "task": task_text, "splits": splits,
            "cameras": list(lay.cameras), "interventions": lay.interventions}


def _tasks_table(pa, tasks: list[str]):
    """meta/tasks.parquet as pandas writes LeRobot's DataFrame (task text as the index, task_index column),
    so that pandas.read_parquet gives LeRobot that frame back."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "__index_level_0__": pa.array(tasks, pa.string())})
    meta = {"index_columns": ["__index_level_0__"],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": {"encoding": "UTF-8"}}],
            "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                         "numpy_type": "int64", "metadata": None},
                        {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                         "numpy_type": "object", "metadata": None}],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def _write_meta(root, pa, pq, reader, lay, features, episodes_rows, takeover_rows, stats, splits, masks, task_text,
                fps, total_frames, data_file_mb, video_file_mb):
    meta = root / "meta"
    path = root / L.EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episodes_rows), path)
    pq.write_table(_tasks_table(pa, [task_text]), root / L.TASKS_PATH)
    info = {"codebase_version": L.CODEBASE_VERSION,
            "robot_type": "+".join(reader.spec.robots) if reader.spec is not None else None,
            "total_episodes": len(episodes_rows), "total_frames": int(total_frames), "total_tasks": 1,
            "chunks_size": L.CHUNK_SIZE, "data_files_size_in_mb": data_file_mb, "video_files_size_in_mb": video_file_mb,
            "fps": fps, "splits": splits, "data_path": L.DATA_PATH,
            "video_path": L.VIDEO_PATH if lay.cameras else None, "features": features}
    (root / L.INFO_PATH).write_text(L.dumps(info))
    (root / L.STATS_PATH).write_text(L.dumps(L.stats_json(stats)))
    (meta / "takeover").mkdir()
    data_group = reader._file["data"]
    takeover = {"format": L.TAKEOVER_FORMAT, "source": str(reader.path.name),
                "data_attrs": L.encode_attrs(data_group.attrs), "obs_keys": list(reader.obs_keys),
                "layout": lay.to_json(), "masks": masks,
                "mask_attrs": {s: L.encode_attrs(reader._file["mask"][s].attrs) for s in masks}}
    (root / L.TAKEOVER_FILE).write_text(L.dumps(takeover))
    schema = pa.schema([("episode_index", pa.int64()), ("demo", pa.string()), ("attrs", pa.string()),
                        ("model_file", pa.string()), ("extras", pa.string()), ("has_next_obs", pa.bool_()),
                        ("next_obs", pa.binary())])
    pq.write_table(pa.Table.from_pylist(takeover_rows, schema=schema), root / L.TAKEOVER_EPISODES, compression="zstd")
