"""Live HG-DAgger in the headless window, driven through an SDL virtual joystick: who drives per step,
what is stored and labelled, seamless hand-overs, views, HUD lines that fit, the background planner,
the background retrain with its frame times, and kill -9 + --resume."""
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from takeover.correction.dagger import DaggerConfig, DaggerRun
from takeover.correction.live import TAKEOVER_HELP, run_live
from takeover.datasets import DemoReader
from takeover.datasets.labels import intervention_steps
from takeover.policies.train import TrainConfig, train
from takeover.sim import EnvSpec
from takeover.teleop import ActionGains
from takeover.teleop._pygame import pygame
from takeover.teleop.gamepad import GamepadDevice
from takeover.teleop.mapping import Tuning
from takeover.teleop.session import RECORDING, Pacer, SessionConfig
from takeover.teleop.virtual_joystick import VirtualJoystick
from takeover.teleop.window import LINE_HEIGHT, PANEL_MARGIN, Window
from takeover.datasets.scripted_collection import collect_scripted

from demo_split import with_split
from kill9 import kill_after_saves

# generic mapping (SDL game-controller order)
X_AXIS, START, SAVE, CAMERA, TAKE_OVER = 1, 6, 3, 8, 10
HORIZON = 60


@pytest.fixture
def headless(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    yield
    pygame.display.quit()


@pytest.fixture(scope="module")
def small_lift(tmp_path_factory):
    """2 scripted Lift demos (horizon 60) and a barely trained policy: enough to drive, quick to retrain."""
    root = tmp_path_factory.mktemp("live")
    demos = root / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=HORIZON), str(demos), 2, workers=1)
    with_split(demos)  # demo_1 trains, demo_0 validates: the session's episodes must join train
    train(TrainConfig(data=str(demos), out=str(root / "bc"), head="gaussian", steps=20, eval_episodes=0, threads=1))
    return demos, root / "bc"


def session_config(**kw):
    return SessionConfig(**{"realtime": False, "render_size": 64, "window_size": (256, 256),
                            "gains": ActionGains(gripper_mode="hold"), **kw})


def eef_steps(ep) -> np.ndarray:
    pos = np.concatenate([ep.obs["robot0_eef_pos"], ep.next_obs["robot0_eef_pos"][-1:]])
    return np.linalg.norm(np.diff(pos, axis=0), axis=1)  # step t: how far the hand moved during step t


