"""Start a command in its own process group and kill -9 it once a demo file holds saved but unfolded
episodes: the crash tests of DAgger, DART and the live take-over share this."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from takeover.datasets.journal import pending_files


def kill_when(cmd: list[str], ready, env: dict | None = None, timeout_s: float = 240, poll_s: float = 0.05):
    """Run `cmd` in its own process group; as soon as `ready()` is true, SIGKILL the whole group.
    Fails (with the command's stderr) if the command ended before that."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(poll_s)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def kill_after_saves(cmd: list[str], data: Path, saves: int = 2, env: dict | None = None, timeout_s: float = 240):
    """kill_when `data` has `saves` episodes in its journal."""
    kill_when(cmd, lambda: len(pending_files(data)) >= saves, env=env, timeout_s=timeout_s)


def kill_finetune_after(cmd: list[str], run: Path, env_steps: int = 20, timeout_s: float = 240) -> dict:
    """kill_when the fine-tuning run in `run` has saved a state past `env_steps`; -> that saved state."""
    import torch

    state_path = run / "checkpoints" / "last.pt"

    def ready():
        return state_path.exists() and torch.load(state_path, weights_only=True)["env_steps"] >= env_steps

    kill_when(cmd, ready, timeout_s=timeout_s, poll_s=0.2)
    return torch.load(state_path, weights_only=True)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_parent_only(proc: subprocess.Popen, grace_s: float = 5.0) -> tuple[set[int], set[int]]:
    """SIGKILL `proc` alone (not its group: its children are left to fend for themselves, as after a
    `kill -9 PID`). Returns (its descendants at the kill, those still alive `grace_s` later); the
    survivors are then killed so that a failing test leaves nothing behind."""
    before = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + grace_s
    while time.time() < deadline and any(alive(p) for p in before):
        time.sleep(0.1)
    survivors = {p for p in before if alive(p)}
    for p in survivors:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    return before, survivors
