"""`takeover data import-lerobot DIR -o OUT.hdf5`: a LeRobotDataset v3.0 folder as a demonstration file.

A folder this project exported (it has meta/takeover/) comes back as the file it was made from: states,
actions, observations, extras, attributes, masks (camera frames within the video codec's tolerance).
Another LeRobot dataset has no simulator states: it imports as observations and actions (training
works; replay, relabelling, DAgger from recorded states and generation do not, and a warning says so),
when its features map onto a takeover task's observations (`--task`): `observation.state` names
`<key>.<part>` for that task's low-dim keys, `observation.environment_state` its `object` vector,
`observation.images.<camera>` its cameras, `action` its action size. Otherwise it is refused with the
first feature that does not fit. The output is written whole under a temp name and renamed into place.
"""
from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np

from . import lerobot_layout as L
from .episode import Episode
from .errors import DatasetError
from .schema import ACTION_DIM_ATTR, OBJECT_LAYOUT_ATTR, OBS_KEYS_ATTR, data_attrs, write_episode
from .storage import create_atomically
from .video_files import decode_frames

log = logging.getLogger(__name__)


def _pa():
    from .lerobot_export import _pa
    return _pa()


class LeRobotFolder:
    """The metadata of a LeRobotDataset v3.0 folder, checked, and its frames by episode."""

    def __init__(self, root):
        pa, self.pq = _pa()
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: {'is not a folder' if self.root.exists() else 'no such folder'}; "
                               f"expected a LeRobotDataset folder (meta/info.json, data/, ...)")
        info_path = self.root / L.INFO_PATH
        if not info_path.is_file():
            raise DatasetError(f"{self.root}: missing metadata {L.INFO_PATH}; not a LeRobotDataset folder")
        try:
            self.info = json.loads(info_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"{info_path}: not readable JSON ({exc})") from None
        version = self.info.get("codebase_version") if isinstance(self.info, dict) else None
        if version != L.CODEBASE_VERSION:
            raise DatasetError(f"{self.root}: LeRobot codebase version {version!r}; this reads {L.CODEBASE_VERSION!r} "
                               f"(convert older datasets with LeRobot's convert_dataset_v21_to_v30)")
        for key in ("fps", "features", "data_path", "total_episodes"):
            if key not in self.info:
                raise DatasetError(f"{info_path}: missing {key!r}; the metadata is incomplete")
        self.features = self.info["features"]
        self.fps = int(self.info["fps"])
        episode_files = sorted((self.root / "meta" / "episodes").glob("*/*.parquet"))
        if not episode_files:
            raise DatasetError(f"{self.root}: missing metadata meta/episodes/chunk-*/file-*.parquet")
        if not (self.root / L.TASKS_PATH).is_file():
            raise DatasetError(f"{self.root}: missing metadata {L.TASKS_PATH}")
        try:
            rows = []
            for path in episode_files:
                table = self.pq.read_table(path)
                keep = [c for c in table.column_names if not c.startswith("stats/")]
                rows += table.select(keep).to_pylist()
            self.tasks = self._read_tasks()
        except (OSError, ValueError) as exc:  # pyarrow's errors derive from these
            raise DatasetError(f"{self.root}: metadata parquet unreadable ({exc})") from None
        self.episodes = sorted(rows, key=lambda r: r["episode_index"])
        if len(self.episodes) != int(self.info["total_episodes"]):
            raise DatasetError(f"{self.root}: meta/episodes lists {len(self.episodes)} episodes, info.json "
                               f"{self.info['total_episodes']}")
        if not self.episodes:
            raise DatasetError(f"{self.root}: has no episodes")
        self.video_keys = [k for k, f in self.features.items() if f.get("dtype") == "video"]
        for key in self.video_keys:
            if not self.info.get("video_path"):
                raise DatasetError(f"{info_path}: feature {key} is a video but there is no video_path")
        missing = [self.data_file(ep) for ep in self.episodes if not self.data_file(ep).is_file()]
        missing += [self.video_file(ep, k) for ep in self.episodes for k in self.video_keys
                    if not self.video_file(ep, k).is_file()]
        if missing:
            raise DatasetError(f"{self.root}: missing {missing[0].relative_to(self.root)}"
                               + (f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""))
        self._tables: dict[Path, dict] = {}

    def _read_tasks(self) -> list[str]:
        table = self.pq.read_table(self.root / L.TASKS_PATH)
        names = table.column_names
        text_col = "task" if "task" in names else next((c for c in names if c != "task_index"), None)
        if text_col is None or "task_index" not in names:
            raise DatasetError(f"{self.root / L.TASKS_PATH}: expected task text and task_index columns, got {names}")
        order = dict(zip(table.column("task_index").to_pylist(), table.column(text_col).to_pylist()))
        return [order[i] for i in sorted(order)]

    def data_file(self, ep: dict) -> Path:
        return self.root / self.info["data_path"].format(chunk_index=ep["data/chunk_index"],
                                                         file_index=ep["data/file_index"])

    def video_file(self, ep: dict, key: str) -> Path:
        return self.root / self.info["video_path"].format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                                          file_index=ep[f"videos/{key}/file_index"])

    def _table(self, path: Path) -> dict:
        if path not in self._tables:
            self._tables.clear()  # one data file in memory at a time: episodes come in file order
            try:
                table = self.pq.read_table(path)
            except (OSError, ValueError) as exc:
                raise DatasetError(f"{path}: unreadable parquet ({exc})") from None
            self._tables[path] = {"table": table, "episode_index": table.column("episode_index").to_numpy()}
        return self._tables[path]

    def columns(self, ep: dict, names) -> dict[str, np.ndarray]:
        """The episode's frames of each named column, in frame order: (T,) or (T, D)."""
        cached = self._table(self.data_file(ep))
        rows = np.flatnonzero(cached["episode_index"] == ep["episode_index"])
        table = cached["table"].take(rows)
        order = np.argsort(table.column("frame_index").to_numpy(), kind="stable")
        if len(rows) != ep["length"]:
            raise DatasetError(f"{self.data_file(ep)}: episode {ep['episode_index']} has {len(rows)} frames, "
                               f"meta/episodes says {ep['length']}")
        out = {}
        for name in names:
            if name not in table.column_names:
                raise DatasetError(f"{self.data_file(ep)}: no column {name!r}, which info.json lists")
            out[name] = _column_numpy(table.column(name))[order]
        return out

    def frames(self, ep: dict, key: str) -> np.ndarray:
        h, w = self.features[key]["shape"][:2]
        if self.features[key].get("names") and self.features[key]["names"][0] == "channels":
            h, w = self.features[key]["shape"][1:3]
        start = float(ep[f"videos/{key}/from_timestamp"])
        return decode_frames(self.video_file(ep, key), start, int(ep["length"]), h, w)