def test_live_takeover_with_a_virtual_pad(small_lift, tmp_path, headless):
    demos, policy = small_lift
    run = DaggerRun(DaggerConfig(data=str(demos), policy=str(policy), out=str(tmp_path / "run"), labeller="human"))
    pygame.display.init()
    pads = [VirtualJoystick().attach()]
    seen = {}

    def drive(session):
        pad = pads[0]
        def frames(n):
            for _ in range(n):
                session.frame()

        pad.set_button(START, True)
        session.frame()
        pad.set_button(START, False)
        assert session.state == RECORDING
        frames(9)  # the policy drives
        seen["policy"] = session.driver
        pad.set_axis(X_AXIS, 0.8)  # a stick past the deadzone: the person takes over
        frames(12)
        seen["stick"] = session.driver
        pad.set_axis(X_AXIS, 0.0)  # let go: back to the policy
        frames(8)
        seen["released"] = session.driver
        pad.set_button(TAKE_OVER, True)  # the take-over control, held without moving: the person holds the pose
        frames(6)
        seen["held"] = session.driver
        pad.set_button(TAKE_OVER, False)
        pad.set_button(CAMERA, True)
        frames(4)
        pad.set_button(CAMERA, False)
        seen["views"] = (session.main_camera, session.inset_camera)
        seen["hud"] = session.hud_lines(session.device.poll([]))
        seen["help"] = session.help_lines()
        session.live.last_error = "round_1/train: " + "a message of many words from a failed retrain " * 4
        seen["hud_error"] = session.hud_lines(session.device.poll([]))
        session.live.last_error = ""
        seen["prefetched"] = (session.planner.prefetched, session.planner.synchronous)
        pad.detach()  # unplugged mid-episode: paused, nothing stepped
        frames(3)
        seen["paused"] = (session.state.value, session.steps)
        pads.append(VirtualJoystick().attach())
        pad = pads[-1]
        pad.set_button(TAKE_OVER, True)  # plugged back in, held anyhow: the policy does not drive, nor the person
        frames(2)
        pad.set_button(TAKE_OVER, False)
        frames(1)
        seen["replugged"] = (session.state.value, session.steps, session.banner(session.device.poll([]))[0])
        pad.set_button(START, True)  # start: the policy drives on
        session.frame()
        pad.set_button(START, False)
        frames(1)
        pad.set_button(SAVE, True)
        session.frame()
        pad.set_button(SAVE, False)

    try:
        state = run_live(run, GamepadDevice(), session_config(episodes=1), drive=drive)
    finally:
        for pad in pads:
            pad.detach()
    assert seen["policy"] == "policy" and seen["stick"] == "person"
    assert seen["paused"] == ("paused", 40)
    assert seen["replugged"] == ("paused", 40, "paused: press start to resume")
    assert seen["released"] == "policy" and seen["held"] == "person"
    assert seen["views"] == ("agentview", "sideview")  # one press of the camera control: a side view inset
    window = Window((512, 512), "fit")  # the default window: every line of the take-over HUD, help included, fits
    help_rows = [t for t, _ in window.fit_lines(seen["help"])]
    assert any(t.startswith("take over: gripper") for t in help_rows), help_rows  # the help says what the gripper does
    # a long error wrapped whole would push the help's last line off the panel: it is shortened instead
    assert len(window.fit_lines(seen["hud_error"] + [("", None)] + seen["help"])) > window.panel_rows
    for hud in (seen["hud"], seen["hud_error"]):
        fitted = window.panel_lines(hud, seen["help"])
        assert all(window.font.size(t)[0] <= window.text_width for t, _ in fitted), fitted
        assert len(fitted) <= window.panel_rows and PANEL_MARGIN + len(fitted) * LINE_HEIGHT <= 512 + 4, len(fitted)
        assert [t for t, _ in fitted[-len(help_rows):]] == help_rows  # every help line shown, the last included
    assert any(t.startswith("retrain failed: round_1/train: a message") for t, _ in
               window.panel_lines(seen["hud_error"], seen["help"]))
    window.close()
    prefetched, synchronous = seen["prefetched"]
    # every action came off the frame thread but the two re-plans right after a hand-back (queue reset)
    assert prefetched >= 34 and synchronous == 2, seen["prefetched"]

    with DemoReader(tmp_path / "run" / "data.hdf5") as r:
        names = [d for d in r.demos if r.attrs(d).get("source") == "dagger"]
        assert len(names) == 1
        attrs = r.attrs(names[0])
        ep = r.episode(names[0])
        labels = intervention_steps(r.group(names[0]), attrs)
        splits = r.splits
    assert attrs["round"] == 1 and attrs["labeller"] == "human" and "success" in attrs
    assert attrs["seed"] == 3_000_000
    flags = ep.extras["interventions"].astype(bool)
    assert len(ep) == 42
    # who drove, step by step (the start frame steps too): 10 policy, 12 stick, 8 policy, 6 held, 4 + 2 policy
    expected = np.r_[np.zeros(10), np.ones(12), np.zeros(8), np.ones(6), np.zeros(6)].astype(bool)
    np.testing.assert_array_equal(flags, expected)
    np.testing.assert_array_equal(labels, flags)  # only the person's steps are training labels
    executed = ep.extras["executed_actions"]
    assert ep.extras["policy_actions"].shape == ep.actions.shape
    np.testing.assert_allclose(executed[~flags], ep.extras["policy_actions"][~flags], atol=1e-6)  # the policy drove
    assert not np.allclose(executed[flags][:, :3], ep.extras["policy_actions"][flags][:, :3])
    # the person's take-over starts from a hold (zero arm action), then ramps up to the stick's command
    full = Tuning().shape(0.8) * 0.6
    np.testing.assert_allclose(executed[10:14, 0], [0.0, full / 3, 2 * full / 3, full], atol=1e-3)
    assert np.all(executed[10, :6] == 0.0)
    assert np.all(executed[30:36, :6] == 0.0)  # held without moving: the pose holds
    # no jump at either hand-over: the hand's step at each switch is no bigger than its typical steps
    steps = eef_steps(ep)
    typical = np.percentile(steps, 90)
    print(f"\nhand step (mm) at the switches 10/22/30/36: {[round(1000 * steps[i], 2) for i in (10, 22, 30, 36)]}, "
          f"typical (p90) {1000 * typical:.2f}, max {1000 * steps.max():.2f}")
    for switch in (10, 22, 30, 36):
        assert steps[switch] <= 1.2 * typical, (switch, steps[switch], typical, steps.round(4))
    assert splits == {"train": ["demo_1", names[0]], "valid": ["demo_0"]}  # the take-over episode trains
    assert state["live"]["saved"] == 1
    # the report says what the live run did, not the headless DAgger's settings
    report = (tmp_path / "run" / "report.md").read_text()
    success = "1/1 (100%)" if attrs["success"] else "0/1 (0%)"
    assert "Attempts saved: 1 (0 discarded and retried) over 1 session(s)" in report, report
    assert "Steps the person drove (the labels): 18 of 42 (43%); take-overs: 2, 2.0 per attempt." in report, report
    assert f"Success with the person's help: {success}; the policy alone (no take-over): 0/0." in report, report
    assert "Policy swaps (a retrained policy loaded between attempts): 0." in report, report
    assert "| 1 | `bc/best.pt` | start | 1 | 18 | 2.0 |" in report, report
    assert f"| 1 | 1 | 3000000 | 42 | 18 | 2 | {'yes' if attrs['success'] else 'no'} |" in report, report
    assert "beta" not in report and "evaluation episodes" not in report and "per round" not in report


