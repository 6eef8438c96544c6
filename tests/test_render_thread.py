"""The window's render thread (sim/render_thread.py): it shows what Env.render shows, and rendering on
its own GL context beside env.step leaves the camera observations robosuite renders inside the step
exactly as they are without it."""
import time

import numpy as np
import pytest

from takeover.sim import EnvSpec
from takeover.teleop.input_log import InputLogDevice
from takeover.teleop.session import RECORDING, READY, RecordingSession, SessionConfig
from takeover.teleop.state import DeviceState


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")


def _session(tmp_path, render_thread: bool, spec: EnvSpec, name: str) -> RecordingSession:
    states = [DeviceState(translation=(0.3, 0.0, 0.1)) for _ in range(80)]
    config = SessionConfig(output=tmp_path / f"{name}.hdf5", realtime=False, spec=spec, render_size=128,
                           render_thread=render_thread)
    return RecordingSession(config, InputLogDevice.from_states(states, end_events=()))


def test_camera_observations_are_the_same_with_the_render_thread(tmp_path, headless):
    spec = EnvSpec(task="Lift", horizon=60, camera_names=("agentview", "robot0_eye_in_hand"))
    images = {}
    for render_thread in (True, False):
        session = _session(tmp_path, render_thread, spec, str(render_thread))
        try:
            session.state = RECORDING
            frames = []
            for _ in range(15):
                session.frame()
                frames.append(np.stack([session.obs["agentview_image"], session.obs["robot0_eye_in_hand_image"]]))
            images[render_thread] = np.stack(frames)
            assert session.result.renders >= 1
        finally:
            session.close()
    np.testing.assert_array_equal(images[True], images[False])


def test_the_window_shows_the_scene_env_render_shows(tmp_path, headless):
    session = _session(tmp_path, True, EnvSpec(task="Lift", horizon=60), "shown")
    try:
        session.state = RECORDING
        for _ in range(10):
            session.frame()
        session.state = READY  # the scene stops changing; the newest render catches up within a few frames
        for _ in range(100):
            session.frame()
            if not session.renderer.pending and not session._scene_changed:
                break
            time.sleep(0.02)
        shown = session._shown[0]
        expected = session.env.render(128, 128, session.main_camera)
    finally:
        session.close()
    assert shown.shape == expected.shape == (128, 128, 3)
    # same model, camera and flags; the two GL contexts may differ on a handful of edge pixels
    assert np.mean(np.abs(shown.astype(int) - expected.astype(int)) > 16) < 0.01
