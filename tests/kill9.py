"""Start a command in its own process group and kill -9 it once a demo file holds saved but unfolded
episodes: the crash tests of DAgger, DART and the live take-over share this."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from takeover.datasets.journal import pending_files


def kill_after_saves(cmd: list[str], data: Path, saves: int = 2, env: dict | None = None, timeout_s: float = 240):
    """Run `cmd`; as soon as `data` has `saves` episodes in its journal, SIGKILL the whole group.
    Fails (with the command's stderr) if the command ended before that."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None and len(pending_files(data)) < saves:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