def test_every_hud_and_help_line_fits_the_panel(headless, tmp_path):
    from takeover.teleop.keyboard import HELP

    from takeover.teleop import DeviceState
    from takeover.teleop.keyboard import KeyboardDevice
    from takeover.teleop.session import RecordingSession

    long_status = "Sony Interactive Entertainment DualSense Wireless Controller [playstation-evdev]"
    recording = RecordingSession(SessionConfig(task="Lift", output=tmp_path / "rec.hdf5", render_size=32), KeyboardDevice())
    try:  # the recording window's own HUD at the default size, help included
        window = recording.window
        fitted = window.panel_lines(recording.hud_lines(DeviceState(status=long_status)), recording.help_lines())
        assert all(window.font.size(t)[0] <= window.text_width for t, _ in fitted), fitted
        assert PANEL_MARGIN + len(fitted) * LINE_HEIGHT <= 512, len(fitted)
        assert fitted[-1][0] == HELP[-1]  # the help's last line is shown
        assert recording.main_camera == "agentview" and recording.inset_camera is None
        views = [(recording.main_camera, recording.inset_camera)]
        for _ in range(4):  # the camera control cycles the views, back to the first
            recording._handle_events(DeviceState(events={"camera"}))
            views.append((recording.main_camera, recording.inset_camera))
        assert views == [("agentview", None), ("agentview", "sideview"), ("sideview", "agentview"),
                         ("robot0_eye_in_hand", "agentview"), ("agentview", None)]
    finally:
        recording.close()
    window = Window((512, 512), "fit")
    lines = [(t, (0, 0, 0)) for t in HELP + TAKEOVER_HELP + [long_status, "policy dagger_run_with_a_long_name/best.pt"]]
    pygame.joystick.init()
    with VirtualJoystick("Xbox 360 Controller", naxes=6, nbuttons=11, trigger_axes=(2, 5)):
        lines += [(t, (0, 0, 0)) for t in GamepadDevice().help_lines()]
    fitted = window.fit_lines(lines)
    assert all(window.font.size(t)[0] <= window.text_width for t, _ in fitted)
    words = " ".join(t for t, _ in lines).split()
    assert " ".join(t for t, _ in fitted).split() == words  # wrapped, nothing lost
    assert window.fit_lines([("x" * 200, (0, 0, 0))])[0][0].endswith("...")
    window.close()


