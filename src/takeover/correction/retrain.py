"""Retraining in a background process (live take-over): the person keeps working with the current
policy while the next one trains; the UI never waits for it.

`BackgroundRetrain.start(...)` spawns one process (spawn, not fork: torch threads and GL contexts do
not survive a fork) that runs at a lower priority with one torch thread, so the window's frames keep
their core:
1. snapshot the aggregate (`merge` reads the main file and the journal, which the session's writer
   keeps appending to) into `round_<k>/train_data.hdf5`, with the DAgger episodes added to its train
   split (the session's writer holds the aggregate's lock, so its split is updated when it closes);
2. train with the same code and options as the headless DAgger round (`DaggerRun.retrain_config`:
   warm start, same seed rule; a killed one resumes from its `last.pt`);
3. report the best checkpoint's path through a pipe. `poll()` is non-blocking; the caller swaps the
   policy in between episodes.

The process dies with the session (`takeover.sim.lifeline`: a kill -9 of the window leaves no orphan
writing into the round's folder) and holds `round_<k>/retrain.lock` while it runs, so a resumed
session's retrain of the same round waits for a dying one instead of racing it. What a killed one left
is resumed, not refused: the snapshot is written atomically (whole or absent), and the training
resumes from `last.pt` whenever one exists when the retrain starts.
"""
from __future__ import annotations

import fcntl
import logging
import multiprocessing as mp
import os
import time
from dataclasses import asdict
from pathlib import Path

from takeover.sim.lifeline import bind_to_parent, parent_here

log = logging.getLogger(__name__)

SNAPSHOT = "train_data.hdf5"
LOCK = "retrain.lock"
LOCK_WAIT_S = 10.0  # an earlier session's retrain exits within a second of its session (lifeline)


def _hold_round_lock(round_dir: Path):
    """Take the round's lock (kept for this process's life: the kernel drops it when the process dies)."""
    fd = os.open(round_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{round_dir}: another retrain of this round is still running") from None
            time.sleep(0.1)


def _retrain_main(data: str, options: dict, resume: bool, conn, parent=None):
    bind_to_parent(parent)  # first: its watchdog thread keeps the normal priority lowered below
    # the window's frames come first: SCHED_IDLE runs training only on CPU time the window leaves
    # (on 2 cores a nice-10 retrain still took enough to push frames past the 50 ms period)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        try:
            os.nice(19)
        except OSError:
            pass
    try:
        import torch

        torch.set_num_threads(1)
        from takeover.datasets import DemoReader
        from takeover.datasets.tools import add_to_split, merge
        from takeover.policies.train import TrainConfig, Trainer

        out = Path(options["out"])
        _hold_round_lock(out.parent)
        resume = resume or (out / "checkpoints" / "last.pt").is_file()  # written since the caller looked
        snapshot = out.parent / SNAPSHOT
        if not snapshot.exists():
            merge([data], snapshot)
        with DemoReader(snapshot) as reader:
            names = [d for d in reader.demos if reader.attrs(d).get("source") == "dagger"]
        add_to_split(snapshot, "train", names)
        cfg = TrainConfig.from_dict({**options, "data": str(snapshot)})
        result = Trainer(cfg, resume=resume).run()
        conn.send(("ok", str(Path(cfg.out) / "checkpoints" / "best.pt"), int(result["step"])))
    except BaseException as exc:  # noqa: BLE001  (one line back to the window, which keeps going)
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300], 0))
    finally:
        conn.close()


class BackgroundRetrain:
    def __init__(self):
        self.proc = None
        self.conn = None
        self.round = None
        self.started = None
        self._exiting = []  # finished trainings whose processes have not exited yet

    @property
    def running(self) -> bool:
        return self.proc is not None

    def start(self, k: int, data: Path, train_cfg, resume: bool):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe(duplex=False)
        Path(train_cfg.out).parent.mkdir(parents=True, exist_ok=True)
        self.proc = ctx.Process(target=_retrain_main, args=(str(data), asdict(train_cfg), resume, child, parent_here()),
                                daemon=True,
                                name=f"takeover-retrain-{k}")
        self.proc.start()
        child.close()
        self.round, self.started = k, time.monotonic()
        log.info("round %d: retraining in the background (pid %d)", k, self.proc.pid)

    def poll(self):
        """None while training; ("ok", best checkpoint, steps) or ("error", message, 0) once it ended."""
        self._reap()
        if self.proc is None:
            return None
        message = None
        if self.conn.poll():
            try:
                message = self.conn.recv()
            except EOFError:
                message = None
        if message is None:
            if self.proc.is_alive():
                return None
            message = ("error", f"the training process ended with exit code {self.proc.exitcode}", 0)
        # the process is still exiting (torch and HDF5 teardown took ~1.4 s): reaped on a later poll,
        # never waited for on the window's thread
        self._exiting.append(self.proc)
        self.conn.close()
        self.proc, self.conn = None, None
        return message

    def _reap(self):
        for proc in list(self._exiting):
            if not proc.is_alive():
                proc.join()
                self._exiting.remove(proc)

    def stop(self):
        """Quit: stop training now (it resumes from its last state with --resume)."""
        for proc in self._exiting:
            proc.join(timeout=10)
        self._exiting.clear()
        if self.proc is None:
            return
        self.proc.terminate()
        self.proc.join(timeout=10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()
        self.proc, self.conn = None, None
