"""Fast unit tests of the teleop building blocks: action map, input log, noise, gamepad mappings."""
import json

import numpy as np
import pytest

from takeover.sim.errors import SimError
from takeover.sim.noise import ActionNoise
from takeover.teleop import ActionGains, DeviceState, GripperLatch, TeleopError, to_action
from takeover.teleop.mapping import Tuning, load_mappings, parse_mappings, select_mapping
from takeover.teleop.input_log import InputLogDevice


def test_zero_state_holds_the_pose_and_keeps_the_gripper_open():
    action, latch = to_action(DeviceState())
    assert action.shape == (7,)
    assert np.all(action[:6] == 0.0)
    assert action[6] == -1.0 and latch.command == -1.0


def test_gains_precision_and_clipping():
    gains = ActionGains(translation=0.5, rotation=0.4, precision_scale=0.25)
    a, _ = to_action(DeviceState(translation=(1, -1, 0.5), rotation=(0, 1, -1)), gains)
    assert np.allclose(a[:6], [0.5, -0.5, 0.25, 0, 0.4, -0.4])
    slow, _ = to_action(DeviceState(translation=(1, 0, 0), precision=True), gains)
    assert slow[0] == pytest.approx(0.125)
    big, _ = to_action(DeviceState(translation=(1, 0, 0)), ActionGains(translation=5.0))
    assert big[0] == 1.0


def test_gripper_toggle_and_hold_modes():
    toggle = ActionGains(gripper_mode="toggle")
    latch = GripperLatch()
    seq = []
    for g in (1, 1, 0, 0, 1, 0):
        a, latch = to_action(DeviceState(gripper=g), toggle, latch)
        seq.append(a[6])
    assert seq == [1, 1, 1, 1, -1, -1]  # flips on each press, not while held
    hold = ActionGains(gripper_mode="hold")
    latch = GripperLatch()
    seq = []
    for g in (0, 1, 1, 0):
        a, latch = to_action(DeviceState(gripper=g), hold, latch)
        seq.append(a[6])
    assert seq == [-1, 1, 1, -1]
    with pytest.raises(TeleopError):
        ActionGains(gripper_mode="sticky")


def test_input_log_row_round_trip_and_replay_device():
    s = DeviceState((0.1, -0.2, 0.3), (0.0, 0.5, -0.5), 1.0, True, frozenset({"save", "take_over"}))
    back = DeviceState.from_row(s.to_row(), s.event_mask())
    assert np.allclose(back.to_row(), s.to_row()) and back.events == s.events
    dev = InputLogDevice.from_states([s, DeviceState()])
    first = dev.poll()
    assert first.events == s.events | {"start"} and np.allclose(first.to_row(), s.to_row())
    assert not dev.poll().moving
    assert dev.poll().has("save") and dev.done


def test_noise_option_forms(tmp_path):
    n = ActionNoise.from_option("0.1", 7, seed=0)
    assert np.allclose(n.std, [0.1] * 6 + [0.0])  # the gripper is left clean unless asked
    assert np.allclose(ActionNoise.from_option("0.1", 7, noise_gripper=True).std, 0.1)
    assert np.allclose(ActionNoise.from_option("0,0,0.2,0,0,0,0", 7).std, [0, 0, 0.2, 0, 0, 0, 0])
    cov = np.diag([0.01] * 7)
    cov[0, 1] = cov[1, 0] = 0.005
    np.save(tmp_path / "cov.npy", cov)
    assert np.allclose(ActionNoise.from_option(str(tmp_path / "cov.npy"), 7).cov, cov)
    (tmp_path / "std.json").write_text(json.dumps([0.05] * 7))
    assert np.allclose(ActionNoise.from_option(str(tmp_path / "std.json"), 7).std, 0.05)
    for bad in ("lots", "0.1,0.2", str(tmp_path / "missing.npy")):
        with pytest.raises(SimError):
            ActionNoise.from_option(bad, 7)
    with pytest.raises(SimError):
        ActionNoise(np.array([[1.0, 2.0], [2.0, 1.0]]))  # not positive semi-definite


def test_noise_is_seeded_clipped_and_has_the_requested_covariance():
    cov = np.array([[0.04, 0.02], [0.02, 0.09]])
    a, b = ActionNoise(cov, seed=3), ActionNoise(cov, seed=3)
    draws = np.stack([a.sample() for _ in range(20000)])
    assert np.allclose(draws[:5], np.stack([b.sample() for _ in range(5)]))
    assert np.allclose(np.cov(draws.T), cov, atol=0.006)
    assert np.all(np.abs(ActionNoise.from_std([5.0, 5.0], seed=0).apply([0.9, -0.9])) <= 1.0)


