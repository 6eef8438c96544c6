"""DemoReader: read a demonstration file (ours, robomimic's) without ever modifying it.

    with DemoReader("demos.hdf5") as r:
        r.spec, r.demos, r.obs_keys, r.action_dim, r.splits, r.object_layout
        ep = r.episode("demo_0")                # validated: lengths, action size, finite values

Journal episodes (saved by a writer that is still recording, or was killed before folding them) are
read too, read-only, as if already folded; `pending` says how many there are. A writer folds them when
it closes; `takeover data recover FILE` folds what a killed writer left.
`object_layout` names the parts of the `object` observation vector. Files store it when recorded;
for older files it is derived from the spec's environment, built once per process (the file is not
changed: readers never write).
Opening checks the structure of every demo (metadata only); values (NaN/inf) are checked as each
episode is loaded; `validate()` loads and checks all of them.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py

from takeover.sim.errors import SimError
from takeover.sim.observations import ObsLayout
from takeover.sim.spec import EnvSpec

from .episode import Episode
from .errors import DatasetError
from .journal import NAME_ATTR, pending_files
from .schema import (ACTION_DIM_ATTR, EPISODE_ID_ATTR, OBS_KEYS_ATTR, check_episode, check_group_shapes, demo_index,
                     first_bad_step, from_attr, object_layout_from_attrs, read_attrs, read_episode, sort_demos)
from .storage import open_h5

log = logging.getLogger(__name__)


_WARNED: set[tuple[str, str]] = set()


def _warn_once(path, message: str, *args):
    """A file's attribute warnings once per process: training and evaluation reopen a file many times."""
    key = (str(Path(path).resolve()), message)
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message, path, *args)


def spec_from_env_args(env_args: dict) -> EnvSpec | None:
    """Best-effort EnvSpec for a file that only has robomimic's env_args."""
    from takeover.sim.tasks import TASKS

    name = env_args.get("env_name")
    kwargs = env_args.get("env_kwargs", {})
    for task, info in TASKS.items():
        if task == name or (info.robosuite_env == name and all(kwargs.get(k) == v for k, v in info.env_kwargs.items())):
            robots = kwargs.get("robots", ["Panda"])
            try:
                return EnvSpec(task=task, robots=tuple([robots] if isinstance(robots, str) else robots),
                               control_freq=int(kwargs.get("control_freq", 20)))
            except SimError:
                return None
    return None


def derive_object_layout(spec: EnvSpec) -> ObsLayout:
    """The `object` part layout of a file recorded before files stored it: from the spec's environment
    (built once per process, cached by takeover.sim)."""
    from takeover.sim.env import object_layout

    try:
        return object_layout(spec)
    except SimError as exc:
        raise DatasetError(f"cannot derive the object layout of a {spec.task} file ({exc})") from None
    except ImportError as exc:
        raise DatasetError(f"the file predates stored object layouts and deriving one needs the simulator "
                           f"({exc.name} is not installed)") from None