@pytest.mark.parametrize("head, options", [("gaussian", {}), ("autoregressive", {"action_horizon": 8, "exec_horizon": 4}),
                                           ("lstm", {}), ("cvae", {"action_horizon": 6, "exec_horizon": 3})])
def test_background_planner_gives_the_synchronous_actions(head, options):
    """For every kind of head (single step, chunked, recurrent) the actions computed on the thread are
    the synchronous policy's, a reset in the middle included, and every one came from a prefetch."""
    import copy

    import torch

    from takeover.policies.background import BackgroundPlanner
    from synthetic import bimodal, build

    obs, actions = bimodal(64, action_dim=7)
    torch.manual_seed(0)
    reference = build(head, obs, actions, **options).eval()
    planner = BackgroundPlanner(copy.deepcopy(reference))
    rng = np.random.default_rng(1)
    reference.reset()
    planner.reset()
    for i in range(14):
        if i == 7:  # a hand-back: both start over
            reference.reset()
            planner.reset()
        o = rng.normal(size=3).astype(np.float32)
        planner.prefetch(o)
        threaded = planner.act(o)
        np.testing.assert_allclose(threaded, reference.act(o), atol=1e-6)
    assert planner.prefetched == 14 and planner.synchronous == 0
    planner.close()


@pytest.mark.slow
@pytest.mark.alone  # its retrain runs at nice 19: beside a busy xdist worker it would get ~1.5% of a core
def test_background_retrain_swaps_the_policy_between_episodes_without_blocking_frames(small_lift, tmp_path, headless):
    demos, policy = small_lift
    cfg = DaggerConfig(data=str(demos), policy=str(policy), out=str(tmp_path / "run"), labeller="human",
                       retrain_every=1, train_overrides={"steps": 30, "threads": 1})
    pygame.display.init()
    pad = VirtualJoystick().attach()
    record = {"during": [], "before": [], "loaded_in_episode": None}

    def drive(session):
        live = session.live
        pad.set_button(START, True)
        session.frame()
        pad.set_button(START, False)
        started = time.monotonic()
        pacer = Pacer(session.period)  # paced as the window's own loop is (the retrain gets the idle time)
        while len(live.state["checkpoints"]) < 2 and time.monotonic() - started < 240:
            if session.state != RECORDING:  # a new attempt waits for the start control
                pad.set_button(START, True)
                session.frame()
                pad.set_button(START, False)
                pacer.wait()
                continue
            training = live.retrain.running
            policy_before = session.planner.policy
            session.frame()
            pacer.wait()
            if training and live.retrain.running:
                record["during"].append(session.result.frame_ms[-1])
            elif not training and not live.retrain.running and len(live.state["checkpoints"]) == 1:
                record["before"].append(session.result.frame_ms[-1])  # the same frames with no retrain running
            if session.planner.policy is not policy_before:
                record["loaded_in_episode"] = session.steps  # swapped: the new attempt has not stepped yet
        record["rounds"] = len(live.state["checkpoints"])

    try:
        state = run_live(DaggerRun(cfg), GamepadDevice(), session_config(realtime=True), drive=drive)
    finally:
        pad.detach()
    assert record["rounds"] == 2, "the retrained policy was never swapped in"
    assert record["loaded_in_episode"] == 0  # between episodes, never mid-attempt
    frames = np.array(record["during"])
    # The UI does not wait for training: the window kept stepping while the retrain ran (an in-process
    # retrain would leave no frame here). How long those frames take against frames with no retrain, and
    # the recording loop's 50 ms p95 bar, depend on the host's load: benchmarks/live_takeover.py measures
    # them (tests do not time things; the numbers are printed for the log only).
    assert len(frames) >= 40, len(frames)
    p95 = float(np.percentile(frames, 95))
    before = np.array(record["before"])
    print(f"\nframe time with no retrain: p50 {np.median(before):.1f} ms, p95 {np.percentile(before, 95):.1f} ms "
          f"({len(before)} frames); during the background retrain: p50 {np.median(frames):.1f} ms, p95 {p95:.1f} ms, "
          f"max {frames.max():.1f} ms ({len(frames)} frames)")
    assert state["rounds"][-1]["round"] == 1 and state["rounds"][-1]["eval_episodes"] == 0
    assert (tmp_path / "run" / "round_1" / "train" / "checkpoints" / "best.pt").is_file()
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Policy swaps (a retrained policy loaded between attempts): 1." in report, report
    assert "| 2 | `round_1/best.pt` |" in report, report
    saved = json.loads((tmp_path / "run" / "dagger.json").read_text())
    assert saved["checkpoints"][-1].endswith("round_1/train/checkpoints/best.pt")
    with DemoReader(tmp_path / "run" / "data.hdf5") as r:  # every attempt saved ran with the round-1 policy
        rounds = {int(r.attrs(d)["round"]) for d in r.demos if r.attrs(d).get("source") == "dagger"}
    assert rounds == {1}, rounds


