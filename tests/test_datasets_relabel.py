"""Data from other robosuite versions: imports by default with the action drift reported, `--strict`
refuses it, relabelling recovers actions with a known ground truth, robosuite 1.0 layouts import or
are refused with the reason."""
import json
import re

import h5py
import numpy as np
import pytest

from takeover.cli.app import run_cli
from takeover.datasets import DemoReader, import_robosuite
from takeover.sim import EnvSpec, make_env

# robosuite 1.0's OSC_POSE config (controllers/config/osc_pose.json of that release): flat, other keys
OSC_1_0 = {"type": "OSC_POSE", "input_max": 1, "input_min": -1, "output_max": [0.05, 0.05, 0.05, 0.5, 0.5, 0.5],
           "output_min": [-0.05, -0.05, -0.05, -0.5, -0.5, -0.5], "kp": 150, "damping": 1, "impedance_mode": "fixed",
           "kp_limits": [0, 300], "damping_limits": [0, 10], "position_limits": None, "orientation_limits": None,
           "uncouple_pos_ori": True, "control_delta": True, "interpolation": None, "ramp_ratio": 0.2}


def _smooth_actions(rng, steps):
    """Moderate, smooth arm commands (a person's, not saturating the torques) and a grasp halfway."""
    a, out = np.zeros(7), []
    for t in range(steps):
        a[:6] = np.clip(0.8 * a[:6] + 0.12 * rng.normal(size=6), -0.5, 0.5)
        a[6] = 1.0 if t >= steps // 2 else -1.0
        out.append(a.copy())
    return np.array(out)


def _record(spec, actions, seed):
    env = make_env(spec, seed=0)
    env.reset(seed=seed)
    states = []
    for a in actions:
        states.append(env.get_state())
        env.step(a)
    xml = env.model_xml()
    env.close()
    return np.array(states), xml


def _write_raw(path, demos, env_info):
    """robosuite's collect_human_demonstrations.py layout: data/demo_<i>/{states, actions}, model_file."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        for i, (states, actions, xml) in enumerate(demos, start=1):
            g = data.create_group(f"demo_{i}")
            g.attrs["model_file"] = xml
            g.create_dataset("states", data=states)
            g.create_dataset("actions", data=actions)
        data.attrs.update(date="1-1-2024", time="0:0:0", repository_version="1.4.1", env="Lift",
                          env_info=json.dumps(env_info))
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Two Lift demos under today's controller and one under another (twice the position gain)."""
    rng = np.random.default_rng(3)
    actions = [_smooth_actions(rng, 16), _smooth_actions(rng, 12)]
    today = [_record(EnvSpec(task="Lift"), a, seed) for a, seed in zip(actions, (5, 6))]
    stiff = _record(EnvSpec(task="Lift", controller_overrides={"kp": 300}), actions[0], 5)
    return {"actions": actions, "today": today, "stiff": stiff, "root": tmp_path_factory.mktemp("relabel")}


