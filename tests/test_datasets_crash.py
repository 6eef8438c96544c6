"""Crash safety: a writer killed with SIGKILL at random moments never loses an episode it reported
saved, and the file always opens (also the way robomimic opens it)."""
import os
import random
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from takeover.datasets import DemoReader, DemoWriter, EpisodeRecorder, recover
from takeover.datasets.storage import journal_dir
from takeover.sim import EnvSpec

SPEC = EnvSpec(task="Lift")

EPISODE_CODE = '''
def make_episode(i):
    """Episode number i, reproducible from i alone."""
    rng = np.random.default_rng(i)
    T = int(rng.integers(5, 60))
    rec = EpisodeRecorder()
    for t in range(T):
        obs = {"robot0_eef_pos": rng.normal(size=3), "object": rng.normal(size=10),
               "agentview_image": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)}
        nxt = {k: v + 1 for k, v in obs.items()}
        rec.add(obs, rng.uniform(-1, 1, 7), rng.normal(), nxt, t == T - 1, rng.normal(size=20),
                interventions=int(t % 3 == 0), policy_actions=rng.normal(size=7))
    return rec.finish(model_file="<mujoco model='%d'/>" % i, source="expert", success=bool(i % 2), seed=i,
                      round=i % 4)
'''
exec(EPISODE_CODE)  # defines make_episode here; the subprocess runs the same text


LOOP_CODE = '''
def _writer_loop(path, report):
    """Save episodes forever, reporting each one after save() returns."""
    fold_every = 1 + os.getpid() % 3  # vary the batching between children
    with DemoWriter(path, SPEC, append=os.path.exists(path), fold_every=fold_every) as w:
        while True:
            i = w.next_seed
            name = w.save(make_episode(i))
            report(f"{name} {i}\\n")


def _background_fold_loop(path, report):
    """The default writer: saves go to the journal only, and a background fold starts every few saves
    while saving goes on."""
    with DemoWriter(path, SPEC, append=os.path.exists(path), journal_limit=2 + os.getpid() % 3) as w:
        while True:
            i = w.next_seed
            name = w.save(make_episode(i))
            report(f"{name} {i}\\n")


def _close_and_reopen_loop(path, report):
    """Short writer sessions: the kill also lands in the fold at close and the recovery fold at open."""
    while True:
        with DemoWriter(path, SPEC, append=os.path.exists(path)) as w:
            for _ in range(1 + os.getpid() % 3):
                i = w.next_seed
                name = w.save(make_episode(i))
                report(f"{name} {i}\\n")


LOOPS = {"fold_every": _writer_loop, "background": _background_fold_loop, "reopen": _close_and_reopen_loop}
'''

# A single-threaded helper process forks the writers: a fork of the threaded pytest (xdist) worker is
# unsafe, and a fresh interpreter per kill would pay the imports (robosuite: seconds) 43 times.
FORK_SERVER = f"""
import ctypes, os, signal, sys
import numpy as np
from takeover.datasets import DemoWriter, EpisodeRecorder
from takeover.sim.spec import EnvSpec
import robosuite  # opening a writer imports it: loaded once here, before any clock starts
SPEC = EnvSpec(task="Lift")
{EPISODE_CODE}
{LOOP_CODE}
die_with_parent = lambda: ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
die_with_parent()
print("ready", flush=True)
for command in sys.stdin:
    loop, path, report_file = command.split()
    fd = os.open(report_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    pid = os.fork()
    if pid == 0:
        try:
            die_with_parent()
            LOOPS[loop](path, lambda line: os.write(fd, line.encode()))  # one write per reported save
        finally:
            os._exit(1)
    os.close(fd)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("killed" if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL else f"status {{status}}",
          flush=True)
"""


