"""Object-centric demo generation (correction/generation.py, sim/subtasks.py, `takeover augment
--method generate`): boundaries on demos whose phases are known, the rigid transform in simulation,
a small generation run that trains, kill -9 and resume, and the bad inputs."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from kill9 import kill_after_saves
from takeover.cli.app import run_cli

SOURCES = 4


class _PhaseLog:
    """The scripted expert, remembering the phase it acted in at every step."""

    def __init__(self, task):
        from takeover.sim.experts import make_expert

        self.expert = make_expert(task, seed=0)
        self.phases = []

    def reset(self, env):
        self.expert.reset(env)
        self.phases = []

    def act(self, obs, env):
        action = self.expert.act(obs, env)
        self.phases.append(self.expert.phase)
        return action


@pytest.fixture(scope="module")
def lift_sources(tmp_path_factory):
    """SOURCES scripted Lift demos (seeds 0..) and, per demo, the phase of every step."""
    from takeover.datasets import DemoWriter, EpisodeRecorder
    from takeover.sim import EnvSpec, make_env
    from takeover.sim.experts import EXPERT_SUCCESS_HOLD
    from takeover.sim.rollout import run_episode

    path = tmp_path_factory.mktemp("gen") / "sources.hdf5"
    spec = EnvSpec(task="Lift")
    env = make_env(spec)
    agent = _PhaseLog("Lift")
    phases = []
    with DemoWriter(path, spec) as w:
        for seed in range(SOURCES):
            res = run_episode(env, agent, seed, success_hold=EXPERT_SUCCESS_HOLD, record=EpisodeRecorder,
                              episode_attrs={"source": "expert"})
            assert res.success
            w.save(res.episode)
            phases.append(list(agent.phases))
    env.close()
    return path, phases


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_boundaries_land_at_the_experts_phase_changes(lift_sources):
    from takeover.correction.segments import load_library

    path, phases = lift_sources
    lib = load_library(path)
    assert lib.demos == [f"demo_{i}" for i in range(SOURCES)] and not lib.left_out
    for i, name in enumerate(lib.demos):
        grasp_end, lift_end = lib.ends[name]
        carry = phases[i].index("carry")  # the expert holds the cube closed and starts lifting here
        assert abs(grasp_end - carry) <= 4, (name, grasp_end, carry)
        # the scripted demo stops once success has held 5 steps: the lift ends at (or one step past) its end
        assert len(phases[i]) - 1 <= lift_end <= len(phases[i]), (name, lift_end, len(phases[i]))
        segs = [lib.segments[k][i] for k in range(2)]
        assert len(segs[0]) == grasp_end and len(segs[1]) == lift_end - grasp_end
        assert (segs[0].gripper[:5] < 0).all() and (segs[1].gripper > 0).all()  # open approach, closed lift


def test_an_override_file_replaces_the_found_boundaries(lift_sources, tmp_path):
    from takeover.correction.errors import CorrectionError
    from takeover.correction.segments import load_library

    path, phases = lift_sources
    fix = tmp_path / "fix.json"
    fix.write_text(json.dumps({"demo_1": [20, len(phases[1])]}))
    lib = load_library(path, fix)
    assert lib.ends["demo_1"] == [20, len(phases[1])] and len(lib.segments[0][1]) == 20
    fix.write_text(json.dumps({"demo_1": [50, 20]}))
    with pytest.raises(CorrectionError, match="must increase"):
        load_library(path, fix)

    # stored in the file: `takeover data segment` (with the correction), then info and generation see them
    import shutil

    from takeover.datasets import info

    copy = tmp_path / "sources.hdf5"
    shutil.copy(path, copy)
    fix.write_text(json.dumps({"demo_1": [20, len(phases[1])]}))
    assert run_cli(["data", "segment", str(copy), "--override", str(fix)]) == 0
    ends = info(copy)["subtask_ends"]
    assert len(ends) == SOURCES and ends["demo_1"] == [20, len(phases[1])]
    assert ends["demo_0"] == load_library(path).ends["demo_0"]
    assert load_library(copy).ends["demo_1"] == [20, len(phases[1])]


def test_a_segment_replayed_on_a_moved_cube_ends_at_the_same_grasp_relative_to_it(lift_sources):
    """Put the cube of source demo 0's scene elsewhere by a known turn and shift, replay the grasp
    segment through the transform, and compare the gripper's pose in the cube's frame with the source's."""
    from takeover.correction.generation import GenerationAgent, pose_to_action
    from takeover.correction.generation_config import GenerateConfig
    from takeover.correction.segments import load_library
    from takeover.sim import make_env
    from takeover.sim.experts.base import eef_mat, eef_pos, rot_z, rotvec_between
    from takeover.sim.subtasks import set_raw_state

    path, _ = lift_sources
    lib = load_library(path)
    lib.segments = [[lib.segments[0][0]], [lib.segments[1][0]]]  # only demo 0's segments to choose from
    seg = lib.segments[0][0]
    env = make_env(lib.spec)
    with h5py.File(path, "r") as f:
        states = f["data/demo_0/states"][()]
    # the source's grasp, in the cube's frame
    set_raw_state(env, states[len(seg)])
    cube = lib.subtasks[0].object_pose
    c_pos, c_mat = cube(env)
    want_pos, want_mat = c_mat.T @ (eef_pos(env) - c_pos), c_mat.T @ eef_mat(env)

    env.reset(seed=0)  # the source's scene; then the cube turned by 0.4 rad and moved 6 cm / -4 cm
    _, reset_mat = cube(env)
    joint = env.raw.cube.joints[0]
    qpos = env.raw.sim.data.get_joint_qpos(joint).copy()
    turn = np.array([np.cos(0.2), 0.0, 0.0, np.sin(0.2)])  # wxyz, 0.4 rad about z
    w1, v1 = turn[0], turn[1:]
    w2, v2 = qpos[3], qpos[4:]
    qpos[:3] += [0.06, -0.04, 0.0]
    qpos[3:] = np.concatenate([[w1 * w2 - v1 @ v2], w1 * v2 + w2 * v1 + np.cross(v1, v2)])
    env.raw.sim.data.set_joint_qpos(joint, qpos)
    env.raw.sim.forward()
    moved_pos, moved_mat = cube(env)
    np.testing.assert_allclose(moved_mat, rot_z(0.4) @ reset_mat, atol=1e-6)  # the known transform

    agent = GenerationAgent(lib, GenerateConfig(episodes=1, action_noise=0.0))
    agent.reset(env)
    agent._plan(env, 0)
    for pos, mat, grip in agent.plan:
        env.step(pose_to_action(env, pos, mat, grip))
    n_pos, n_mat = cube(env)
    got_pos, got_mat = n_mat.T @ (eef_pos(env) - n_pos), n_mat.T @ eef_mat(env)
    assert np.linalg.norm(got_pos - want_pos) < 0.01, (got_pos, want_pos)
    assert np.linalg.norm(rotvec_between(got_mat, want_mat)) < 0.1
    assert lib.subtasks[0].signal(env)  # and it holds the cube
    env.close()


