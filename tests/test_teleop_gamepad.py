"""Gamepad through SDL virtual joysticks (docs/architecture.md): the real pygame/SDL device path, hot-plug,
unplug mid-episode (pause, nothing lost, start resumes after the replug), the generic fallback, and the
no-controller error."""
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from takeover.teleop import ActionGains
from takeover.teleop._pygame import pygame
from takeover.teleop.gamepad import GamepadDevice
from takeover.teleop.session import PAUSED, READY, RECORDING, RecordingSession, SessionConfig
from takeover.teleop.virtual_joystick import VirtualJoystick

# generic mapping (SDL game-controller order): axis1 -> x, button0 -> gripper, button6 start, button3 save
X_AXIS, GRIP, START, SAVE = 1, 0, 6, 3


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield
    pygame.display.quit()


def finger_width(env):
    robot = env.raw.robots[0]
    q = env.raw.sim.data.qpos[robot._ref_gripper_joint_pos_indexes["right"]]
    return float(q[0] - q[1])


def test_xbox_layout_is_recognised_and_triggers_rest_at_minus_one(headless):
    pygame.display.init()
    with VirtualJoystick("Xbox 360 Controller", naxes=6, nbuttons=11, trigger_axes=(2, 5)) as pad:
        dev = GamepadDevice()
        assert dev.mapping.name == "xbox" and dev.known_mapping
        rest = dev.poll(pygame.event.get())
        assert not rest.moving and rest.gripper == 0.0  # triggers at -1 read as released
        pad.set_axis(4, -1.0)  # right stick up
        pad.set_axis(5, 1.0)  # right trigger squeezed
        up = dev.poll(pygame.event.get())
        assert up.translation[2] == pytest.approx(1.0) and up.gripper == pytest.approx(1.0, abs=1e-3)
        pad.set_axis(0, 0.05)  # inside the deadzone
        assert dev.poll(pygame.event.get()).translation[1] == 0.0


def test_gamepad_session_hotplug_unplug_resume_and_save(tmp_path, headless, caplog):
    caplog.set_level(logging.INFO)
    out = tmp_path / "pad.hdf5"
    dev = GamepadDevice(require_connected=False)  # nothing plugged in yet
    config = SessionConfig(task="Lift", output=out, episodes=1, realtime=False, render_size=64, window_size=(128, 128),
                           gains=ActionGains(gripper_mode="hold"))
    session = RecordingSession(config, dev)
    pads = []
    try:
        ds = session.frame()
        assert not ds.connected and session.state == PAUSED

        pads.append(VirtualJoystick().attach())  # hot-plug: picked up through JOYDEVICEADDED
        pad = pads[-1]
        session.frame()
        assert dev.connected and dev.mapping.name == "generic"
        assert "unknown controller 'Virtual Controller': using the generic mapping" in caplog.text
        assert session.state == READY

        pad.set_button(START, True)
        session.frame()
        pad.set_button(START, False)
        assert session.state == RECORDING

        x0 = session.obs["robot0_eef_pos"].copy()
        pad.set_axis(X_AXIS, 1.0)
        for _ in range(12):
            session.frame()
        pad.set_axis(X_AXIS, 0.0)
        moved = session.obs["robot0_eef_pos"] - x0
        assert moved[0] > 0.04, moved  # stick down = +x (toward the camera)
        assert abs(moved[1]) < 0.02 and abs(moved[2]) < 0.02, moved

        width_open = finger_width(session.env)
        pad.set_button(GRIP, True)
        for _ in range(8):
            session.frame()
        assert finger_width(session.env) < width_open - 0.02

        steps = len(session.recorder)
        pad.detach()  # unplugged mid-episode
        for _ in range(3):
            session.frame()
        assert session.state == PAUSED and len(session.recorder) == steps
        assert "unplugged" in session.banner(session.device.poll([]))[0]

        pads.append(VirtualJoystick().attach())  # plugged back in: still paused until start is pressed
        pad = pads[-1]
        pad.set_button(GRIP, True)
        pad.set_axis(X_AXIS, 1.0)
        for _ in range(3):
            session.frame()
        assert session.state == PAUSED and len(session.recorder) == steps
        assert "press start" in session.banner(session.device.poll([]))[0]
        pad.set_axis(X_AXIS, 0.0)
        pad.set_button(START, True)  # start: resumes where it was
        session.frame()
        pad.set_button(START, False)
        for _ in range(2):
            session.frame()
        assert session.state == RECORDING and len(session.recorder) == steps + 3
        pad.set_button(SAVE, True)
        session.frame()
        assert session.finished and session.result.saved == ["demo_0"]
    finally:
        session.close()
        for p in pads:
            p.detach()

    from takeover.datasets import DemoReader
    with DemoReader(out) as reader:
        assert reader.demos == ["demo_0"]
        attrs = reader.attrs("demo_0")
        ep = reader.episode("demo_0")
    assert attrs["source"] == "human" and attrs["device"] == "gamepad"
    assert len(ep) == steps + 3
    log = ep.extras["device_input"]
    pushed = log[:, 0] > 0.5
    assert pushed.sum() == 12 and np.allclose(ep.actions[pushed, 0], 0.6, atol=1e-3)  # gain 0.6 x full stick
    assert np.all(ep.actions[-11:, 6] == 1.0)  # gripper held closed, across the unplug too
    assert np.all(ep.actions[:, 3:6] == 0.0)


def test_no_controller_is_one_line_error_with_a_hint(tmp_path):
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    out = tmp_path / "none.hdf5"
    proc = subprocess.run([sys.executable, "-m", "takeover.cli.main", "record", "--input", "gamepad", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no game controller found" in lines[0] and "--input keyboard" in lines[0], proc.stderr
    assert not out.exists()