def _column_numpy(column) -> np.ndarray:
    import pyarrow as pa

    arr = column.combine_chunks()
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type):
        n = len(arr)
        values = arr.flatten().to_numpy(zero_copy_only=False)
        return values.reshape(n, -1)
    return arr.to_numpy(zero_copy_only=False)


def import_lerobot(folder, output, task: str | None = None, progress=None) -> dict:
    output = Path(output)
    if output.exists():
        raise DatasetError(f"{output}: already exists; the import writes a new file (remove it or pick another name)")
    src = LeRobotFolder(folder)
    if (src.root / L.TAKEOVER_FILE).is_file():
        return _import_own(src, output, progress)
    return _import_foreign(src, output, task, progress)


# --- a folder this project exported ---------------------------------------------------------------------
def _import_own(src: LeRobotFolder, output: Path, progress) -> dict:
    try:
        meta = json.loads((src.root / L.TAKEOVER_FILE).read_text())
        rows = src.pq.read_table(src.root / L.TAKEOVER_EPISODES).to_pylist()
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{src.root}: meta/takeover is unreadable ({exc})") from None
    if meta.get("format") != L.TAKEOVER_FORMAT:
        raise DatasetError(f"{src.root}: meta/takeover format {meta.get('format')!r}, this reads {L.TAKEOVER_FORMAT}")
    lay = meta["layout"]
    by_index = {ep["episode_index"]: ep for ep in src.episodes}
    if sorted(by_index) != sorted(r["episode_index"] for r in rows):
        raise DatasetError(f"{src.root}: meta/takeover/episodes.parquet and meta/episodes list different episodes")
    rows.sort(key=lambda r: r["episode_index"])
    feature_names = [k for k in src.features if src.features[k]["dtype"] != "video"]

    def episodes():
        for row in rows:
            ep = by_index[row["episode_index"]]
            yield row["demo"], _own_episode(src, ep, row, lay, feature_names), row

    def build(f):
        data = f.create_group("data")
        for key, value in L.decode_attrs(meta["data_attrs"]).items():
            data.attrs[key] = value
        for name, episode, row in episodes():
            group = data.create_group(name)
            write_episode(group, episode)
            for key in list(group.attrs):
                del group.attrs[key]
            for key, value in L.decode_attrs(json.loads(row["attrs"])).items():
                group.attrs[key] = value
            if row["model_file"] is not None:
                group.attrs["model_file"] = row["model_file"]
            if progress is not None:
                progress(name)
        _write_masks(f, meta["masks"], meta.get("mask_attrs", {}))

    output.parent.mkdir(parents=True, exist_ok=True)
    create_atomically(output, build)
    return {"output": str(output), "demos": len(rows), "frames": sum(ep["length"] for ep in src.episodes),
            "exact": True}


