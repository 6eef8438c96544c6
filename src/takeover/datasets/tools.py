"""Whole-file operations: info (inspect), split (train/valid masks), merge. Inputs are never modified,
except by `split`, which edits its file on purpose by copy-on-write and an atomic rename."""
from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import logging
from pathlib import Path

import h5py
import numpy as np

from .errors import DatasetError
from .journal import fold
from .reader import DemoReader
from .schema import ACTION_DIM_ATTR, OBS_KEYS_ATTR, SUBTASK_ENDS_ATTR, sort_demos
from .storage import WriterLock, clean_temp_files, copy_on_write, create_atomically

log = logging.getLogger(__name__)


def info(path, validate: bool = True, progress=None) -> dict:
    """Summary of a demonstration file; with `validate` every demo is checked (lengths, NaN/inf)."""
    with DemoReader(path) as r:
        if validate:
            r.validate(progress)
        lengths = np.array([r.num_samples(n) for n in r.demos], dtype=np.int64)
        sources, successes = collections.Counter(), 0
        amin = amax = None
        subtask_ends = {}
        for name in r.demos:
            attrs = r.attrs(name)
            if SUBTASK_ENDS_ATTR in attrs:  # demo generation's segments (correction/segments.py)
                subtask_ends[name] = [int(e) for e in np.atleast_1d(attrs[SUBTASK_ENDS_ATTR])]
            sources[str(attrs.get("source", "unknown"))] += 1
            successes += bool(attrs.get("success", False))
            actions = r.group(name)["actions"][()]
            if len(actions):
                lo, hi = actions.min(0), actions.max(0)
                amin = lo if amin is None else np.minimum(amin, lo)
                amax = hi if amax is None else np.maximum(amax, hi)
        shapes = {}
        if r.demos and "obs" in r.group(r.demos[0]):
            obs = r.group(r.demos[0])["obs"]
            shapes = {k: list(obs[k].shape[1:]) for k in list(r.obs_keys) + sorted(set(obs) - set(r.obs_keys)) if k in obs}
        return {
            "path": str(r.path),
            "task": r.spec.task if r.spec else None,
            "format_version": r.data_attrs.get("format_version"),
            "demos": len(r.demos),
            "pending_in_journal": r.pending,
            "total_steps": int(lengths.sum()),
            "length_min": int(lengths.min()) if len(lengths) else 0,
            "length_mean": float(lengths.mean()) if len(lengths) else 0.0,
            "length_max": int(lengths.max()) if len(lengths) else 0,
            "obs_keys": shapes,
            "action_dim": r.action_dim,
            "action_min": [] if amin is None else [float(x) for x in amin],
            "action_max": [] if amax is None else [float(x) for x in amax],
            "sources": dict(sources),
            "successes": int(successes),
            "splits": {k: len(v) for k, v in r.splits.items()},
            "subtask_ends": subtask_ends,
        }


def _mask_array(names) -> np.ndarray:
    return np.array([n.encode("utf-8") for n in names], dtype="S")


def _write_masks(path: Path, masks: dict):
    """Replace the named masks (others kept); the caller holds the writer lock."""
    with copy_on_write(path) as f:
        group = f.require_group("mask")
        for name, names in masks.items():
            if name in group:
                del group[name]
            group.create_dataset(name, data=_mask_array(names))


@contextlib.contextmanager
def editing(path: Path):
    """Hold the writer lock on `path` with leftover temp files cleaned and pending journal episodes
    folded: the state every in-place edit of a demo file (masks, demo attributes) starts from."""
    lock = WriterLock(path)
    try:
        clean_temp_files(path)
        fold(path)
        yield
    finally:
        lock.release()


def add_to_split(path, split_name: str, names) -> list[str]:
    """Add demos `names` to mask `split_name` of `path` if the file has that mask (a file without
    masks trains on every demo already). Returns the mask's names afterwards ([] without the mask)."""
    path = Path(path)
    with editing(path):
        with DemoReader(path) as r:
            if split_name not in r.splits:
                return []
            missing = sorted(set(names) - set(r.demos))
            if missing:
                raise DatasetError(f"{path}: has no demo(s) {missing[:5]}; cannot add them to split {split_name!r}")
            merged = sort_demos(set(r.splits[split_name]) | set(names))
        _write_masks(path, {split_name: merged})
        return merged


def set_demo_attrs(path, values: dict) -> None:
    """Set attributes of stored demos, {demo: {attr: value}} (copy-on-write and an atomic rename, like
    `split`; pending journal episodes are folded first)."""
    from .schema import to_attr

    path = Path(path)
    with editing(path):
        with DemoReader(path) as r:
            missing = sorted(set(values) - set(r.demos))
        if missing:
            raise DatasetError(f"{path}: has no demo(s) {missing[:5]}")
        with copy_on_write(path) as f:
            for name, attrs in values.items():
                for key, value in attrs.items():
                    f["data"][name].attrs[key] = to_attr(value)