@pytest.mark.slow
def test_generation_writes_successful_demos_that_train(lift_sources, tmp_path, capsys):
    path, _ = lift_sources
    before = sha(path)
    out, report = tmp_path / "gen.hdf5", tmp_path / "report.json"
    assert run_cli(["augment", str(path), "--method", "generate", "-n", "3", "-o", str(out), "--workers", "0",
                    "--report", str(report)]) == 0
    assert sha(path) == before
    stdout = capsys.readouterr().out
    assert "kept of" in stdout and "demos/min" in stdout
    rep = json.loads(report.read_text())
    assert rep["kept"] == 3 and sum(rep["failures_by_subtask"].values()) == rep["attempts"] - 3 - rep["surplus"]
    with h5py.File(out, "r", swmr=True, libver="latest") as f:  # robomimic's way of opening
        names = sorted(f["data"].keys())
        assert len(names) == 3
        for n in names:
            g = f["data"][n]
            assert g.attrs["source"] == "generated" and bool(g.attrs["success"])
            assert int(g.attrs["seed"]) >= 4_000_000  # never an evaluation start
            sources = json.loads(g.attrs["source_demos"])
            assert len(sources) == 2 and set(sources) <= {f"demo_{i}" for i in range(SOURCES)}
            ends = list(g.attrs["subtask_ends"])
            assert 0 < ends[0] < ends[1] == int(g.attrs["num_samples"])
            assert "next_obs" in g and g["executed_actions"].shape == g["actions"].shape
            assert "subtask" not in g and "source" not in g  # the per-step bookkeeping became attributes
    from takeover.datasets import info

    assert len(info(out)["subtask_ends"]) == 3
    run = tmp_path / "run"
    assert run_cli(["train", str(out), "--head", "gaussian", "--steps", "3", "--eval-episodes", "0", "--threads", "1",
                    "--out", str(run)]) == 0
    assert (run / "checkpoints" / "last.pt").exists()


