"""The journal: each finished episode is first written durably as its own small HDF5 file in
`<main>.journal/` (temp name, fsync, atomic rename, fsync of the folder), camera frames raw, so a save
costs one episode and little CPU. A journal episode may then be rewritten with its frames compressed
(the same steps; the rename replaces the raw file, so the path always holds one complete version).
Later (writer.py says when) journal episodes are folded into the main file by copy-on-write, which
costs a copy of the main file and compresses frames still raw. Folding is idempotent: every demo
carries a unique `takeover_episode_id`, and a journal episode whose id is already in the main file is
skipped (a kill between the rename of the main file and the deletion of the journal files leaves
exactly that case).

    kill before the journal rename    -> the episode was not reported saved; its temp file is removed
    kill after it, before the fold    -> the episode is in the journal; read by DemoReader, folded on recovery
    kill during a compression rewrite -> the raw journal file is intact (the copy is a temp file); same as above
    kill during the fold              -> the main file is the old one (the copy is a temp file); same as above
    kill after the main file's rename -> folded; the leftover journal file is deduplicated and deleted
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from pathlib import Path

import h5py

from .episode import Episode
from .errors import DatasetError
from .schema import (ACTION_DIM_ATTR, EPISODE_ID_ATTR, OBS_KEYS_ATTR, compressible, copy_attrs, copy_demo,
                     demo_index, write_episode)
from .storage import (TMP_MARK, WriterLock, clean_temp_files, copy_on_write, fsync_dir, fsync_file, is_temp,
                      journal_dir)

log = logging.getLogger(__name__)

NAME_ATTR = "takeover_demo_name"  # root attribute of a journal file: the demo's name in the main file
SEQ_ATTR = "takeover_seq"


def pending_files(path) -> list[Path]:
    """Journal episode files of `path` in save order (temp files excluded)."""
    jdir = journal_dir(path)
    if not jdir.is_dir():
        return []
    return sorted(p for p in jdir.glob("*.h5") if not is_temp(p))


def write_journal_episode(path, episode: Episode, name: str, seq: int, obs_keys, action_dim) -> Path:
    """Write one episode durably into the journal; when this returns the episode survives a kill."""
    jdir = journal_dir(path)
    episode_id = uuid.uuid4().hex
    final = jdir / f"{seq:08d}-{episode_id}.h5"

    def build(f):
        f.attrs[NAME_ATTR] = name
        f.attrs[SEQ_ATTR] = seq
        f.attrs[EPISODE_ID_ATTR] = episode_id
        f.attrs[OBS_KEYS_ATTR] = json.dumps(list(obs_keys))
        f.attrs[ACTION_DIM_ATTR] = int(action_dim)
        write_episode(f.create_group("demo"), episode, episode_id, compress_images=False)

    _write_durably(final, build, "")
    return final


def compress_journal_episode(jpath: Path) -> bool:
    """Replace a journal episode by a copy with its camera frames compressed. Returns False when the file
    is gone (folded meanwhile) or has nothing to compress."""
    try:
        src = h5py.File(jpath, "r")
    except FileNotFoundError:
        return False
    with src:
        raw = []
        src["demo"].visititems(lambda key, obj: raw.append(key) if isinstance(obj, h5py.Dataset)
                               and obj.compression is None and compressible(key, obj) else None)
        if not raw:
            return False

        def build(f):
            copy_attrs(src, f)
            copy_demo(src["demo"], f, "demo")

        _write_durably(jpath, build, "z")
    return True


def _write_durably(final: Path, build, tag: str):
    """Write a journal file under a temp name, fsync it, rename it to `final` (replacing any file there),
    fsync the folder: `final` is always absent or one complete file."""
    tmp = final.with_name(f".{final.name}{TMP_MARK}{tag}{os.getpid()}")
    try:
        with h5py.File(tmp, "w") as f:
            build(f)
        fsync_file(tmp)
        os.rename(tmp, final)  # POSIX: atomically replaces a file already there
        fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _free_name(data, wanted: str) -> str:
    if wanted not in data:
        return wanted
    taken = [demo_index(n) for n in data.keys()]
    return f"demo_{max(taken, default=-1) + 1}"


def fold(path, files: list[Path] | None = None) -> list[str]:
    """Fold journal episodes into the main file (copy-on-write) and delete them. Caller holds the lock.
    Returns the demo names added."""
    path = Path(path)
    files = pending_files(path) if files is None else files
    if not files:
        return []
    added, done = [], []
    with copy_on_write(path) as f:
        data = f.require_group("data")
        ids = {g.attrs.get(EPISODE_ID_ATTR) for g in data.values() if isinstance(g, h5py.Group)}
        ids.discard(None)
        for jpath in files:
            try:
                j = h5py.File(jpath, "r")
            except OSError as exc:  # cannot happen after fsync + rename short of disk damage: keep it, say so
                log.error("journal episode %s cannot be opened (%s); left in place", jpath, exc)
                continue
            with j:
                episode_id = j.attrs[EPISODE_ID_ATTR]
                if episode_id not in ids:
                    wanted = str(j.attrs[NAME_ATTR])
                    name = _free_name(data, wanted)
                    if name != wanted:
                        log.warning("%s: journal episode %s stored as %s (name taken)", path, wanted, name)
                    copy_demo(j["demo"], data, name)
                    ids.add(episode_id)
                    added.append(name)
                    for attr in (OBS_KEYS_ATTR, ACTION_DIM_ATTR):
                        if attr not in data.attrs:
                            data.attrs[attr] = j.attrs[attr]
            done.append(jpath)
        data.attrs["total"] = int(sum(int(g.attrs.get("num_samples", 0)) for g in data.values()
                                      if isinstance(g, h5py.Group)))
    for jpath in done:
        with contextlib.suppress(FileNotFoundError):
            jpath.unlink()
    fsync_dir(journal_dir(path))
    log.info("%s: folded %d journal episode(s)", path, len(added))
    return added


def recover(path) -> list[str]:
    """Fold every journal episode a killed writer left into `path`; remove stale temp files. Returns the
    demo names recovered (empty when there was nothing to do)."""
    path = Path(path)
    if not path.exists():
        if pending_files(path):
            raise DatasetError(f"{path}: no such file, but its journal {journal_dir(path)} holds "
                               f"{len(pending_files(path))} episode(s); restore the file before recovering")
        raise DatasetError(f"{path}: no such file")
    if not journal_dir(path).is_dir():
        return []
    from .storage import open_h5

    open_h5(path).close()  # a one-line error for a file that is not ours to fold into
    lock = WriterLock(path)
    try:
        clean_temp_files(path)
        return fold(path)
    finally:
        lock.release()
