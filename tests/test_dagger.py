"""DAgger with the scripted expert: schedules, bad input, and a weak Lift policy that improves."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from takeover.cli.app import run_cli
from takeover.correction import BetaSchedule, CorrectionError
from takeover.datasets import DemoReader
from takeover.policies.train import TrainConfig, train
from takeover.sim import EnvSpec
from takeover.datasets.scripted_collection import collect_scripted

from kill9 import kill_after_saves


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_beta_schedules():
    assert [BetaSchedule.parse("linear:4")(k) for k in range(6)] == [1, 0.75, 0.5, 0.25, 0, 0]
    np.testing.assert_allclose([BetaSchedule.parse("exp:0.7")(k) for k in range(4)], [1, 0.7, 0.49, 0.343])
    assert BetaSchedule.parse("const:0.3")(5) == 0.3
    for bad in ("0.7", "exp:1.5", "linear:0", "cosine:3", "exp:x"):
        with pytest.raises(CorrectionError, match="beta schedule"):
            BetaSchedule.parse(bad)


@pytest.fixture(scope="module")
def lift_policy(lift_demos, tmp_path_factory):
    out = tmp_path_factory.mktemp("dagger_policy") / "bc"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="gaussian", steps=20, eval_episodes=0, threads=1))
    return out


def test_bad_dagger_input_is_one_line_and_modifies_nothing(lift_demos, lift_policy, tmp_path, capsys):
    stack = tmp_path / "stack.hdf5"
    collect_scripted(EnvSpec(task="Stack", horizon=3), str(stack), 1, workers=1, keep_failed=True)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x")
    before = {p: sha(p) for p in (lift_demos, stack)}
    base = ["dagger", str(lift_demos), "--policy", str(lift_policy), "--out", str(tmp_path / "run")]
    cases = [
        (base + ["--rounds", "0"], "must be at least 1"),
        (base + ["--beta", "exp:2"], "beta schedule"),
        (base + ["--expert", "oracle"], "expected 'scripted' or 'human'"),
        (base + ["--expert", "human", "--input", "gamepad"], "no game controller found"),
        (base + ["--expert", "human", "--input", "joystick"], "expected scripted-operator, gamepad or keyboard"),
        (base + ["--resume"], "nothing to resume"),
        (["dagger", str(stack), "--policy", str(lift_policy), "--out", str(tmp_path / "run")], "task Lift, not Stack"),
        (["dagger", str(lift_demos), "--policy", str(lift_policy), "--out", str(taken)], "exists and is not empty"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run_cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (args, err)
    assert not (tmp_path / "run").exists()
    assert {p: sha(p) for p in before} == before


@pytest.mark.slow
def test_dagger_raises_a_weak_lift_policy_and_resumes(tmp_path):
    """2 demos and a short schedule give a weak policy; two rounds of expert labels on what it visits
    lift it clearly on the same 20 evaluation seeds. The second round runs as a resumed run.

    Measured round 0/1/2 success (3 seeds of demos and DAgger): 0.1/0.85/0.85, 0.0/0.95/0.95,
    0.4/0.9/0.95; ~1 minute. At beta 0.5 (0.1/0.15/0.3) most rollouts stall near the cube until the
    horizon (the learner averages the expert's steep hover-or-descend and yaw labels to ~0) and ~80%
    of a round's labels come from those stalls. A Gaussian head at beta 0.7 gave 0.2/0.8/0.55; a warm
    start that kept the 2-demo normalisation gave 0.1/0.15/0.15 (see Trainer._warm_start).
    """
    from takeover.correction.dagger import DaggerConfig, run_dagger

    spec = EnvSpec(task="Lift", horizon=100)
    demos = tmp_path / "demos.hdf5"
    collect_scripted(spec, str(demos), 2, workers=1)
    digest = sha(demos)
    train(TrainConfig(data=str(demos), out=str(tmp_path / "bc"), head="gmm", steps=800, eval_episodes=0, threads=1))
    cfg = DaggerConfig(data=str(demos), policy=str(tmp_path / "bc"), out=str(tmp_path / "dag"), rounds=1,
                       episodes_per_round=8, beta="const:0.7", workers=2, eval_episodes=20,
                       train_overrides={"steps": 800, "eval_episodes": 0, "threads": 1})
    run_dagger(cfg)
    cfg.rounds = 2
    state = run_dagger(cfg, resume=True)
    rounds = state["rounds"]
    assert [r["round"] for r in rounds] == [0, 1, 2]
    assert rounds[0]["success_rate"] <= 0.5, rounds
    assert min(r["success_rate"] for r in rounds[1:]) >= rounds[0]["success_rate"] + 0.3, rounds
    assert rounds[2]["expert_labels"] > rounds[1]["expert_labels"] > rounds[0]["expert_labels"]
    assert sha(demos) == digest  # the input is never modified
    with DemoReader(tmp_path / "dag" / "data.hdf5") as r:
        dagger = [d for d in r.demos if r.attrs(d).get("source") == "dagger"]
        assert len(dagger) == 16 and sorted({r.attrs(d)["round"] for d in dagger}) == [1, 2]
        ep = r.episode(dagger[0])
        ran = ep.extras["expert_executed"].astype(bool)
        # the label is the expert's action wherever it ran; the learner's proposal is kept beside it
        np.testing.assert_allclose(ep.actions[ran], ep.extras["executed_actions"][ran], atol=1e-6)
        assert ep.extras["policy_actions"].shape == ep.actions.shape
    saved = json.loads((tmp_path / "dag" / "dagger.json").read_text())
    assert len(saved["rounds"]) == 3 and (tmp_path / "dag" / "report.md").read_text().count("\n| ") >= 3
    assert (tmp_path / "dag" / "plots" / "success_vs_labels.png").stat().st_size > 0


@pytest.mark.slow
def test_operator_dagger_stores_take_overs_and_counts_only_operator_steps(tmp_path):
    """HG-DAgger headless: a barely trained policy drives, the simulated operator takes over; episodes
    carry interventions and the policy's proposals, and only the operator's steps count as labels."""
    from takeover.correction.dagger import DaggerConfig, run_dagger

    demos = tmp_path / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=60), str(demos), 2, workers=1)
    train(TrainConfig(data=str(demos), out=str(tmp_path / "bc"), head="gaussian", steps=30, eval_episodes=0, threads=1))
    cfg = DaggerConfig(data=str(demos), policy=str(tmp_path / "bc"), out=str(tmp_path / "hg"), rounds=1,
                       episodes_per_round=3, labeller="operator", workers=0, eval_episodes=0,
                       train_overrides={"steps": 30, "eval_episodes": 0, "threads": 1})
    state = run_dagger(cfg)
    with DemoReader(tmp_path / "hg" / "data.hdf5") as r:
        takeovers = [r.episode(d) for d in r.demos if r.attrs(d).get("source") == "dagger"]
        initial = sum(r.num_samples(d) for d in r.demos if r.attrs(d).get("source") == "expert")
    assert len(takeovers) == 3
    flags = np.concatenate([ep.extras["interventions"] for ep in takeovers])
    assert 0 < flags.sum() < len(flags)  # the operator drove some steps, the policy others
    assert all(ep.extras["policy_actions"].shape == ep.actions.shape for ep in takeovers)
    assert state["rounds"][1]["expert_labels"] == initial + int(flags.sum())
    # eval_episodes=0: rounds are recorded (labels, checkpoint) but not evaluated
    assert [r["eval_episodes"] for r in state["rounds"]] == [0, 0] and "success_rate" not in state["rounds"][1]
    assert Path(state["rounds"][1]["checkpoint"]).is_file() and not (tmp_path / "hg" / "round_1" / "eval.json").exists()
    assert "not evaluated" in (tmp_path / "hg" / "report.md").read_text()


@pytest.mark.slow
def test_kill_during_a_dagger_round_keeps_saved_episodes_and_resume_finishes(lift_policy, tmp_path):
    """kill -9 while a round is rolling out: every episode saved before the kill is in the run's data
    afterwards, and --resume rolls out only the missing seeds (one episode per seed in the end)."""
    import sys

    demos = tmp_path / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=40), str(demos), 2, workers=1)
    train(TrainConfig(data=str(demos), out=str(tmp_path / "bc"), head="gaussian", steps=20, eval_episodes=0, threads=1))
    run = tmp_path / "run"
    args = [sys.executable, "-m", "takeover.cli.main", "dagger", str(demos), "--policy", str(tmp_path / "bc"),
            "--out", str(run), "--rounds", "1", "--episodes-per-round", "6", "--train-steps", "20",
            "--eval-episodes", "1", "--workers", "0"]
    kill_after_saves(args, run / "data.hdf5")
    with DemoReader(run / "data.hdf5") as r:
        saved = [d for d in r.demos if r.attrs(d).get("source") == "dagger"]
        for d in saved:
            assert len(r.episode(d)) > 0  # intact, values checked
    assert 2 <= len(saved) < 6
    assert run_cli(args[3:] + ["--resume"]) == 0
    with DemoReader(run / "data.hdf5") as r:
        seeds = sorted(int(r.attrs(d)["seed"]) for d in r.demos if r.attrs(d).get("source") == "dagger")
    assert seeds == list(range(3_000_000, 3_000_006))
    assert len(json.loads((run / "dagger.json").read_text())["rounds"]) == 2


def test_no_expert_hint_fits_the_command(tmp_path, capsys, monkeypatch):
    demos = tmp_path / "lift.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=3), str(demos), 1, workers=1, keep_failed=True)
    train(TrainConfig(data=str(demos), out=str(tmp_path / "bc"), head="gaussian", steps=2, eval_episodes=0, threads=1))
    monkeypatch.delitem(__import__("takeover.correction.runs", fromlist=["EXPERTS"]).EXPERTS, "Lift")
    base = ["dagger", str(demos), "--policy", str(tmp_path / "bc"), "--out", str(tmp_path / "run")]
    for extra, hint in (([], "use --expert human"),
                        (["--expert", "human", "--input", "scripted-operator"], "take over live with --input")):
        capsys.readouterr()
        assert run_cli(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert "Lift has no scripted expert" in err and hint in err and len(err.splitlines()) == 1, err
        if extra:
            assert "use --expert human" not in err, err
    assert not (tmp_path / "run").exists()
