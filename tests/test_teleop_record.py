"""The recording path end to end, headless: a scripted operator records Lift to success and the demo
replays to success; kill -9 mid-episode keeps earlier episodes; DART noise keeps clean labels; a
file of another task is refused before recording."""
import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from takeover.datasets import DemoReader, DemoWriter
from takeover.sim import EnvSpec, make_env
from takeover.sim.noise import ActionNoise
from takeover.teleop import ActionGains, DeviceState, to_action
from takeover.datasets.playback import load_demo, replay_states
from takeover.teleop.input_log import InputLogDevice
from takeover.teleop.session import RecordingSession, SessionConfig

HEADLESS = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
RECORD = [sys.executable, "-m", "takeover.cli.main", "-v", "record", "--input", "scripted", "--no-realtime",
          "--render-size", "64", "--size", "128"]


@pytest.fixture(scope="module")
def scripted_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("scripted") / "lift.hdf5"
    proc = subprocess.run(RECORD + ["-o", str(out), "--episodes", "1", "--seed", "5"], env=HEADLESS,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "saved 1 episode(s)" in proc.stdout
    return out


def test_scripted_operator_records_lift_to_success_and_it_replays(scripted_file):
    name, spec, episode, attrs = load_demo(scripted_file, 0)
    assert name == "demo_0" and spec.task == "Lift"
    assert attrs["success"] and attrs["source"] == "expert" and attrs["seed"] == 5
    assert 20 < len(episode) < 150
    assert episode.extras["device_input"].shape == (len(episode), 8)
    assert episode.extras["device_events"][0] & 1  # the start press is logged with the first step
    env = make_env(spec)
    try:
        assert replay_states(env, episode)  # stored states, last action executed: success
        obs = env.reset(seed=attrs["seed"])  # and re-executing the actions from the same start
        assert np.allclose(obs["robot0_eef_pos"], episode.obs["robot0_eef_pos"][0])
        for a in episode.actions:
            env.step(a)
        assert env.check_success()
    finally:
        env.close()


def test_replay_command_writes_a_video_and_plays_in_a_window(scripted_file, tmp_path, monkeypatch, capsys):
    from takeover.cli.app import run_cli
    from takeover.cli import commands  # noqa: F401  (registers record/replay)

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    video = tmp_path / "demo.mp4"
    assert run_cli(["replay", str(scripted_file), "--demo", "0", "--video", str(video), "--render-size", "64"]) == 0
    assert video.stat().st_size > 1000
    assert run_cli(["replay", str(scripted_file), "--demo", "demo_0", "--speed", "50", "--render-size", "64",
                    "--size", "128"]) == 0
    out = capsys.readouterr().out
    assert out.count("success at the end: True") == 2
    assert run_cli(["replay", str(scripted_file), "--demo", "7"]) == 2
    assert "has no demo_7" in capsys.readouterr().err


def test_kill_minus_9_mid_episode_keeps_every_saved_episode(tmp_path):
    out = tmp_path / "killed.hdf5"
    proc = subprocess.Popen(RECORD + ["-o", str(out), "--episodes", "0"], env=HEADLESS, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    # stderr is read on a thread, so the deadline holds even while the recorder prints nothing
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    saved, recording, log = {}, 0, []
    deadline = time.monotonic() + 240
    try:
        while recording < 3:  # two saved, the third under way
            try:
                line = lines.get(timeout=max(0.01, min(1.0, deadline - time.monotonic())))
            except queue.Empty:
                assert proc.poll() is None, "recorder exited early:\n" + "".join(log)[-2000:]
                assert time.monotonic() < deadline, "recorder too slow:\n" + "".join(log)[-2000:]
                continue
            log.append(line)
            m = re.search(r"saved (demo_\d+): (\d+) steps", line)
            if m:
                saved[m[1]] = int(m[2])
            recording += "recording episode" in line
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        reader.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    while not lines.empty():  # saved before the kill landed
        m = re.search(r"saved (demo_\d+): (\d+) steps", lines.get())
        if m:
            saved[m[1]] = int(m[2])
    assert len(saved) >= 2 and list(saved) == [f"demo_{i}" for i in range(len(saved))]
    with DemoReader(out) as reader:
        assert reader.demos == list(saved)  # every saved episode, nothing half-written
        for name, steps in saved.items():
            ep = reader.episode(name)
            assert len(ep) == steps and reader.attrs(name)["success"]


def test_noise_injection_keeps_clean_labels_and_executes_noise_of_the_requested_scale(tmp_path):
    sigma, steps = 0.2, 240
    t = np.arange(steps)
    clean_states = [DeviceState(translation=(0.3 * np.sin(i / 9), 0.3 * np.cos(i / 13), 0.0)) for i in t]
    device = InputLogDevice.from_states(clean_states)
    gains = ActionGains()
    noise = ActionNoise.from_option(str(sigma), 7, seed=11)

    class Window:  # the noise path does not need pixels
        def draw(self, *a, **k):
            pass

        def close(self):
            pass

    env = make_env(EnvSpec(task="Lift"), seed=0)
    env.render = lambda *a, **k: np.zeros((8, 8, 3), np.uint8)
    out = tmp_path / "dart.hdf5"
    config = SessionConfig(output=out, episodes=1, realtime=False, gains=gains, noise=noise, spec=EnvSpec(task="Lift", horizon=400))
    from takeover.teleop._pygame import pygame
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    pygame.display.init()
    try:
        result = RecordingSession(config, device, env=env, window=Window()).run()
    finally:
        pygame.display.quit()
    assert result.saved == ["demo_0"]
    with DemoReader(out) as reader:
        ep = reader.episode("demo_0")
        assert reader.attrs("demo_0")["noise_std"] == pytest.approx([sigma] * 6 + [0.0])
    expected = np.stack([to_action(s, gains)[0] for s in clean_states]).astype(np.float32)
    assert len(ep) == steps
    assert np.allclose(ep.actions, expected, atol=1e-6)  # labels = the operator's clean commands
    diff = ep.extras["executed_actions"] - ep.actions
    assert np.all(diff[:, 6] == 0.0)  # gripper left clean
    per_dim = diff[:, :6].std(axis=0)
    assert np.all(np.abs(per_dim / sigma - 1) < 0.15), per_dim
    assert abs(diff[:, :6].std() / sigma - 1) < 0.08
    assert abs(diff[:, :6].mean()) < 0.03


def test_output_file_of_another_task_is_refused_before_recording(tmp_path, monkeypatch, capsys):
    from takeover.cli.app import run_cli
    from takeover.cli import commands  # noqa: F401

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    path = tmp_path / "stack.hdf5"
    DemoWriter(path, EnvSpec(task="Stack")).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    listing = sorted(p.name for p in tmp_path.iterdir())
    for extra in (["--append"], []):
        assert run_cli(["record", "--task", "Lift", "--input", "keyboard", "-o", str(path)] + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
        assert ("Stack" in err and "Lift" in err) if extra else "already exists" in err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    new = [p for p in tmp_path.iterdir() if p.name not in listing]
    leftovers = [f for p in new for f in (p.iterdir() if p.is_dir() else [p])]
    assert all(f.name == "lock" and f.stat().st_size == 0 for f in leftovers), leftovers  # only the writer's lock


@pytest.mark.parametrize("command", [["record", "--input", "keyboard", "-o", "{out}/demos.hdf5"],
                                     ["record", "--input", "gamepad", "-o", "{out}/demos.hdf5"],
                                     ["dagger", "{data}", "--policy", "{data}", "--expert", "human",
                                      "--input", "keyboard", "--out", "{out}/run"]])
def test_a_person_s_window_with_no_display_is_refused_before_anything_is_made(tmp_path, command):
    """With no X or Wayland display SDL falls back to an offscreen window nobody sees, and the session
    would wait for keys forever: one line saying what to set, exit 2, no file or folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    out = tmp_path / "out"
    data = tmp_path / "demos.hdf5"
    DemoWriter(data, EnvSpec(task="Lift")).close()
    args = [a.format(out=out, data=data) for a in command]
    proc = subprocess.run([sys.executable, "-m", "takeover.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "no window can open here" in lines[0] and "DISPLAY" in lines[0], lines[0]
    assert not out.exists()
