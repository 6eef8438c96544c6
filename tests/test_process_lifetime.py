"""No process outlives the command that started it, kill -9 included: the lifeline itself, rollout
workers (finetune, dagger while retraining) with multiprocessing's resource tracker, and the live
take-over's background retrain, whose round a resumed session then finishes and loads."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from takeover.policies.train import TrainConfig, train
from takeover.sim import EnvSpec
from takeover.sim.rollout import RolloutPool
from takeover.datasets.scripted_collection import collect_scripted

from kill9 import alive, descendants, kill_parent_only

PARENT_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, sys, threading, time
    from takeover.sim.lifeline import bind_to_parent, parent_here

    def child(parent):
        bind_to_parent(parent)
        time.sleep(600)

    def start(procs):
        p = mp.get_context("spawn").Process(target=child, args=(parent_here(),))
        p.start()
        procs.append(p)

    if __name__ == "__main__":
        procs = []
        start(procs)  # from the main thread: the parent-death signal
        t = threading.Thread(target=start, args=(procs,))  # from a thread that ends: the watchdog alone
        t.start(); t.join()
        time.sleep(1.0)  # the thread's end must not have taken its child with it
        print(" ".join(str(p.pid) for p in procs if p.is_alive()), flush=True)
        time.sleep(600)
""")


def test_children_bound_to_their_parent_die_with_it_and_not_with_the_spawning_thread(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2, pids  # both children alive after the spawning thread ended
    before, survivors = kill_parent_only(proc)
    assert set(pids) <= before and survivors == set(), survivors


class _Idle:
    def reset(self, env):
        pass

    def act(self, obs, env):
        return env.action_low * 0.0


def test_a_pool_of_zero_workers_leaves_the_callers_threads_alone():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with RolloutPool(EnvSpec(task="Lift", horizon=3), workers=0) as pool:
            (result,) = pool.run(_Idle, [0])
        assert result.length == 3
        assert torch.get_num_threads() == 2  # a training run that evaluates in-process keeps its threads
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_lift(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifetime")
    demos = root / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=40), str(demos), 2, workers=1)
    train(TrainConfig(data=str(demos), out=str(root / "bc"), head="gaussian", steps=20, eval_episodes=0, threads=1,
                      head_options={"hidden_dims": [64, 64]}))
    return demos, root / "bc"


def _wait_for(proc, ready, timeout_s=240):
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
    if not ready():
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the command never reached the state to kill it in: "
                             + proc.communicate()[1].decode()[-2000:])


def _cli(*args):
    return [sys.executable, "-m", "takeover.cli.main", *map(str, args)]


@pytest.mark.slow
def test_kill_minus_9_of_finetune_leaves_no_rollout_worker_or_resource_tracker(small_lift, tmp_path):
    demos, bc = small_lift
    run = tmp_path / "ft"
    proc = subprocess.Popen(_cli("finetune", bc, "--demos", demos, "--out", run, "--env-steps", 100000, "--horizon", 10,
                                 "--workers", 1, "--eval-episodes", 0, "--set", "batch_size=32", "--set",
                                 "critic_hidden=[32,32]"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    state = run / "checkpoints" / "last.pt"
    _wait_for(proc, lambda: state.exists() and torch.load(state, weights_only=True)["env_steps"] >= 20)
    before, survivors = kill_parent_only(proc)
    assert len(before) >= 2, before  # the rollout worker and multiprocessing's resource tracker
    assert survivors == set(), survivors


@pytest.mark.slow
def test_kill_minus_9_of_dagger_while_retraining_leaves_no_child(small_lift, tmp_path):
    demos, bc = small_lift
    run = tmp_path / "dagger"
    proc = subprocess.Popen(_cli("dagger", demos, "--policy", bc, "--out", run, "--rounds", 1, "--episodes-per-round",
                                 2, "--train-steps", 1_000_000, "--eval-episodes", 0, "--workers", 2),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    _wait_for(proc, lambda: (run / "round_1" / "train" / "config.json").exists())  # the round's training runs
    before, survivors = kill_parent_only(proc)
    assert len(before) >= 3, before  # two rollout workers and the resource tracker
    assert survivors == set(), survivors


LIVE_SCRIPT = textwrap.dedent("""
    import json, sys, time
    from takeover.correction.dagger import DaggerConfig, DaggerRun
    from takeover.correction.live import run_live
    from takeover.teleop._pygame import pygame
    from takeover.teleop.gamepad import GamepadDevice
    from takeover.teleop.session import SessionConfig
    from takeover.teleop.virtual_joystick import VirtualJoystick


    def main(demos, policy, out, resume, steps):
        pygame.display.init()
        pad = VirtualJoystick().attach()

        def drive(session):
            started = time.monotonic()
            while time.monotonic() - started < 300:
                if resume and len(session.live.state["checkpoints"]) > 1:
                    return  # the retrained policy was loaded (between attempts)
                if session.state.value == "ready":
                    pad.set_button(6, True)
                    session.frame()
                    pad.set_button(6, False)
                pad.set_axis(1, 0.5 if session.steps % 20 < 6 else 0.0)  # the person takes over now and then
                session.frame()
                time.sleep(0.01)  # leave the (idle-priority) retrain some CPU

        cfg = DaggerConfig(data=demos, policy=policy, out=out, labeller="human", retrain_every=1,
                           train_overrides={"steps": steps, "threads": 1, "checkpoint_every": 20})
        state = run_live(DaggerRun(cfg, resume=resume), GamepadDevice(),
                         SessionConfig(realtime=False, render_size=32, window_size=(96, 96)), drive=drive)
        print(json.dumps(state["checkpoints"]))


    if __name__ == "__main__":  # the retrain is spawned: it imports this file again
        main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5]))
""")


@pytest.mark.slow
@pytest.mark.alone  # the retrain runs at idle priority
def test_kill_minus_9_of_a_live_session_while_retraining_leaves_no_process_and_resume_loads_the_retrain(
        small_lift, tmp_path):
    demos, bc = small_lift
    script = tmp_path / "live.py"
    script.write_text(LIVE_SCRIPT)
    out = tmp_path / "run"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), demos, bc, out, "0", "100000"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    last = out / "round_1" / "train" / "checkpoints" / "last.pt"
    _wait_for(proc, last.exists, timeout_s=300)  # the retrain has trained (and saved) some steps
    retrains = {p for p in descendants(proc.pid) if "spawn_main" in _cmdline(p)}
    before, survivors = kill_parent_only(proc)
    assert retrains and survivors == set(), survivors
    assert not any(alive(p) for p in retrains)
    assert json.loads((out / "dagger.json").read_text())["live"]["training"] == 1
    killed_at = torch.load(last, weights_only=True)["step"]

    # the resume restarts round 1's retrain from the killed one's last.pt (a short training now: 40 steps)
    resumed = subprocess.run([sys.executable, str(script), demos, bc, out, "1", "40"], env=env, capture_output=True,
                             text=True, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "a run already exists" not in resumed.stderr and "retrain failed" not in resumed.stderr
    checkpoints = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert len(checkpoints) == 2 and checkpoints[-1].endswith("round_1/train/checkpoints/best.pt")
    assert torch.load(last, weights_only=True)["step"] == max(killed_at, 40)  # continued, not restarted


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""