@pytest.mark.slow
def test_kill_during_generation_then_resume_keeps_the_saved_demos(lift_sources, tmp_path):
    path, _ = lift_sources
    out = tmp_path / "gen.hdf5"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    cmd = [sys.executable, "-m", "takeover.cli.main", "augment", str(path), "--method", "generate", "-n", "5",
           "-o", str(out), "--workers", "0"]
    kill_after_saves(cmd, out, saves=2, env=env)
    from takeover.datasets import DemoReader

    with DemoReader(out) as r:
        saved = {r.attrs(n)["takeover_episode_id"]: r.attrs(n)["seed"] for n in r.demos}
    assert len(saved) >= 2
    assert run_cli(cmd[3:]) == 2  # the output exists: not without --resume
    assert run_cli(cmd[3:] + ["--resume"]) == 0
    with DemoReader(out) as r:
        after = {r.attrs(n)["takeover_episode_id"]: r.attrs(n)["seed"] for n in r.demos}
        assert r.pending == 0
    assert len(after) == 5 and set(saved.items()) <= set(after.items())
    assert len(set(after.values())) == 5 and min(set(after.values()) - set(saved.values())) > max(saved.values())


def _synthetic(path, task, success):
    from takeover.datasets import DemoWriter
    from takeover.datasets.episode import Episode
    from takeover.sim import EnvSpec

    obs = {"robot0_eef_pos": np.zeros((5, 3), np.float32)}
    with DemoWriter(path, EnvSpec(task=task)) as w:
        w.save(Episode(actions=np.zeros((5, 7), np.float32), states=np.zeros((5, 3)), obs=obs, next_obs=obs,
                       rewards=np.zeros(5, np.float32), dones=np.zeros(5, np.uint8), attrs={"success": success}))


