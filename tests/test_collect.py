"""takeover collect: scripted demonstrations, seeds, append, DART noise, bad input."""
import numpy as np
import pytest

from takeover.cli.app import run_cli
from takeover.datasets import DemoReader


def cli(*args):
    return run_cli([str(a) for a in args])


def test_collect_append_continues_seeds_and_refuses_overwrite(tmp_path, capsys, monkeypatch):
    import h5py

    from takeover.sim import env as env_module

    monkeypatch.setattr(env_module, "_SEEN_LAYOUTS", {})  # as in a fresh process: no env built yet
    out = tmp_path / "d.hdf5"
    assert cli("collect", "--task", "Lift", "-n", 2, "-o", out, "--workers", 1) == 0
    with h5py.File(out, "r") as f:  # the object layout is stored, so training never builds a simulator
        assert '"cube_pos"' in f["data"].attrs["takeover_object_layout"]
    before = out.read_bytes()
    assert cli("collect", "--task", "Lift", "-n", 1, "-o", out) == 2
    assert "exists; pass --append" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert cli("collect", "--task", "Lift", "-n", 1, "-o", out, "--append", "--workers", 1) == 0
    with DemoReader(out) as r:
        seeds = [r.attrs(d)["seed"] for d in r.demos]
        assert seeds == [0, 1, 2]
        assert all(r.attrs(d)["success"] and r.attrs(d)["source"] == "expert" for d in r.demos)
    assert cli("collect", "--task", "Stack", "-n", 1, "-o", out, "--append") == 2
    assert "Lift" in capsys.readouterr().err
    assert cli("collect", "--task", "Lfit", "-n", 1, "-o", tmp_path / "x.hdf5") == 2
    err = capsys.readouterr().err
    assert "unknown task 'Lfit'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_dart_noise_keeps_clean_labels(tmp_path):
    from takeover.sim import EnvSpec, make_env
    from takeover.sim.experts import make_expert

    out = tmp_path / "noisy.hdf5"
    assert cli("collect", "--task", "Lift", "-n", 2, "-o", out, "--noise", "0.1", "--workers", 1, "--keep-failed") == 0
    with DemoReader(out) as r:
        episodes = [r.episode(d) for d in r.demos]
    diff = np.concatenate([ep.extras["executed_actions"] - ep.actions for ep in episodes])
    arm = diff[:, :6]
    assert 0.08 < arm.std() < 0.115  # requested 0.1 (clipping at +-1 trims a little)
    assert np.all(diff[:, 6] == 0)  # gripper untouched by default
    # the label is the expert's clean command: re-run the episode by executing the recorded noisy
    # actions (the simulator is deterministic, so the same states come back, gripper ramp included;
    # executed actions are stored as float32, hence the small tolerances)
    # and a fresh expert must say exactly the recorded labels along the way
    env = make_env(EnvSpec(task="Lift"))
    expert = make_expert("Lift")
    ep = episodes[0]
    obs = env.reset(seed=0)
    expert.reset(env)
    for t in range(len(ep)):
        np.testing.assert_allclose(env.get_state(), ep.states[t], atol=1e-5, err_msg=f"state {t}")
        np.testing.assert_allclose(expert.act(obs, env), ep.actions[t], atol=1e-3, err_msg=f"step {t}")
        obs, *_ = env.step(ep.extras["executed_actions"][t])
