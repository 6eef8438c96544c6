"""Every process takeover starts ends when the command that started it ends, however it ends (kill -9
included): rollout workers, relabelling workers, the live take-over's background retrain.

The parent takes a `Parent` token when it starts children (`parent_here()`); each child calls
`bind_to_parent(token)` first thing (a pool's initializer, a process's target). The child then:
- asks Linux to SIGKILL it when its parent dies (prctl PR_SET_PDEATHSIG), when the parent's main thread
  spawned it (the signal follows the spawning *thread*: a child spawned from a short-lived thread would
  die with that thread, so those rely on the watchdog alone);
- exits at once if the parent is already gone (it died between the spawn and this call);
- runs a watchdog thread that exits the process once its parent has changed (the portable fallback,
  and the cover for children spawned off the main thread). The thread is made before a caller lowers
  the process's priority (the retrain runs SCHED_IDLE), so it keeps a normal one.

multiprocessing's resource tracker needs nothing: it exits when the last holder of its pipe (the
parent and these children) is gone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
WATCH_PERIOD_S = 0.25


@dataclass(frozen=True)
class Parent:
    pid: int
    main_thread: bool  # spawned from the parent's main thread (whose end is the parent's end)


def parent_here() -> Parent:
    """The token to hand to children started from the current thread."""
    return Parent(os.getpid(), threading.current_thread() is threading.main_thread())


def _set_parent_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int):
    while os.getppid() == parent_pid:
        time.sleep(WATCH_PERIOD_S)
    os._exit(1)  # the parent is gone: no cleanup that could hang (a held lock, a pipe nobody reads)


def bind_to_parent(parent: Parent | None):
    """Make this (child) process die with `parent`. Call it first in the child; None does nothing."""
    if parent is None or os.getpid() == parent.pid:
        return  # in the parent's own process (a pool of 0 workers)
    if parent.main_thread:
        _set_parent_death_signal()
    if os.getppid() != parent.pid:
        os._exit(1)
    threading.Thread(target=_watch, args=(parent.pid,), name="lifeline", daemon=True).start()