class DemoReader:
    def __init__(self, path):
        self.path = Path(path)
        self._journal_files: list[h5py.File] = []
        for attempt in range(5):
            if self._open():
                break
            self.close()  # a writer folded the journal between our looks: take a fresh snapshot
        else:
            raise DatasetError(f"{self.path}: the file kept changing while being opened (a writer is folding); retry")
        try:
            self._index()
        except BaseException:
            self.close()
            raise

    # --- opening ----------------------------------------------------------------------------------
    def _open(self) -> bool:
        listed = pending_files(self.path)  # listed before the main file is opened (see journal.py)
        self._file = open_h5(self.path)
        self._journal_files = []
        for jpath in listed:
            try:
                self._journal_files.append(h5py.File(jpath, "r"))
            except FileNotFoundError:
                return False
            except OSError as exc:
                log.error("%s: journal episode %s is unreadable (%s); skipped", self.path, jpath.name, exc)
        return True

    def _index(self):
        f = self._file
        if "data" not in f or not isinstance(f["data"], h5py.Group):
            raise DatasetError(f"{self.path}: no 'data' group; expected a demonstration file (data/demo_<i>/...)")
        data = f["data"]
        self.data_attrs = read_attrs(data)
        self._groups: dict[str, h5py.Group] = {}
        ids = set()
        for name, group in data.items():
            if isinstance(group, h5py.Group):
                self._groups[name] = group
                ids.add(group.attrs.get(EPISODE_ID_ATTR))
        self.pending = 0
        for j in self._journal_files:
            if j.attrs.get(EPISODE_ID_ATTR) in ids:
                continue  # already folded; the writer died before deleting the journal file
            name = str(from_attr(j.attrs[NAME_ATTR]))
            if name in self._groups:
                name = f"demo_{max(demo_index(n) for n in self._groups) + 1}"
            self._groups[name] = j["demo"]
            self.pending += 1
            for attr in (OBS_KEYS_ATTR, ACTION_DIM_ATTR):
                self.data_attrs.setdefault(attr, from_attr(j.attrs[attr]))
        if self.pending:
            log.info("%s: %d saved episode(s) are still in the journal (read them too); their writer folds them "
                     "when it closes, `takeover data recover %s` if it was killed", self.path, self.pending, self.path)
        self.demos = sort_demos(self._groups)
        self.spec = self._read_spec()
        self.action_dim = self._read_action_dim()
        for name in self.demos:
            check_group_shapes(self._groups[name], f"{self.path}, {name}", self.action_dim)
        self.obs_keys = self._read_obs_keys()

    def _read_spec(self) -> EnvSpec | None:
        text = self.data_attrs.get("takeover_spec")
        if text is not None:
            try:
                spec = EnvSpec.from_json(text)
            except SimError as exc:
                raise DatasetError(f"{self.path}: data attribute takeover_spec is invalid ({exc})") from None
            self._check_env_args(spec)
            return spec
        try:
            return spec_from_env_args(json.loads(self.data_attrs.get("env_args", "{}")))
        except (json.JSONDecodeError, TypeError, AttributeError):
            return None

    def _check_env_args(self, spec: EnvSpec):
        """robomimic's tools build the environment from env_args, we from takeover_spec: say when they differ."""
        text = self.data_attrs.get("env_args")
        if text is None:
            return
        try:
            env_args = json.loads(text)
            kwargs = env_args.get("env_kwargs", {})
            robots = kwargs.get("robots", ["Panda"])
            robots = (robots,) if isinstance(robots, str) else tuple(robots)
            arm = (kwargs.get("controller_configs") or {}).get("body_parts", {}).get("right", {})
        except (json.JSONDecodeError, TypeError, AttributeError):
            _warn_once(self.path, "%s: data attribute env_args is not readable JSON; robomimic's tools cannot rebuild "
                       "the environment from this file (takeover uses takeover_spec)")
            return
        from takeover.sim.tasks import TASKS

        task = TASKS[spec.task]
        differ = [what for what, same in (
            ("environment", env_args.get("env_name") == task.robosuite_env),
            ("robots", robots == tuple(spec.robots)),
            ("control_freq", int(kwargs.get("control_freq", spec.control_freq)) == spec.control_freq),
            ("controller", arm.get("type", spec.controller) == spec.controller),
            ("task arguments", all(kwargs.get(k, v) == v for k, v in task.env_kwargs.items()))) if not same]
        if differ:
            _warn_once(self.path, "%s: env_args and takeover_spec disagree on %s; robomimic's tools would build "
                       "another environment than takeover does", ", ".join(differ))

    def _read_action_dim(self) -> int | None:
        if ACTION_DIM_ATTR in self.data_attrs:
            return int(self.data_attrs[ACTION_DIM_ATTR])
        for name in self.demos:
            shape = self._groups[name]["actions"].shape if "actions" in self._groups[name] else ()
            if len(shape) == 2:
                return int(shape[1])
        return None

    def _read_obs_keys(self) -> list[str]:
        if OBS_KEYS_ATTR in self.data_attrs:
            return list(json.loads(self.data_attrs[OBS_KEYS_ATTR]))
        for name in self.demos:
            if "obs" in self._groups[name]:
                return sorted(self._groups[name]["obs"].keys())
        return []

    # --- API --------------------------------------------------------------------------------------
    @property
    def object_layout(self) -> ObsLayout | None:
        """Names and shapes of the parts of the `object` observation; None when the file has no
        `object` key, or no stored layout and no environment spec to derive it from."""
        stored = object_layout_from_attrs(self.data_attrs, self.path)
        if stored is not None or self.spec is None or "object" not in self.obs_keys:
            return stored
        log.info("%s: recorded without its object layout; deriving it from a %s environment", self.path, self.spec.task)
        return derive_object_layout(self.spec)

    def __len__(self) -> int:
        return len(self.demos)

    def __contains__(self, name) -> bool:
        return name in self._groups

    def group(self, name: str) -> h5py.Group:
        """The HDF5 group of demo `name` (a saved demo or one folded in from the journal)."""
        if name not in self._groups:
            shown = ", ".join(self.demos[:5]) + (" ..." if len(self.demos) > 5 else "")
            raise DatasetError(f"{self.path}: no demo {name!r}; it has {len(self.demos)} demos ({shown or 'none'})")
        return self._groups[name]

    def num_samples(self, name: str) -> int:
        return int(self.group(name)["actions"].shape[0])

    def attrs(self, name: str) -> dict:
        """The demo's attributes (source, success, seed, num_samples, ...) without model_file."""
        out = read_attrs(self.group(name))
        out.pop("model_file", None)
        out.setdefault("num_samples", self.num_samples(name))
        return out

    def episode(self, name: str, check: bool = True) -> Episode:
        group = self.group(name)
        where = f"{self.path}, {name}"
        try:
            episode = read_episode(group, self.obs_keys)
        except (OSError, RuntimeError, KeyError) as exc:
            raise DatasetError(f"{where}: data cannot be read, the file is truncated or corrupt ({exc})") from None
        if check:
            check_episode(episode, where, self.action_dim)
        return episode

    def episodes(self, names=None):
        for name in self.demos if names is None else names:
            yield name, self.episode(name)

    @property
    def splits(self) -> dict[str, list[str]]:
        if "mask" not in self._file:
            return {}
        out = {}
        for split, ds in self._file["mask"].items():
            out[split] = sort_demos(from_attr(v) for v in ds[()].tolist()) if ds.shape else []
        return out

    def split_demos(self, split: str) -> list[str]:
        splits = self.splits
        if split not in splits or not splits[split]:
            have = ", ".join(f"{k} ({len(v)})" for k, v in splits.items()) or "none"
            state = "is empty" if split in splits else "does not exist"
            raise DatasetError(f"{self.path}: split {split!r} {state}; splits: {have} "
                               f"(make some with `takeover data split {self.path}`)")
        return splits[split]

    def check(self, name: str):
        """Check one demo without loading its images: every array has T steps, action-like arrays have
        the file's action size, float arrays are finite."""
        group = self.group(name)
        where = f"{self.path}, {name}"
        T = self.num_samples(name)
        found = []
        group.visititems(lambda key, obj: found.append((key, obj)) if isinstance(obj, h5py.Dataset) else None)
        try:
            for key, ds in found:
                if len(ds.shape) == 0 or ds.shape[0] != T:
                    steps = ds.shape[0] if ds.shape else "no"
                    raise DatasetError(f"{where}, key {key}: has {steps} steps, expected {T} (the length of actions)")
                if key in ("executed_actions", "policy_actions") and (len(ds.shape) != 2 or ds.shape[1] != self.action_dim):
                    raise DatasetError(f"{where}, key {key}: shape {ds.shape}, expected (T, {self.action_dim})")
                if ds.dtype.kind == "f" and key != "states" and key != "rewards":
                    step = first_bad_step(ds[()])
                    if step >= 0:
                        raise DatasetError(f"{where}, key {key}: NaN or inf at step {step} (values must be finite)")
        except OSError as exc:
            raise DatasetError(f"{where}: data cannot be read, the file is truncated or corrupt ({exc})") from None

    def validate(self, progress=None):
        """Check every demo (see `check`); raises DatasetError at the first problem."""
        for name in self.demos:
            self.check(name)
            if progress is not None:
                progress(name)

    def close(self):
        for j in self._journal_files:
            j.close()
        self._journal_files = []
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