def _own_episode(src: LeRobotFolder, ep: dict, row: dict, lay: dict, feature_names) -> Episode:
    T = int(ep["length"])
    cols = src.columns(ep, feature_names)
    obs = {}
    if lay["state_parts"]:
        start = 0
        for key, shape in lay["state_parts"]:
            size = int(np.prod(shape)) if shape else 1
            obs[key] = cols[L.STATE][:, start:start + size].reshape((T, *shape))
            start += size
    if lay["env_state"] is not None:
        key, shape = lay["env_state"]
        obs[key] = cols[L.ENV_STATE].reshape((T, *shape))
    for feature, (key, shape) in lay["cameras"].items():
        obs[key] = src.frames(ep, feature)
    for feature, (key, dtype, shape) in lay["other_obs"].items():
        obs[key] = cols[feature].astype(dtype).reshape((T, *shape))
    extras = {}
    for name in json.loads(row["extras"]):
        if name == "interventions":
            extras[name] = cols[L.INTERVENTION].reshape(T).astype(np.uint8)
        else:
            _, dtype, shape = lay["extras"][f"{L.EXTRA}{name}"]
            extras[name] = cols[f"{L.EXTRA}{name}"].astype(dtype).reshape((T, *shape))
    next_obs = {}
    if row["has_next_obs"] and row["next_obs"]:
        with np.load(io.BytesIO(row["next_obs"])) as blob:
            for item in blob.files:
                how, key = item.split("/", 1)
                next_obs[key] = blob[item] if how == "full" else np.concatenate([obs[key][1:], blob[item]])
        next_obs = {k: next_obs[k] for k in obs if k in next_obs}
    states = cols[f"{L.EXTRA}states"].reshape(T, -1) if lay["state_dim"] else np.zeros((T, 0))
    return Episode(actions=cols[L.ACTION].reshape(T, -1).astype(np.float32), states=states.astype(np.float64),
                   obs=obs, next_obs=next_obs, rewards=cols[L.REWARD].reshape(T).astype(np.float32),
                   dones=cols[L.DONE].reshape(T).astype(np.uint8), extras=extras, model_file=row["model_file"] or "")


def _write_masks(f, masks: dict, mask_attrs: dict):
    if not masks:
        return
    group = f.create_group("mask")
    for split, names in masks.items():
        ds = group.create_dataset(split, data=np.array([n.encode("utf-8") for n in names], dtype="S"))
        for key, value in L.decode_attrs(mask_attrs.get(split, {})).items():
            ds.attrs[key] = value


