"""Camera frames decoded once into a memory-mapped uint8 file, so training is not bound by gzip.

Demo files store each camera frame as its own gzip chunk (schema.py), which costs tens of ms per
episode to decode. `cached_frames` decodes a key's frames of a list of demos once into
`<cache dir>/<hash>.u8` (raw (N, H, W, C) uint8, written to a temp name, then renamed) and maps it
on every later use: by the validation split, by the next seed of the same study, by a resumed run.
The hash covers the file's identity (resolved path, size, modification time, and its journal's),
the key, the demos and the frame shape: a changed file gets a new entry. The cache folder is
$TAKEOVER_FRAME_CACHE, else ~/.cache/takeover/frames; entries are plain files, safe to delete.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .storage import journal_dir

log = logging.getLogger(__name__)

CACHE_ENV = "TAKEOVER_FRAME_CACHE"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "takeover" / "frames")


def _file_identity(path: Path) -> list:
    parts = []
    for p in [path] + (sorted(journal_dir(path).iterdir()) if journal_dir(path).is_dir() else []):
        if p.name == "lock":
            continue
        st = p.stat()
        parts.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return parts


def cache_path(path, key: str, demos: list[str], frame_shape: tuple[int, ...], cache_dir=None) -> Path:
    identity = json.dumps({"file": _file_identity(Path(path)), "key": key, "demos": list(demos),
                           "shape": list(frame_shape)}, sort_keys=True)
    name = hashlib.sha1(identity.encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / f"{name}.u8"


def cached_frames(reader, key: str, demos: list[str], lengths, cache_dir=None) -> np.ndarray:
    """(sum(lengths), H, W, C) uint8 frames of obs/`key` over `demos`, memory-mapped from the cache
    (built on first use). A copy-on-write mapping: writing to it never reaches the file."""
    lengths = [int(n) for n in lengths]
    first = reader.group(demos[0])["obs"][key]
    frame_shape = tuple(int(s) for s in first.shape[1:])
    total = sum(lengths)
    path = cache_path(reader.path, key, demos, frame_shape, cache_dir)
    if not path.is_file() or path.stat().st_size != total * int(np.prod(frame_shape)):
        _build(reader, key, demos, lengths, frame_shape, path)
    return np.memmap(path, dtype=np.uint8, mode="c", shape=(total,) + frame_shape)


def _build(reader, key, demos, lengths, frame_shape, path: Path):
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the frame cache folder {path.parent} ({exc.strerror}); set "
                           f"{CACHE_ENV} to a writable folder") from None
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=(sum(lengths),) + frame_shape)
    try:
        start = 0
        for name, T in zip(demos, lengths):
            data = reader.group(name)["obs"][key]
            if len(data) != T:
                raise DatasetError(f"{reader.path}, {name}, key obs/{key}: has {len(data)} steps, expected {T} "
                                   f"(the length of actions)")
            if tuple(data.shape[1:]) != frame_shape:
                raise DatasetError(f"{reader.path}, {name}, key obs/{key}: frames are {data.shape[1:]}, "
                                   f"{demos[0]}'s are {frame_shape}")
            data.read_direct(out, dest_sel=np.s_[start:start + T])
            start += T
        out.flush()
        del out
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("decoded %d %s frames of %s into %s", sum(lengths), key, reader.path, path)
