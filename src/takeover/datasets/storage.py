"""File-level safety: opening HDF5 files with one-line errors, fsync, the writer lock, temp names and
copy-on-write edits (copy, change the copy, fsync, atomic rename), so a main file is never half-written."""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
from pathlib import Path

import h5py

from .errors import DatasetError

log = logging.getLogger(__name__)

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
TMP_MARK = ".tmp-"  # every temp file we create has a name starting with "." and containing this


def journal_dir(path) -> Path:
    """The journal folder beside a main file: `demos.hdf5` -> `demos.hdf5.journal/`."""
    path = Path(path)
    return path.with_name(path.name + ".journal")


def fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(path, tag: str) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}{TMP_MARK}{tag}-{os.getpid()}")


def is_temp(path) -> bool:
    name = Path(path).name
    return name.startswith(".") and TMP_MARK in name


def clean_temp_files(path):
    """Remove temp files a killed writer left beside `path` and in its journal (call under the lock)."""
    path = Path(path)
    candidates = list(path.parent.glob(f".{path.name}{TMP_MARK}*"))
    jdir = journal_dir(path)
    if jdir.is_dir():
        candidates += [p for p in jdir.iterdir() if is_temp(p)]
    for p in candidates:
        log.info("removing %s left by an interrupted write", p)
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def looks_like_hdf5(path) -> bool:
    """HDF5's signature sits at byte 0, 512, 1024, 2048, ... (a user block shifts it)."""
    with open(path, "rb") as f:
        offset = 0
        while True:
            f.seek(offset)
            head = f.read(8)
            if len(head) < 8:
                return False
            if head == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2


def open_h5(path, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning every way it can fail into a one-line DatasetError."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.is_dir():
        raise DatasetError(f"{path}: is a folder, expected an HDF5 demonstration file")
    try:
        is_hdf5 = looks_like_hdf5(path)
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not is_hdf5:
        raise DatasetError(f"{path}: not an HDF5 file (no HDF5 signature); expected a demonstration file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        reason = str(exc).split("(")[0].strip().rstrip(",") or "unreadable"
        raise DatasetError(f"{path}: HDF5 file is truncated or corrupt and cannot be opened ({reason})") from None


class WriterLock:
    """An exclusive flock on `<journal>/lock`: one writer (or recover/split) per file at a time. The OS
    drops it when the holder dies, so a killed writer never leaves the file locked."""

    def __init__(self, path):
        self.dir = journal_dir(path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "lock"
        self.fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise DatasetError(f"{path}: another process is writing this file (it holds {self.file})") from None

    def release(self, remove_journal_if_empty: bool = True):
        if self.fd is None:
            return
        if remove_journal_if_empty and not any(p.name != "lock" for p in self.dir.iterdir()):
            with contextlib.suppress(OSError):
                self.file.unlink()
                self.dir.rmdir()
        os.close(self.fd)
        self.fd = None


@contextlib.contextmanager
def copy_on_write(path):
    """Yield the main file's copy opened for writing; on success fsync it and atomically replace the
    main file. On any failure (or a kill) the main file is untouched and the copy is a temp file."""
    path = Path(path)
    tmp = temp_name(path, "cow")
    shutil.copyfile(path, tmp)
    with _publish_on_success(tmp, path):
        with h5py.File(tmp, "r+") as f:
            yield f


def create_atomically(path, build):
    """Create `path` by calling build(h5py.File) on a temp file, then fsync and rename it into place."""
    path = Path(path)
    tmp = temp_name(path, "new")
    with _publish_on_success(tmp, path):
        with h5py.File(tmp, "w") as f:
            build(f)


@contextlib.contextmanager
def _publish_on_success(tmp: Path, path: Path):
    """Run the body that writes `tmp`; then fsync it and rename it over `path`. On any failure (or
    a kill) `path` is untouched and the temp file is removed (or left for the next open to clean)."""
    try:
        yield
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
