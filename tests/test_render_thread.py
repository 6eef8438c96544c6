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


def _differing(a, b) -> float:
    """Fraction of pixels where some channel differs by more than 24 levels."""
    return float(np.mean(np.abs(a.astype(int) - b.astype(int)).max(-1) > 24))


def test_window_and_video_frames_show_what_robosuite_cameras_show(monkeypatch):
    """robosuite's camera observations show the visual meshes only; Env.render (videos, replays) and the
    window's render thread draw the same picture, not the collision meshes speckled over them (which
    the debug option TAKEOVER_RENDER_COLLISION=1 shows, and which then differ visibly)."""
    from takeover.sim import make_env
    from takeover.sim.env import COLLISION_ENV_VAR
    from takeover.sim.render_thread import BackgroundRenderer

    cams = ("agentview", "sideview")
    with_cameras = make_env(EnvSpec(task="Lift", camera_names=cams, camera_height=96, camera_width=96))
    plain = make_env(EnvSpec(task="Lift"))  # no camera observations: Env.render makes its own context
    try:
        obs = with_cameras.reset(seed=1)
        for _ in range(8):  # the arm moves into both views with the gripper closed
            obs, *_ = with_cameras.step(np.r_[0.3, 0.0, -0.3, 0.0, 0.0, 0.0, 1.0])
        plain.set_state(with_cameras.get_state())

        def frames(renderer_env):
            thread = BackgroundRenderer(renderer_env)
            try:
                thread.submit([(cam, 96, 96) for cam in cams])
                shown = thread.result()
            finally:
                thread.close()
            return {cam: (renderer_env.render(96, 96, cam), shown[i]) for i, cam in enumerate(cams)}

        for env in (plain, with_cameras):
            for cam, (rendered, shown) in frames(env).items():
                robosuite_view = obs[f"{cam}_image"]
                assert _differing(rendered, robosuite_view) < 0.01, (cam, _differing(rendered, robosuite_view))
                assert _differing(shown, robosuite_view) < 0.01, (cam, _differing(shown, robosuite_view))

        monkeypatch.setenv(COLLISION_ENV_VAR, "1")  # the debug option: collision meshes drawn too
        for env in (plain, with_cameras):
            for cam, (rendered, shown) in frames(env).items():
                assert _differing(rendered, obs[f"{cam}_image"]) > 0.04, cam
                assert _differing(shown, obs[f"{cam}_image"]) > 0.04, cam
        # robosuite's own camera observations keep its look while the debug option is on
        again = with_cameras.set_state(with_cameras.get_state())
        for cam in cams:
            np.testing.assert_array_equal(again[f"{cam}_image"], obs[f"{cam}_image"])
    finally:
        with_cameras.close()
        plain.close()


def test_every_layouts_renderer_exists_before_the_first_frame(tmp_path, headless):
    """Building a renderer holds the GIL for 0.6-1.8 s: a session builds those of every layout (the
    inset's smaller one included) before its first frame, and switching layouts builds none."""
    session = _session(tmp_path, True, EnvSpec(task="Lift", horizon=60), "layouts")
    try:
        needed = {(w, h) for layout in range(len(session.views)) for _, w, h in session._requests(layout)}
        assert needed == {(128, 128), (64, 64)} and len(session.views) == 4
        assert session.renderer.sizes == needed  # before any frame
        session.state = RECORDING
        for _ in range(len(session.views)):
            session._handle_events(DeviceState(events={"camera"}))
            for _ in range(3):
                session.frame()
        assert session.renderer.sizes == needed
    finally:
        session.close()