def test_builtin_mappings_match_known_controllers_and_fall_back_to_generic():
    maps = load_mappings()
    assert {m.name for m in maps} >= {"xbox", "playstation", "playstation-evdev", "generic"}
    assert select_mapping("Xbox 360 Controller", maps) == (next(m for m in maps if m.name == "xbox"), True)
    assert select_mapping("PS5 Controller", maps)[0].name == "playstation"
    assert select_mapping("Sony Interactive Entertainment Wireless Controller", maps)[0].name == "playstation-evdev"
    mapping, known = select_mapping("Acme Joypad 3000", maps)
    assert mapping.name == "generic" and not known


def test_user_mapping_file_extends_and_overrides(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"mappings": [
        {"name": "acme", "match": ["acme"], "deadzone": 0.2, "controls": {"x": "-axis1", "gripper": "button2"}},
        {"name": "xbox", "match": ["xbox"], "controls": {"x": "axis0"}},
    ]}, indent=2))
    maps = load_mappings(path)
    acme, known = select_mapping("ACME joypad", maps)
    assert known and acme.tuning.deadzone == 0.2 and acme.controls["x"][0].sign == -1
    assert select_mapping("Xbox One", maps)[0].controls["x"][0].index == 0  # the user's xbox replaces the built-in
    assert [m.name for m in maps].count("xbox") == 1


@pytest.mark.parametrize("text, line, words", [
    ('{\n  "mappings": [\n    {"name": "a", "controls": {"x": "axis1",}}\n  ]\n}\n', 3, "invalid JSON"),
    ('{\n  "mappings": [\n    {"name": "a",\n     "controls": {\n       "x": "axis1",\n       "jump": "button0"\n     }}\n  ]\n}\n',
     6, "unknown command 'jump'"),
    ('{\n  "mappings": [\n    {"name": "a", "controls": {\n      "x": "stick1"\n    }}\n  ]\n}\n', 4, "bad source 'stick1'"),
    ('{\n  "mappings": [\n    {"name": "a",\n     "deadzone": 2,\n     "controls": {}}\n  ]\n}\n', 4, "deadzone"),
])
def test_mapping_errors_name_the_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(TeleopError) as err:
        load_mappings(path)
    msg = str(err.value)
    assert f"{path} line {line}" in msg and words in msg and "\n" not in msg


def test_response_curve_deadzone_and_expo():
    t = Tuning(deadzone=0.1, sensitivity=1.0, expo=0.5)
    assert t.shape(0.05) == 0.0 and t.shape(-0.1) == 0.0
    assert t.shape(1.0) == pytest.approx(1.0) and t.shape(-1.0) == pytest.approx(-1.0)
    mid = t.shape(0.55)  # halfway past the deadzone: 0.5*0.5 + 0.5*0.125
    assert mid == pytest.approx(0.3125)
    assert Tuning(deadzone=0.0, sensitivity=0.5, expo=0.0).shape(0.8) == pytest.approx(0.4)
    assert parse_mappings('{"mappings": []}') == []


class _ClosedGripperPolicy:
    """A learner that drives with the gripper closed (holding the cube)."""

    def reset(self, env):
        pass

    def act(self, obs, env):
        return np.array([0.1, 0, 0, 0, 0, 0, 1.0])


def _takeover_gripper(mode: str, trigger_per_step: list[float]) -> list[float]:
    """The executed gripper command per step: the policy drives (gripper closed) for 3 steps, then the
    person pushes the stick with the gripper control as given."""
    from takeover.sim.agents import GatedTakeover
    from takeover.teleop.device_agent import DeviceAgent
    from takeover.teleop.takeover_control import HumanTakeover

    agent = DeviceAgent(device=None, gains=ActionGains(gripper_mode=mode))
    human = HumanTakeover(agent, stick_takeover=True)
    gated = GatedTakeover(human.teacher, _ClosedGripperPolicy(), human.gate)
    executed = []
    for _ in range(3):
        agent.state = DeviceState()
        executed.append(float(gated.act(None, None).action[6]))
    for trigger in trigger_per_step:
        agent.state = DeviceState(translation=(0.5, 0.0, 0.0), gripper=trigger)
        executed.append(float(gated.act(None, None).action[6]))
    return executed


def test_at_take_over_the_gripper_is_what_the_persons_control_says():
    from takeover.teleop.takeover_control import gripper_help

    # a held control (the pad's trigger): released at take-over opens the gripper the policy had closed,
    # squeezed keeps it closed; no squeeze-and-release is needed to open it
    assert _takeover_gripper("hold", [0.0, 0.0]) == [1.0, 1.0, 1.0, -1.0, -1.0]
    assert _takeover_gripper("hold", [1.0, 1.0, 0.0]) == [1.0, 1.0, 1.0, 1.0, 1.0, -1.0]
    # a toggle (the keyboard's Space) has no position: the gripper stays as the policy left it; a press flips it
    assert _takeover_gripper("toggle", [0.0, 1.0, 0.0]) == [1.0, 1.0, 1.0, 1.0, -1.0, -1.0]
    assert "held" in gripper_help("hold") and "stays" in gripper_help("toggle")