def split(path, valid_fraction: float = 0.1, seed: int = 0) -> dict[str, list[str]]:
    """Write `mask/train` and `mask/valid` (a seeded random split of the demos; other masks are kept).
    Pending journal episodes are folded first. Returns the split."""
    if not 0.0 <= valid_fraction < 1.0:
        raise DatasetError(f"valid fraction must be in [0, 1), got {valid_fraction}")
    path = Path(path)
    with DemoReader(path) as r:  # one-line errors for bad files before anything changes
        r.validate()
        demos = list(r.demos)
    if len(demos) < 2 and valid_fraction > 0:
        raise DatasetError(f"{path}: has {len(demos)} demo(s); a train/valid split needs at least 2")
    with editing(path):
        with DemoReader(path) as r:
            demos = list(r.demos)
        n_valid = int(round(len(demos) * valid_fraction))
        if valid_fraction > 0:
            n_valid = min(max(n_valid, 1), len(demos) - 1)
        order = np.random.default_rng(seed).permutation(len(demos))
        valid = sort_demos(demos[i] for i in order[:n_valid])
        train = sort_demos(demos[i] for i in order[n_valid:])
        _write_masks(path, {"train": train, "valid": valid})
    log.info("%s: %d train / %d valid demos", path, len(train), len(valid))
    return {"train": train, "valid": valid}


def merge(inputs, output, progress=None) -> dict:
    """Merge demonstration files of one task into a new file `output`: demos renumbered demo_0... in
    input order, attributes kept (plus `merged_from`), splits carried over. A demo that repeats one of an
    earlier file exactly (same seed, states and actions: files that share demonstrations) is skipped
    with a warning. Returns info-like counts (with `duplicates_skipped`)."""
    from .writer import spec_conflicts

    inputs = [Path(p) for p in inputs]
    output = Path(output)
    if not inputs:
        raise DatasetError("merge needs at least one input file")
    if output.exists():
        raise DatasetError(f"{output}: already exists; merge writes a new file (remove it or pick another name)")
    resolved = [p.resolve() for p in inputs]
    if len(set(resolved)) != len(resolved):
        raise DatasetError("the same input file is given twice; each file can be merged once")
    if output.resolve() in resolved:
        raise DatasetError(f"{output}: is also an input")
    readers = []
    try:
        for p in inputs:
            readers.append(DemoReader(p))
            readers[-1].validate()  # a bad demo is refused here, not copied into the output
        first = readers[0]
        for r in readers[1:]:
            if (first.spec is None) != (r.spec is None):
                raise DatasetError(f"{r.path}: environment metadata differs from {first.path}'s")
            if first.spec is not None:
                conflicts = spec_conflicts(first.spec, r.spec)
                if conflicts:
                    raise DatasetError(f"{r.path}: recorded with another environment than {first.path} ("
                                       + "; ".join(conflicts) + ")")
            if r.action_dim != first.action_dim:
                raise DatasetError(f"{r.path}: action size {r.action_dim}, but {first.path} has {first.action_dim}")
            if sorted(r.obs_keys) != sorted(first.obs_keys):
                raise DatasetError(f"{r.path}: observation keys {sorted(r.obs_keys)} differ from {first.path}'s "
                                   f"{sorted(first.obs_keys)}")
        counts, skipped = {}, []

        def build(f: h5py.File):
            data = f.create_group("data")
            for key, value in first._file["data"].attrs.items():
                data.attrs[key] = value
            if first.action_dim is not None:
                data.attrs[ACTION_DIM_ATTR] = int(first.action_dim)
            data.attrs[OBS_KEYS_ATTR] = json.dumps(list(first.obs_keys))
            masks: dict[str, list[str]] = collections.defaultdict(list)
            index, total = 0, 0
            earlier: dict[tuple, str] = {}  # fingerprints of the demos of the files already merged
            for r in readers:
                renamed, here = {}, {}
                for name in r.demos:
                    fingerprint = _fingerprint(r, name)
                    if fingerprint in earlier:
                        skipped.append(f"{r.path.name}:{name} = {earlier[fingerprint]}")
                        continue
                    here.setdefault(fingerprint, f"{r.path.name}:{name}")
                    new = f"demo_{index}"
                    group = r.group(name)
                    group.file.copy(group, data, name=new)
                    data[new].attrs["merged_from"] = f"{r.path.name}:{name}"
                    renamed[name] = new
                    total += r.num_samples(name)
                    index += 1
                    if progress is not None:
                        progress(new)
                for split_name, names in r.splits.items():
                    masks[split_name].extend(renamed[n] for n in names if n in renamed)
                counts[str(r.path)] = len(renamed)
                earlier.update(here)
            data.attrs["total"] = total
            for split_name, names in masks.items():
                f.require_group("mask").create_dataset(split_name, data=_mask_array(names))

        output.parent.mkdir(parents=True, exist_ok=True)
        create_atomically(output, build)
    finally:
        for r in readers:
            r.close()
    if skipped:
        log.warning("%s: skipped %d demo(s) that repeat one of an earlier file (same seed and states): %s%s", output,
                    len(skipped), ", ".join(skipped[:5]), ", ..." if len(skipped) > 5 else "")
    log.info("%s: merged %s", output, counts)
    return {"output": str(output), "demos": sum(counts.values()), "from": counts, "duplicates_skipped": skipped}


def _fingerprint(reader: DemoReader, name: str) -> tuple:
    """A demo's identity for spotting copies across files: its seed and a hash of its states and actions
    (two recordings of one seed differ in their states unless one is a copy of the other)."""
    group = reader.group(name)
    digest = hashlib.sha256()
    for key in ("states", "actions"):
        if key in group:
            digest.update(np.ascontiguousarray(group[key][()]).tobytes())
    return reader.attrs(name).get("seed"), digest.hexdigest()