# --- another LeRobot dataset ---------------------------------------------------------------------------
def _env_observation(spec):
    """One observation of the task's environment (keys and shapes), its action size and object layout."""
    from takeover.sim.env import make_env
    from takeover.sim.errors import SimError

    try:
        env = make_env(spec, seed=0)
    except SimError as exc:
        raise DatasetError(f"cannot build a {spec.task} environment to map the observations onto ({exc})") from None
    try:
        obs = env.reset(seed=0)
        return obs, int(env.action_dim), env.object_layout()
    finally:
        env.close()


def _map_foreign(src: LeRobotFolder, task: str | None):
    """(spec, mapping, object layout): mapping is [(feature, obs key, shape)] for observation.state's parts,
    environment_state and cameras. Raises DatasetError naming what does not fit."""
    from takeover.sim.errors import SimError
    from takeover.sim.spec import EnvSpec
    from takeover.sim.tasks import TASKS

    where = src.root
    if task is None:
        raise DatasetError(f"{where}: a LeRobot dataset without takeover metadata; say which takeover task its "
                           f"observations belong to with --task ({', '.join(TASKS)})")
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    feats = src.features
    if L.ACTION not in feats:
        raise DatasetError(f"{where}: has no 'action' feature; nothing to imitate")
    cameras = {}
    for key in src.video_keys + [k for k, f in feats.items() if f.get("dtype") == "image"]:
        if not key.startswith(L.IMAGES):
            raise DatasetError(f"{where}: camera feature {key!r} is not observation.images.<camera>")
        if feats[key].get("dtype") == "image":
            raise DatasetError(f"{where}: feature {key} stores images as files (dtype image); only video features "
                               f"are read")
        shape = list(feats[key]["shape"])
        if (feats[key].get("names") or [None])[0] == "channels":
            shape = shape[1:] + shape[:1]
        if len(shape) != 3 or shape[2] != 3:
            raise DatasetError(f"{where}: camera {key} has shape {feats[key]['shape']}, expected RGB frames")
        cameras[key] = (key[len(L.IMAGES):] + "_image", tuple(shape))
    sizes = {tuple(s[:2]) for _, s in cameras.values()}
    if len(sizes) > 1:
        raise DatasetError(f"{where}: cameras of different sizes {sorted(sizes)}; takeover renders every camera at "
                           f"one size")
    h, w = sizes.pop() if sizes else (84, 84)
    try:
        spec = EnvSpec(task=task, control_freq=src.fps, camera_names=tuple(k[len(L.IMAGES):] for k in cameras),
                       camera_height=int(h), camera_width=int(w))
    except SimError as exc:
        raise DatasetError(f"{where}: cannot map onto {task} ({exc})") from None
    env_obs, action_dim, object_layout = _env_observation(spec)
    have = int(np.prod(feats[L.ACTION]["shape"]))
    if have != action_dim:
        raise DatasetError(f"{where}: action has {have} values, a {task} action has {action_dim}")
    mapping = []
    if L.STATE in feats:
        names = feats[L.STATE].get("names")
        if isinstance(names, dict):
            names = next(iter(names.values()), None)
        runs = L.keys_from_names(list(names)) if names else None
        if not runs:
            raise DatasetError(f"{where}: observation.state has no per-entry names (key.part) to map onto {task}'s "
                               f"observations")
        start = 0
        for key, size in runs:
            if key not in env_obs or key == L.ENV_STATE_KEY or np.asarray(env_obs[key]).ndim != 1:
                known = ", ".join(k for k, v in env_obs.items() if np.asarray(v).ndim == 1 and k != L.ENV_STATE_KEY)
                raise DatasetError(f"{where}: observation.state part {key!r} is not a {task} observation ({known})")
            if np.asarray(env_obs[key]).size != size:
                raise DatasetError(f"{where}: observation.state part {key!r} has {size} values, {task}'s has "
                                   f"{np.asarray(env_obs[key]).size}")
            mapping.append((L.STATE, key, (size,), slice(start, start + size)))
            start += size
    if L.ENV_STATE in feats:
        size = int(np.prod(feats[L.ENV_STATE]["shape"]))
        want = np.asarray(env_obs.get(L.ENV_STATE_KEY, [])).size
        if size != want:
            raise DatasetError(f"{where}: observation.environment_state has {size} values, {task}'s object vector "
                               f"{want}")
        mapping.append((L.ENV_STATE, L.ENV_STATE_KEY, (size,), slice(0, size)))
    for feature, (key, shape) in cameras.items():
        if key not in env_obs:
            raise DatasetError(f"{where}: camera {feature} is not a {task} camera")
    if not mapping and not cameras:
        raise DatasetError(f"{where}: no observation.state, observation.environment_state or camera to map onto {task}")
    return spec, mapping, cameras, object_layout


