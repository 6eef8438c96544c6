"""DemoWriter: append finished episodes to a demonstration file so that a kill at any instant loses
none that `save()` returned for.

    with DemoWriter("demos.hdf5", spec) as w:          # append=True to add to an existing file
        name = w.save(episode)                          # durable when it returns ("demo_0", ...)

A new file also records the names of the parts of the `object` observation (`object_layout`, or that
of this spec's environment when this process has built one), so training never builds a simulator.

`save` writes the episode durably to the journal (journal.py), one small file per episode with camera
frames raw, so a save costs one episode whatever the size of the main file. A background thread then
compresses the episode's frames in the journal, and folds the journal into the main file whenever
`journal_limit` episodes wait (a fold copies the main file; readers open every journal file, so the
journal must not grow without bound); `close()` folds the rest. `fold_every=N` instead folds in the
foreground after every N saves (each such save then costs a copy of the file).

DemoReader (and so training and `takeover data info`) reads journal episodes as part of the file;
robomimic, which opens the main file only, sees them once they are folded (`fold()`, or close). The
writer never keeps the main file open, so robomimic can read it (`swmr=True`) while we record.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py

from takeover.sim.env import known_object_layout
from takeover.sim.errors import SimError
from takeover.sim.observations import ObsLayout
from takeover.sim.spec import EnvSpec

from .background import SerialWorker
from .episode import Episode
from .errors import DatasetError
from .journal import compress_journal_episode, fold, pending_files, write_journal_episode
from .schema import ACTION_DIM_ATTR, OBJECT_LAYOUT_ATTR, OBS_KEYS_ATTR, check_episode, data_attrs, demo_index, from_attr
from .storage import WriterLock, clean_temp_files, create_atomically, open_h5

log = logging.getLogger(__name__)

# spec fields that change what an action or an observation means: appending across them is refused
_MUST_MATCH = ("task", "robots", "controller", "control_freq", "obs_keys", "camera_names")


def spec_conflicts(stored: EnvSpec, wanted: EnvSpec) -> list[str]:
    out = [f"{f}: file has {getattr(stored, f)!r}, writer has {getattr(wanted, f)!r}"
           for f in _MUST_MATCH if getattr(stored, f) != getattr(wanted, f)]
    if stored.camera_names and (stored.camera_height, stored.camera_width) != (wanted.camera_height, wanted.camera_width):
        out.append(f"camera size: file has {stored.camera_height}x{stored.camera_width}, "
                   f"writer has {wanted.camera_height}x{wanted.camera_width}")
    return out


class DemoWriter:
    def __init__(self, path, spec: EnvSpec, *, append: bool = False, fold_every: int | None = None,
                 journal_limit: int = 256, object_layout: ObsLayout | None = None):
        self.path = Path(path)
        self.spec = spec
        self.object_layout = object_layout if object_layout is not None else known_object_layout(spec)
        self.fold_every = None if fold_every is None else int(fold_every)
        self.journal_limit = int(journal_limit)
        if self.fold_every is not None and self.fold_every < 1:
            raise DatasetError(f"fold_every must be >= 1, got {fold_every}")
        if self.journal_limit < 1:
            raise DatasetError(f"journal_limit must be >= 1, got {journal_limit}")
        if self.path.exists() and not append:
            raise DatasetError(f"{self.path}: already exists; append to it (append=True, CLI --append) or choose a new file")
        if self.path.is_dir():
            raise DatasetError(f"{self.path}: is a folder, expected a demonstration file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.path)
        try:
            clean_temp_files(self.path)
            if self.path.exists():
                self._check_append_target()
                recovered = fold(self.path)
                if recovered:
                    log.warning("%s: recovered %d episode(s) a previous writer had not folded", self.path, len(recovered))
            else:
                if pending_files(self.path):
                    raise DatasetError(f"{self.path}: no such file, but its journal holds episodes; restore the file "
                                       f"or move the journal away")
                create_atomically(self.path, self._build_empty)
            self._load_state()
        except BaseException:
            self._lock.release(remove_journal_if_empty=False)
            raise
        self._unfolded: list[Path] = []  # journal files saved here that no fold has been given yet
        self._worker = SerialWorker(f"DemoWriter {self.path.name}")
        self._closed = False

    # --- setup ------------------------------------------------------------------------------------
    def _build_empty(self, f: h5py.File):
        data = f.create_group("data")
        for key, value in data_attrs(self.spec).items():
            data.attrs[key] = value
        # the parts of `object`, from the recording environment (files without it: DemoReader.object_layout)
        if self.object_layout is not None:
            data.attrs[OBJECT_LAYOUT_ATTR] = json.dumps(self.object_layout.to_dict())

    def _check_append_target(self):
        with open_h5(self.path) as f:
            if "data" not in f:
                raise DatasetError(f"{self.path}: has no 'data' group; it is not a demonstration file")
            text = f["data"].attrs.get("takeover_spec")
            if text is None:
                raise DatasetError(f"{self.path}: has no takeover_spec attribute (a robomimic/robosuite file?); "
                                   f"import it first (takeover data import-robosuite) or write to a new file")
            try:
                stored = EnvSpec.from_json(from_attr(text))
            except SimError as exc:
                raise DatasetError(f"{self.path}: takeover_spec attribute is unreadable ({exc})") from None
        conflicts = spec_conflicts(stored, self.spec)
        if conflicts:
            raise DatasetError(f"{self.path}: cannot append, the file was recorded with another environment ("
                               + "; ".join(conflicts) + ")")
        if stored != self.spec:
            log.info("%s: appending with a spec that differs in minor fields from the stored one", self.path)

    def _load_state(self):
        self._obs_keys = self._action_dim = None
        self._next_index, self._max_seed, self._count = 0, -1, 0
        with open_h5(self.path) as f:
            data = f["data"]
            if OBS_KEYS_ATTR in data.attrs:
                self._obs_keys = json.loads(from_attr(data.attrs[OBS_KEYS_ATTR]))
            if ACTION_DIM_ATTR in data.attrs:
                self._action_dim = int(data.attrs[ACTION_DIM_ATTR])
            for name, group in data.items():
                if not isinstance(group, h5py.Group):
                    continue
                self._count += 1
                self._next_index = max(self._next_index, demo_index(name) + 1)
                seed = from_attr(group.attrs.get("seed", -1))
                if isinstance(seed, int):
                    self._max_seed = max(self._max_seed, seed)
                if self._action_dim is None and "actions" in group:
                    self._action_dim = int(group["actions"].shape[1])
                if self._obs_keys is None and "obs" in group:
                    self._obs_keys = sorted(group["obs"].keys())

    # --- API --------------------------------------------------------------------------------------
    @property
    def next_seed(self) -> int:
        """One more than the largest seed stored so far (0 for an empty file)."""
        return self._max_seed + 1

    def __len__(self) -> int:
        """Episodes in the file, saved ones included."""
        return self._count

    @property
    def pending(self) -> int:
        """Saved episodes still in the journal (durable, not yet folded into the main file)."""
        return len(pending_files(self.path))

    def save(self, episode: Episode) -> str:
        """Store `episode`; it is durable when this returns. Returns its demo name."""
        if self._closed:
            raise DatasetError(f"{self.path}: writer is closed")
        name = f"demo_{self._next_index}"
        check_episode(episode, f"{self.path}, new episode {name}", self._action_dim, self._obs_keys)
        obs_keys = self._obs_keys if self._obs_keys is not None else list(episode.obs)
        jpath = write_journal_episode(self.path, episode, name, self._next_index, obs_keys, episode.action_dim)
        self._unfolded.append(jpath)
        self._obs_keys, self._action_dim = obs_keys, episode.action_dim
        self._next_index += 1
        self._count += 1
        seed = episode.attrs.get("seed")
        if seed is not None and not isinstance(seed, (bool, float, str)):
            try:
                self._max_seed = max(self._max_seed, int(seed))
            except (TypeError, ValueError):
                pass
        if self.fold_every is not None:
            if len(self._unfolded) >= self.fold_every:
                self.fold()
        else:
            self._worker.submit(self._compress, jpath)
            if len(self._unfolded) >= self.journal_limit:
                self._worker.submit(self._fold_in_background, self._unfolded)
                self._unfolded = []
        return name

    def fold(self):
        """Fold the journal into the main file now (after the background jobs already given)."""
        self._worker.wait()
        fold(self.path)
        self._unfolded = []

    # --- background jobs (SerialWorker: one at a time, in order) ------------------------------------
    # Each is kill-safe on its own terms (journal.py): a compressed journal file replaces the raw one by
    # rename, and a background fold is a fold of a fixed list of journal files, which saves meanwhile
    # never touch. A failure loses nothing: the files stay in the journal until the fold at close.
    def _compress(self, jpath: Path):
        try:
            compress_journal_episode(jpath)
        except Exception as exc:
            log.error("%s: compressing journal episode %s failed (%s); the fold compresses it", self.path,
                      jpath.name, exc)

    def _fold_in_background(self, files: list[Path]):
        try:
            fold(self.path, files)
        except Exception as exc:
            log.error("%s: background fold failed (%s); its %d episode(s) stay in the journal until close",
                      self.path, exc, len(files))

    def close(self):
        if self._closed:
            return
        try:
            self.fold()
        finally:
            self._worker.stop()
            self._closed = True
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