def test_actions_of_another_controller_import_by_default_with_the_drift_reported(recorded, tmp_path, capsys):
    states, xml = recorded["stiff"]
    raw = _write_raw(tmp_path / "stiff.hdf5", [(states, recorded["actions"][0], xml)],
                     {"env_name": "Lift", "robots": ["Panda"], "controller_configs": OSC_1_0})
    assert run_cli(["data", "import-robosuite", str(raw), "-o", str(tmp_path / "in.hdf5")]) == 0
    out = capsys.readouterr().out
    assert "arm joint" in out and "%" in out and "takeover data relabel" in out
    row = next(line for line in out.splitlines() if "demo_1" in line)
    qpos_rel, qvel_rel = (float(x) / 100 for x in re.findall(r"([0-9.]+)%", row)[:2])
    assert qpos_rel > 0.05 and qvel_rel > qpos_rel  # stiffer gains: faster, overshooting
    with DemoReader(tmp_path / "in.hdf5") as r:
        np.testing.assert_array_equal(r.episode("demo_0").states, states)
    # relabelled for today's controller: the one-step error drops, the file keeps the originals
    assert run_cli(["data", "relabel", str(tmp_path / "in.hdf5"), "-o", str(tmp_path / "relabelled.hdf5"),
                    "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "relabelling: 16 steps" in out and "simulated steps" in out
    with DemoReader(tmp_path / "relabelled.hdf5") as r:
        ep = r.episode("demo_0")
        np.testing.assert_allclose(ep.extras["original_actions"], recorded["actions"][0].astype(np.float32))
        assert not np.allclose(ep.actions, ep.extras["original_actions"])
    code = run_cli(["data", "import-robosuite", str(raw), "-o", str(tmp_path / "strict.hdf5"), "--strict"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "today's controller" in err and "demo_1" in err
    assert not (tmp_path / "strict.hdf5").exists()
    # today's own actions are consistent: strict accepts them
    states, xml = recorded["today"][0]
    ok = _write_raw(tmp_path / "ok.hdf5", [(states, recorded["actions"][0], xml)],
                    {"env_name": "Lift", "robots": ["Panda"], "controller_configs": OSC_1_0})
    report = import_robosuite(ok, tmp_path / "ok_in.hdf5", strict=True)
    assert report["consistency"][0]["qpos_rel"] < 1e-5


def test_relabelling_recovers_the_true_actions_of_perturbed_ones(recorded, tmp_path):
    rng = np.random.default_rng(0)
    truth = recorded["actions"][1:]
    perturbed = [np.clip(a + np.concatenate([rng.normal(0, 0.15, (len(a), 6)), np.zeros((len(a), 1))], axis=1), -1, 1)
                 for a in truth]
    raw = _write_raw(tmp_path / "perturbed.hdf5", [(s, p, x) for (s, x), p in zip(recorded["today"][1:], perturbed)],
                     {"env_name": "Lift", "robots": ["Panda"], "controller_configs": OSC_1_0})
    report = import_robosuite(raw, tmp_path / "relabelled.hdf5", relabel=True, workers=1)
    with DemoReader(tmp_path / "relabelled.hdf5") as r:
        for name, true, pert in zip(r.demos, truth, perturbed):
            ep = r.episode(name)
            np.testing.assert_allclose(ep.extras["original_actions"], pert.astype(np.float32))
            err = np.abs(ep.actions[:-1, :6] - true[:-1, :6]).max(axis=1)  # the last step has no next state
            before = np.abs(pert[:-1, :6] - true[:-1, :6]).max(axis=1)
            # a few contact steps can stay ambiguous
            assert np.median(err) < 0.01 and np.median(err) < np.median(before) / 10 and np.mean(err < 0.05) >= 0.8, err
            np.testing.assert_array_equal(ep.actions[:-1, 6], true[:-1, 6])
    for row in report["relabel"]["demos"]:
        assert row["after"]["qpos_rel"] < row["before"]["qpos_rel"] / 5
        assert row["open_loop_after"]["joint_error_mean"] < row["open_loop_before"]["joint_error_mean"] / 3


def _old_names(xml):
    return xml.replace("gripper0_right_finger_joint", "gripper0_finger_joint").replace("cube_joint0", "cube_jnt0")


def test_robosuite_1_0_layout_imports_on_todays_model_or_is_refused_with_the_reason(recorded, tmp_path, capsys):
    (s1, x1), (s2, x2) = recorded["today"]
    env_info = {"env_name": "Lift", "robots": ["Panda"], "controller_configs": OSC_1_0}
    raw = _write_raw(tmp_path / "v10.hdf5", [(s1, recorded["actions"][0], _old_names(x1)),
                                             (s2, recorded["actions"][1], "model.xml")], env_info)
    report = import_robosuite(raw, tmp_path / "v10_in.hdf5")
    assert report["demos"] == 2 and report["model"] == "today"
    with DemoReader(tmp_path / "v10_in.hdf5") as r:
        np.testing.assert_array_equal(r.episode("demo_0").states, s1)
    # a joint today's model does not have: refused, naming it
    extra = _old_names(x1).replace("<joint name=\"cube_jnt0\"", "<joint name=\"lid_jnt0\" type=\"hinge\"/><joint name=\"cube_jnt0\"", 1)
    assert "lid_jnt0" in extra
    bad = _write_raw(tmp_path / "v10_bad.hdf5", [(s1, recorded["actions"][0], extra)], env_info)
    code = run_cli(["data", "import-robosuite", str(bad), "-o", str(tmp_path / "bad_in.hdf5")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "lid_jnt0" in err and "older robosuite layout" in err


def test_env_args_that_disagree_with_takeover_spec_or_do_not_parse_get_a_warning(recorded, tmp_path, caplog):
    states, xml = recorded["today"][0]
    raw = _write_raw(tmp_path / "r.hdf5", [(states, recorded["actions"][0], xml)],
                     {"env_name": "Lift", "robots": ["Panda"], "controller_configs": OSC_1_0})
    out = tmp_path / "ours.hdf5"
    import_robosuite(raw, out, check_steps=False)
    with caplog.at_level("WARNING"):
        DemoReader(out).close()
    assert not [r for r in caplog.records if "env_args" in r.getMessage()]
    for value, says in ((json.dumps({"env_name": "Stack", "type": 1, "env_kwargs": {}}), "disagree on environment"),
                        ("{not json", "not readable JSON")):
        with h5py.File(out, "r+") as f:
            f["data"].attrs["env_args"] = value
        caplog.clear()
        with caplog.at_level("WARNING"):
            with DemoReader(out) as r:
                assert r.spec.task == "Lift"
        assert any(says in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    caplog.clear()
    with caplog.at_level("WARNING"):  # training and evaluation reopen a file many times: once is enough
        DemoReader(out).close()
    assert not [r for r in caplog.records if "env_args" in r.getMessage()]


def test_evaluation_horizon_covers_the_slowest_training_demo():
    from takeover.policies.evaluate import horizon_for

    assert horizon_for(EnvSpec(task="Lift"), 120) == 300  # scripted demos: the task's own
    assert horizon_for(EnvSpec(task="Lift"), 1143) == 1450  # slow human demos: 1.25x, rounded up to 50
    assert horizon_for(EnvSpec(task="PickPlace"), 200) == 1000