class WriterForks:
    """Starts writer loops in fresh forks of the helper process and SIGKILLs them."""

    def __init__(self, tmp_path):
        script = tmp_path / "fork_server.py"
        script.write_text(FORK_SERVER)
        self.report = tmp_path / "reported.txt"
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=dict(os.environ, OMP_NUM_THREADS="1"), text=True,
                                     start_new_session=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()[-2000:]

    def run(self, path, delay, loop) -> str:
        """Run `loop` on `path` for `delay` seconds, then SIGKILL it; returns what it reported saved."""
        self.proc.stdin.write(f"{loop} {path} {self.report}\n")
        self.proc.stdin.flush()
        pid = int(self.proc.stdout.readline())
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        assert self.proc.stdout.readline().strip() == "killed", "the writer died on its own before the kill"
        return self.report.read_text()

    def close(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def writer_forks(tmp_path):
    forks = WriterForks(tmp_path)
    yield forks
    forks.close()


def _assert_same(stored, expected):
    np.testing.assert_array_equal(stored.actions, expected.actions)
    np.testing.assert_array_equal(stored.states, expected.states)
    np.testing.assert_array_equal(stored.rewards, expected.rewards)
    np.testing.assert_array_equal(stored.dones, expected.dones)
    for key, value in expected.obs.items():
        np.testing.assert_array_equal(stored.obs[key], value.astype(stored.obs[key].dtype))
        np.testing.assert_array_equal(stored.next_obs[key], expected.next_obs[key].astype(stored.obs[key].dtype))
    for key, value in expected.extras.items():
        np.testing.assert_array_equal(stored.extras[key], value)
    assert stored.model_file == expected.model_file
    for key in ("source", "success", "seed", "round"):
        assert stored.attrs[key] == expected.attrs[key]


def _check_file(path, reported: dict, kills: int, check=None):
    """`check`: the demo names whose contents to compare (default: all of them)."""
    # robomimic's way of opening: fails if anyone holds the file open for writing without SWMR
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        assert "data" in f and "env_args" in f["data"].attrs
        in_main = set(f["data"].keys())
    with DemoReader(path) as r:
        assert set(reported) <= set(r.demos)
        # each kill may catch one episode saved but not yet reported; it is complete too
        unreported = [n for n in r.demos if n not in reported]
        assert len(unreported) <= kills
        assert len(in_main) + r.pending == len(r.demos)
        for name, i in reported.items():
            if check is None or name in check:
                _assert_same(r.episode(name), make_episode(i))
        for name in unreported:
            _assert_same(r.episode(name), make_episode(r.attrs(name)["seed"]))


def test_kill_minus_nine_at_random_moments_loses_no_saved_episode(tmp_path, writer_forks):
    path = tmp_path / "demos.hdf5"
    rng = random.Random(1234)
    reported: dict[str, int] = {}
    kills = 0
    planned = [("fold_every", 0.3)] + [("fold_every", rng.uniform(0.0, 0.35)) for _ in range(24)]
    planned += [(rng.choice(["background", "reopen"]), rng.uniform(0.0, 0.35)) for _ in range(18)]

    def rounds():
        yield from planned
        # the delays are wall time: a loaded host saves fewer episodes per round, so go on killing at
        # random moments until enough episodes were saved for the checks to mean something
        while len(reported) < 20 and kills < 300:
            yield rng.choice(["fold_every", "background", "reopen"]), rng.uniform(0.0, 0.35)

    for k, (how, delay) in enumerate(rounds()):
        out = writer_forks.run(path, delay, how)
        kills += 1
        new = []
        for line in out.splitlines():
            if line.startswith("demo_"):
                name, i = line.split()
                assert name not in reported, f"{name} reported twice"
                reported[name] = int(i)
                new.append(name)
        # contents: every episode reported since the last kill, plus a sample of older ones (all at the end)
        check = set(new) | set(rng.sample(sorted(reported), min(4, len(reported))))
        if not path.exists():  # killed before the empty file was created: nothing was reported
            assert not reported
            continue
        _check_file(path, reported, kills, check)
        if k % 6 == 5:  # explicit recovery folds the journal: the main file alone then holds everything
            recover(path)
            assert not journal_dir(path).exists()
            assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp files left behind"
            with h5py.File(path, "r", swmr=True, libver="latest") as f:
                assert set(reported) <= set(f["data"].keys())
                assert f["data"].attrs["total"] == sum(f[f"data/{n}"].attrs["num_samples"] for n in f["data"])
                assert all(f[f"data/{n}/obs/agentview_image"].compression == "gzip" for n in f["data"])
            _check_file(path, reported, kills, check)
    assert kills >= 20
    assert len(reported) >= 20, f"only {len(reported)} episodes were saved across {kills} kills"
    # a writer reopening the file continues cleanly: recovery, then the next seed after the largest
    with DemoWriter(path, SPEC, append=True) as w:
        assert w.next_seed >= max(reported.values()) + 1
        seeds = w_seeds(path)
        assert w.next_seed == max(seeds) + 1
    _check_file(path, reported, kills)
    assert not journal_dir(path).exists()


def w_seeds(path):
    with DemoReader(path) as r:
        return [r.attrs(n)["seed"] for n in r.demos]


def test_kill_during_fold_keeps_old_main_file_and_journal(tmp_path, monkeypatch):
    """Simulate a crash between writing the copy and renaming it: the main file is untouched, the
    episode is read from the journal, and recovery folds it exactly once."""
    from takeover.datasets import storage

    path = tmp_path / "d.hdf5"
    with DemoWriter(path, SPEC) as w:
        w.save(make_episode(0))
    before = path.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt  # stands in for the kill

    monkeypatch.setattr(storage.os, "replace", boom)
    w = DemoWriter(path, SPEC, append=True, fold_every=1)  # the save folds
    with pytest.raises(KeyboardInterrupt):
        w.save(make_episode(1))
    w._lock.release(remove_journal_if_empty=False)
    monkeypatch.undo()
    assert path.read_bytes() == before
    with DemoReader(path) as r:
        assert r.demos == ["demo_0", "demo_1"] and r.pending == 1
        _assert_same(r.episode("demo_1"), make_episode(1))
    assert recover(path) == ["demo_1"]
    assert recover(path) == []
    with DemoReader(path) as r:
        assert r.demos == ["demo_0", "demo_1"] and r.pending == 0


def test_leftover_journal_file_of_a_folded_episode_is_not_duplicated(tmp_path):
    """A kill after the main file's rename but before the journal file is deleted."""
    import shutil

    from takeover.datasets import journal

    path = tmp_path / "d.hdf5"
    with DemoWriter(path, SPEC, fold_every=10) as w:
        w.save(make_episode(0))
        saved = journal.pending_files(path)
        keep = tmp_path / "keep.h5"
        shutil.copy(saved[0], keep)
    journal_dir(path).mkdir()
    shutil.copy(keep, journal_dir(path) / saved[0].name)  # the journal file comes back as if never deleted
    with DemoReader(path) as r:
        assert r.demos == ["demo_0"] and r.pending == 0
    assert recover(path) == []  # nothing new to fold: the leftover is recognised as demo_0's
    assert journal.pending_files(path) == []  # and the leftover is cleaned up
    with DemoReader(path) as r:
        assert r.demos == ["demo_0"] and r.pending == 0


def test_background_fold_keeps_saving_and_folds_everything(tmp_path):
    """Past journal_limit a fold runs in a thread; saves continue into the journal meanwhile, readers see
    every episode at every moment, and close leaves the main file alone holding all of them."""
    path = tmp_path / "d.hdf5"
    with DemoWriter(path, SPEC, journal_limit=3) as w:
        for i in range(10):
            assert w.save(make_episode(i)) == f"demo_{i}"
            with DemoReader(path) as r:
                assert r.demos == [f"demo_{k}" for k in range(i + 1)]
        w._worker.wait()
        with h5py.File(path, "r", swmr=True, libver="latest") as f:
            assert len(f["data"]) >= 6  # folds happened before close
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        assert sorted(f["data"].keys()) == sorted(f"demo_{k}" for k in range(10))
        assert f["data"].attrs["total"] == sum(len(make_episode(k)) for k in range(10))
    assert not journal_dir(path).exists()
    with DemoReader(path) as r:
        for k in range(10):
            _assert_same(r.episode(f"demo_{k}"), make_episode(k))


def test_failed_background_fold_leaves_episodes_in_the_journal(tmp_path, monkeypatch, caplog):
    from takeover.datasets import writer as writer_module

    real_fold = writer_module.fold
    calls = []

    def fold_failing_in_thread(path, files=None):
        calls.append(files)
        if files is not None and len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real_fold(path, files)

    monkeypatch.setattr(writer_module, "fold", fold_failing_in_thread)
    path = tmp_path / "d.hdf5"
    with DemoWriter(path, SPEC, journal_limit=2) as w:
        w.save(make_episode(0))
        w.save(make_episode(1))  # starts the fold that fails
        w._worker.wait()
        assert w.pending == 2
        with DemoReader(path) as r:
            assert r.demos == ["demo_0", "demo_1"] and r.pending == 2
        w.save(make_episode(2))
    assert "background fold failed" in caplog.text
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        assert sorted(f["data"].keys()) == ["demo_0", "demo_1", "demo_2"]


def test_save_does_not_copy_the_main_file(tmp_path, monkeypatch):
    """The default writer's save touches the journal only: the main file is not rewritten until close."""
    path = tmp_path / "d.hdf5"
    with DemoWriter(path, SPEC) as w:
        w.save(make_episode(0))
    before = path.stat().st_ino, path.read_bytes()
    with DemoWriter(path, SPEC, append=True) as w:
        for i in range(1, 6):
            w.save(make_episode(i))
        assert (path.stat().st_ino, path.read_bytes()) == before and w.pending == 5
    with DemoReader(path) as r:
        assert r.demos == [f"demo_{k}" for k in range(6)] and r.pending == 0


def test_kill_during_compression_rewrite_keeps_the_raw_journal_episode(tmp_path, monkeypatch):
    """A crash between writing the compressed copy of a journal episode and renaming it over the raw one:
    the raw file is intact and read, the temp copy is cleaned on the next open, and the fold compresses."""
    from takeover.datasets import journal

    path = tmp_path / "d.hdf5"
    w = DemoWriter(path, SPEC, fold_every=100)  # no background work: compress by hand below
    w.save(make_episode(0))
    (jfile,) = journal.pending_files(path)
    raw = jfile.read_bytes()

    def boom(*a, **k):
        raise KeyboardInterrupt  # stands in for the kill, after the copy was written and fsynced

    monkeypatch.setattr(journal.os, "unlink", lambda *a, **k: None)  # a kill also skips the temp cleanup
    monkeypatch.setattr(journal.os, "rename", boom)
    with pytest.raises(KeyboardInterrupt):
        journal.compress_journal_episode(jfile)
    monkeypatch.undo()
    w._lock.release(remove_journal_if_empty=False)
    assert jfile.read_bytes() == raw
    assert [p for p in journal_dir(path).iterdir() if p.name.startswith(".")], "the compressed copy was left"
    with DemoReader(path) as r:
        assert r.demos == ["demo_0"] and r.pending == 1
        _assert_same(r.episode("demo_0"), make_episode(0))
    with DemoWriter(path, SPEC, append=True) as w:  # recovery: temp removed, episode folded, frames compressed
        assert len(w) == 1 and w.pending == 0
    assert not journal_dir(path).exists()
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        assert f["data/demo_0/obs/agentview_image"].compression == "gzip"