def test_bad_generation_input_is_one_line_and_creates_nothing(lift_sources, tmp_path, capsys):
    path, _ = lift_sources
    out = tmp_path / "gen.hdf5"

    def refused(args, *words):
        assert run_cli(["augment", *map(str, args), "--method", "generate", "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and all(w in err for w in words), err
        assert not out.exists() and not (tmp_path / "gen.hdf5.journal").exists()

    door = tmp_path / "door.hdf5"
    _synthetic(door, "Door", True)
    refused([door, "-n", "2"], "no subtask declarations", "Lift, PickPlaceCan, NutAssemblySquare, Stack")
    failed = tmp_path / "failed.hdf5"
    _synthetic(failed, "Lift", False)
    refused([failed, "-n", "2"], "none of its 1 demos is successful")
    broken = tmp_path / "broken.hdf5"
    _synthetic(broken, "Lift", True)  # 3-value states: they cannot be set in the Lift model
    refused([broken, "-n", "2"], "states have 3 values")
    refused([path, "-n", "0"], "at least 1")
    refused([path], "needs -n")
    out.write_text("taken")
    assert run_cli(["augment", str(path), "--method", "generate", "-n", "2", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "taken"


def test_a_source_demo_without_a_grasp_is_left_out_with_a_warning(lift_sources, tmp_path, caplog):
    """A successful-looking demo whose states never show a grasp (here: a source demo cut short) is
    left out of the sources with one warning, never used."""
    from takeover.correction.segments import load_library
    from takeover.datasets import DemoReader, DemoWriter

    path, phases = lift_sources
    mixed = tmp_path / "mixed.hdf5"
    with DemoReader(path) as r, DemoWriter(mixed, r.spec) as w:
        for name in r.demos:
            ep = r.episode(name)
            if name == "demo_2":  # only the approach: no grasp to be found
                cut = phases[2].index("close")
                for key in ("actions", "states", "rewards", "dones"):
                    setattr(ep, key, getattr(ep, key)[:cut])
                ep.obs = {k: v[:cut] for k, v in ep.obs.items()}
                ep.next_obs = {k: v[:cut] for k, v in ep.next_obs.items()}
                ep.extras = {k: v[:cut] for k, v in ep.extras.items()}
            w.save(ep)
    with caplog.at_level("WARNING"):
        lib = load_library(mixed)
    assert lib.demos == ["demo_0", "demo_1", "demo_3"] and "grasp cube" in lib.left_out["demo_2"]
    assert sum("demo_2" in rec.getMessage() and "left out" in rec.getMessage() for rec in caplog.records) == 1


def test_a_humanlike_regrasp_ends_the_grasp_at_the_final_grasp(tmp_path):
    """A slow, pausing human-like Lift demo that closes on the cube, lets go, backs off and grasps
    again: the grasp subtask ends at the final grasp (the one the lift carries on from), not the first."""
    from takeover.correction.segments import load_library
    from takeover.datasets import DemoWriter, EpisodeRecorder
    from takeover.sim import EnvSpec, make_env
    from takeover.sim.experts import EXPERT_SUCCESS_HOLD
    from takeover.sim.experts.humanlike import HumanLike
    from takeover.sim.rollout import run_episode

    spec, path = EnvSpec(task="Lift"), tmp_path / "humanlike.hdf5"
    env = make_env(spec)
    agent = HumanLike("Lift", 4, regrasp=True)  # seed 4: a short demo (~400 steps)
    try:
        res = run_episode(env, agent, 4, max_steps=800, success_hold=EXPERT_SUCCESS_HOLD, record=EpisodeRecorder,
                          episode_attrs={"source": "human"})
    finally:
        env.close()
    assert res.success
    phases = agent.phases
    first_hold, released = phases.index("hold"), agent.released_at
    final_carry = phases.index("carry", released)  # the expert holds the cube closed again and lifts
    assert phases.count("idle") >= 20 and first_hold < released < final_carry  # paused; held, let go, regrasped
    with DemoWriter(path, spec) as w:
        w.save(res.episode)
    grasp_end, lift_end = load_library(path).ends["demo_0"]
    assert abs(grasp_end - final_carry) <= 4, (grasp_end, first_hold, released, final_carry)
    assert final_carry < lift_end <= len(phases)


def test_generated_episodes_may_outlast_the_horizon_of_slow_sources():
    """Slow human-like sources (PickPlaceCan: 631-1,045 steps) replay at their own pace: the generated
    episodes get twice the longest source, not the task's 400-step horizon; fast sources keep it."""
    from takeover.correction.generation import episode_spec
    from takeover.correction.segments import Library
    from takeover.sim import EnvSpec
    from takeover.sim.subtasks import subtasks_for

    spec = EnvSpec(task="PickPlaceCan")
    slow = Library("PickPlaceCan", spec, subtasks_for("PickPlaceCan"), [[], []],
                   ends={"demo_0": [300, 733], "demo_1": [500, 1045]})
    assert spec.max_steps == 400 and episode_spec(slow).max_steps == 2090
    fast = Library("PickPlaceCan", spec, subtasks_for("PickPlaceCan"), [[], []], ends={"demo_0": [50, 120]})
    assert episode_spec(fast) is spec