LIVE_SCRIPT = textwrap.dedent("""
    import sys, time
    from takeover.correction.dagger import DaggerConfig, DaggerRun
    from takeover.correction.live import run_live
    from takeover.teleop import ActionGains
    from takeover.teleop._pygame import pygame
    from takeover.teleop.gamepad import GamepadDevice
    from takeover.teleop.session import SessionConfig
    from takeover.teleop.virtual_joystick import VirtualJoystick

    demos, policy, out, resume, episodes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1", int(sys.argv[5])
    pygame.display.init()
    pad = VirtualJoystick().attach()

    def drive(session):
        while not session.finished:
            if session.state.value == "ready":
                pad.set_button(6, True)
                session.frame()
                pad.set_button(6, False)
            pad.set_axis(1, 0.5 if session.steps % 20 < 6 else 0.0)  # the person takes over now and then
            session.frame()

    run = DaggerRun(DaggerConfig(data=demos, policy=policy, out=out, labeller="human"), resume=resume)
    run_live(run, GamepadDevice(), SessionConfig(realtime=False, render_size=32, window_size=(96, 96),
             episodes=episodes), drive=drive)
""")


@pytest.mark.slow
def test_kill_minus_9_of_a_live_session_keeps_saved_episodes_and_resume_continues(small_lift, tmp_path):
    demos, policy = small_lift
    script = tmp_path / "live.py"
    script.write_text(LIVE_SCRIPT)
    out = tmp_path / "run"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1")
    kill_after_saves([sys.executable, str(script), str(demos), str(policy), str(out), "0", "0"], out / "data.hdf5",
                     env=env)
    with DemoReader(out / "data.hdf5") as r:
        saved = [d for d in r.demos if r.attrs(d).get("source") == "dagger"]
        for d in saved:
            ep = r.episode(d)  # intact: opens and validates
            assert len(ep) == HORIZON and 0 < ep.extras["interventions"].sum() < len(ep)
        before = sorted(int(r.attrs(d)["seed"]) for d in saved)
    assert len(saved) >= 2 and before == list(range(3_000_000, 3_000_000 + len(saved)))

    resumed = subprocess.run([sys.executable, str(script), str(demos), str(policy), str(out), "1", "1"], env=env,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with DemoReader(out / "data.hdf5") as r:
        seeds = sorted(int(r.attrs(d)["seed"]) for d in r.demos if r.attrs(d).get("source") == "dagger")
        splits = r.splits
        dagger_names = [d for d in r.demos if r.attrs(d).get("source") == "dagger"]
    assert seeds == list(range(3_000_000, 3_000_000 + len(saved) + 1))  # continued with the next start
    # every episode trains, those saved before the kill included (folded into train on resume)
    assert sorted(splits["train"]) == sorted(dagger_names + ["demo_1"]) and splits["valid"] == ["demo_0"]
    assert json.loads((out / "dagger.json").read_text())["live"]["saved"] >= 1