def _import_foreign(src: LeRobotFolder, output: Path, task: str | None, progress) -> dict:
    spec, mapping, cameras, object_layout = _map_foreign(src, task)
    log.warning("%s: no simulator states (a LeRobot dataset from elsewhere): imported as observations and actions "
                "for training; replay, relabelling, DAgger from recorded states and generation need states",
                src.root)
    obs_keys = [key for _, key, _, _ in mapping] + [key for key, _ in cameras.values()]
    wanted = sorted({f for f, _, _, _ in mapping} | {L.ACTION} | {f for f in (L.REWARD, L.DONE, L.SUCCESS)
                                                                 if f in src.features})
    splits = _split_ranges(src)

    def build(f):
        data = f.create_group("data")
        for key, value in data_attrs(spec).items():
            data.attrs[key] = value
        data.attrs[OBS_KEYS_ATTR] = json.dumps(obs_keys)
        data.attrs[ACTION_DIM_ATTR] = int(np.prod(src.features[L.ACTION]["shape"]))
        if object_layout is not None and any(key == L.ENV_STATE_KEY for _, key, _, _ in mapping):
            data.attrs[OBJECT_LAYOUT_ATTR] = json.dumps(object_layout.to_dict())
        total = 0
        for ep in src.episodes:
            T = int(ep["length"])
            cols = src.columns(ep, wanted)
            obs = {key: cols[feature][:, part].reshape((T, *shape)).astype(np.float32)
                   for feature, key, shape, part in mapping}
            for feature, (key, shape) in cameras.items():
                obs[key] = src.frames(ep, feature)
            next_obs = {k: np.concatenate([v[1:], v[-1:]]) for k, v in obs.items()}  # the last one is not recorded
            dones = (cols[L.DONE].reshape(T) if L.DONE in cols else np.arange(T) == T - 1).astype(np.uint8)
            success = bool(cols[L.SUCCESS].any()) if L.SUCCESS in cols else False
            rewards = cols[L.REWARD].reshape(T).astype(np.float32) if L.REWARD in cols else np.zeros(T, np.float32)
            tasks = ep.get("tasks") or []
            episode = Episode(actions=cols[L.ACTION].reshape(T, -1).astype(np.float32), states=np.zeros((T, 0)),
                              obs=obs, next_obs=next_obs, rewards=rewards, dones=dones,
                              attrs={"source": "lerobot", "success": success, "seed": -1,
                                     "lerobot_episode_index": int(ep["episode_index"]),
                                     "lerobot_task": str(tasks[0]) if tasks else ""})
            write_episode(data.create_group(f"demo_{ep['episode_index']}"), episode)
            total += T
            if progress is not None:
                progress(ep["episode_index"])
        data.attrs["total"] = total
        _write_masks(f, splits, {})

    output.parent.mkdir(parents=True, exist_ok=True)
    create_atomically(output, build)
    return {"output": str(output), "demos": len(src.episodes), "frames": sum(int(e["length"]) for e in src.episodes),
            "exact": False, "task": spec.task}


def _split_ranges(src: LeRobotFolder) -> dict:
    out = {}
    indices = {int(e["episode_index"]) for e in src.episodes}
    for split, text in (src.info.get("splits") or {}).items():
        try:
            a, b = (int(x) for x in str(text).split(":"))
        except ValueError:
            log.warning("%s: split %s = %r is not a start:end range; skipped", src.root, split, text)
            continue
        out[split] = [f"demo_{i}" for i in range(a, b) if i in indices]
    return out
