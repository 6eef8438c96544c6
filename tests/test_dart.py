"""DART with fitted noise: the fit recovers a known learner error covariance, noisy episodes keep the
clean expert action as the label, bad input is one line, and a tiny run on Lift reports per iteration."""
import hashlib
import json

import numpy as np
import pytest

from takeover.cli.app import run_cli
from takeover.correction import CorrectionError
from takeover.correction.dart import fit_covariance, fit_noise_for_recording, learner_errors
from takeover.datasets import DemoReader
from takeover.datasets.episode import Episode
from takeover.policies.train import TrainConfig, train
from takeover.sim import EnvSpec
from takeover.datasets.scripted_collection import collect_scripted

from demo_split import with_split
from kill9 import kill_after_saves


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# a full 6x6 arm covariance (correlated dimensions, different scales)
_L = np.tril(np.random.default_rng(7).normal(size=(6, 6)) * 0.05) + np.diag([0.1, 0.08, 0.12, 0.03, 0.02, 0.05])
KNOWN_COV = _L @ _L.T


class NoisyLearner:
    """Synthetic learner = expert + Gaussian error with a known covariance (plus an error on the gripper,
    which the fit must ignore). The expert's action is looked up from the observation's step index."""

    def __init__(self, labels, cov, bias=None, seed=0):
        self.labels, self.bias = labels, np.zeros(6) if bias is None else bias
        self.chol = np.linalg.cholesky(cov)
        self.rng = np.random.default_rng(seed)
        self.resets = 0

    def reset(self):
        self.resets += 1

    def act(self, obs):
        label = self.labels[int(obs["index"][0])]
        arm = self.chol @ self.rng.standard_normal(6) + self.bias
        return label + np.concatenate([arm, [self.rng.normal(0, 0.5)]])


def synthetic_episodes(n_episodes, steps, rng, interventions=False):
    episodes, labels = [], []
    for e in range(n_episodes):
        acts = rng.uniform(-1, 1, size=(steps, 7)).astype(np.float32)
        index = np.arange(len(labels), len(labels) + steps)[:, None].astype(np.float64)
        labels.extend(acts.astype(np.float64))
        extras = {"interventions": (np.arange(steps) % 2).astype(np.uint8)} if interventions else {}
        episodes.append(Episode(actions=acts, states=np.zeros((steps, 1)), obs={"index": index},
                                next_obs={"index": index}, rewards=np.zeros(steps, np.float32),
                                dones=np.zeros(steps, np.uint8), extras=extras))
    return episodes, np.asarray(labels)


def test_fit_recovers_a_known_error_covariance_and_ignores_the_gripper():
    rng = np.random.default_rng(0)
    episodes, labels = synthetic_episodes(40, 500, rng)  # 20,000 steps
    learner = NoisyLearner(labels, KNOWN_COV)
    errors = learner_errors(learner, episodes)
    assert errors.shape == (20_000, 7) and learner.resets == 40  # every episode replayed from a reset
    cov = fit_covariance(errors, arm_dims=6)
    # sampling error of a second moment: sqrt((S_ii S_jj + S_ij^2) / N); allow 4 standard errors
    d = np.sqrt(np.diag(KNOWN_COV))
    tol = 4 * np.sqrt((np.outer(d, d) ** 2 + KNOWN_COV ** 2) / len(errors))
    assert (np.abs(cov[:6, :6] - KNOWN_COV) < tol).all(), np.abs(cov[:6, :6] - KNOWN_COV) / tol
    assert (cov[6] == 0).all() and (cov[:, 6] == 0).all()  # no noise on the gripper
    # scaled to a target expected squared error: same shape, that trace
    scaled = fit_covariance(errors, arm_dims=6, target_trace=0.05)
    assert np.trace(scaled) == pytest.approx(0.05)
    np.testing.assert_allclose(scaled, cov * 0.05 / np.trace(cov), rtol=1e-9)


def test_fit_counts_a_bias_and_only_labelled_steps():
    """DART's fit is the second moment about zero (a learner's bias is error too), over label steps only
    (take-over episodes: the operator's)."""
    rng = np.random.default_rng(1)
    episodes, labels = synthetic_episodes(10, 1000, rng, interventions=True)
    bias = np.array([0.2, -0.1, 0, 0, 0, 0.05])
    errors = learner_errors(NoisyLearner(labels, KNOWN_COV, bias=bias, seed=3), episodes)
    assert len(errors) == 5000  # every second step is a label
    cov = fit_covariance(errors, arm_dims=6)
    np.testing.assert_allclose(cov[:6, :6], KNOWN_COV + np.outer(bias, bias), atol=0.004)


def test_noisy_expert_labels_are_the_clean_expert_actions():
    """Replaying an episode's executed actions from its seed, a fresh expert acts exactly as the
    stored labels at every step, and executed - label is the episode's noise draw (clipped)."""
    from takeover.sim import make_env
    from takeover.sim.experts import make_expert
    from takeover.sim.rollout import run_episode
    from takeover.datasets import EpisodeRecorder
    from takeover.sim.noise import ActionNoise
    from takeover.datasets.scripted_collection import EpisodeNoise, ExpertAgent

    cov = np.zeros((7, 7))
    cov[:6, :6] = KNOWN_COV
    env = make_env(EnvSpec(task="Lift", horizon=40))
    noise = EpisodeNoise(ActionNoise(cov), base_seed=2)
    ep = run_episode(env, ExpertAgent("Lift")(), 4_000_005, record=EpisodeRecorder, action_noise=noise,
                     stop_on_success=False).episode
    executed = ep.extras["executed_actions"]
    draws = ActionNoise(cov, seed=[2, 4_000_005])
    np.testing.assert_allclose(executed, np.clip(ep.actions + np.stack([draws.sample() for _ in range(len(ep))]),
                                                 -1, 1), atol=1e-5)
    assert np.abs(executed - ep.actions)[:, :6].max() > 0.05 and (executed[:, 6] == ep.actions[:, 6]).all()
    expert = make_expert("Lift")
    obs = env.reset(seed=4_000_005)
    expert.reset(env)
    for t in range(len(ep)):
        np.testing.assert_allclose(expert.act(obs, env), ep.actions[t], atol=1e-5)
        obs, *_ = env.step(executed[t].astype(np.float64))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("dart")
    demos = root / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=40), str(demos), 2, workers=1, keep_failed=True)
    with_split(demos)  # demo_1 trains, demo_0 validates: DART's episodes must join train
    train(TrainConfig(data=str(demos), out=str(root / "bc"), head="gaussian", steps=20, eval_episodes=0, threads=1))
    return demos, root / "bc"


def test_bad_dart_and_fitted_record_input_is_one_line_and_modifies_nothing(tiny, tmp_path, capsys, monkeypatch):
    demos, policy = tiny
    stack = tmp_path / "stack.hdf5"
    collect_scripted(EnvSpec(task="Stack", horizon=3), str(stack), 1, workers=1, keep_failed=True)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x")
    before = {p: sha(p) for p in (demos, stack)}
    base = ["dart", str(demos), "--policy", str(policy), "--out", str(tmp_path / "run")]
    out = tmp_path / "rec.hdf5"
    rec = ["record", "--input", "scripted", "--out", str(out)]
    cases = [
        (base + ["--iterations", "0"], "must be at least 1"),
        (base + ["--resume"], "nothing to resume"),
        (base + ["--noise", "0.1,0.2"], "lists 2 stds"),
        (["dart", str(stack), "--policy", str(policy), "--out", str(tmp_path / "run")], "task Lift, not Stack"),
        (["dart", str(demos), "--policy", str(policy), "--out", str(taken)], "exists and is not empty"),
        (rec + ["--noise", f"fit:{policy}"], "needs demos to fit on"),
        (rec + ["--task", "Stack", "--noise", f"fit:{policy}", "--noise-data", str(stack)], "task Lift, not Stack"),
        (rec + ["--noise", f"fit:{policy}", "--noise-data", str(stack)], "holds task Stack, not Lift"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run_cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, (args, err)
    monkeypatch.delitem(__import__("takeover.correction.runs", fromlist=["EXPERTS"]).EXPERTS, "Lift")
    assert run_cli(base) == 2
    err = capsys.readouterr().err.strip()
    assert "Lift has no scripted expert" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "run").exists() and not out.exists()
    assert {p: sha(p) for p in before} == before


def test_record_noise_fit_gives_the_policys_error_on_the_demos(tiny):
    demos, policy = tiny
    cov, fit = fit_noise_for_recording(policy, demos, "Lift")
    assert fit["steps"] == sum(DemoReader(demos).num_samples(d) for d in DemoReader(demos).demos)
    assert np.trace(cov) == pytest.approx(fit["error_trace"]) and np.trace(cov) > 0
    assert (cov[6] == 0).all() and np.linalg.eigvalsh(cov).min() > -1e-12
    scaled, _ = fit_noise_for_recording(policy, demos, "Lift", target_trace=0.02)
    assert np.trace(scaled) == pytest.approx(0.02)
    with pytest.raises(CorrectionError, match="no such demonstration file"):
        fit_noise_for_recording(policy, demos.with_name("missing.hdf5"), "Lift")


@pytest.mark.slow
def test_tiny_dart_run_on_lift_reports_covariances_and_success_and_resumes(tiny, tmp_path):
    from takeover.correction.dart import DartConfig, run_dart

    demos, policy = tiny
    digest = sha(demos)
    run = tmp_path / "dart"
    cfg = DartConfig(data=str(demos), policy=str(policy), out=str(run), iterations=1, episodes=2, workers=0,
                     eval_episodes=2, train_overrides={"steps": 10, "eval_episodes": 0, "threads": 1})
    run_dart(cfg)
    cfg.iterations = 2
    assert run_cli(["dart", str(demos), "--policy", str(policy), "--out", str(run), "--iterations", "2",
                    "--episodes", "2", "--workers", "0", "--eval-episodes", "2", "--train-steps", "10",
                    "--resume"]) == 0
    state = json.loads((run / "dart.json").read_text())
    its = state["iterations"]
    assert [e["iteration"] for e in its] == [0, 1, 2]
    from takeover.sim.stats import wilson_interval

    for e in its:  # each iteration's numbers are its own eval.json's: successes over the 2 fixed seeds
        report = json.loads((run / f"iter_{e['iteration']}" / "eval.json").read_text())
        assert e["eval_episodes"] == 2 == report["episodes"] and report["seeds"] == [1_000_000, 1_000_001]
        assert e["successes"] == report["successes"] == sum(ep["success"] for ep in report["per_episode"])
        assert e["success_rate"] == e["successes"] / 2
        assert e["ci95"] == pytest.approx(list(wilson_interval(e["successes"], 2)), abs=1e-4)
        nxt = np.asarray(e["next_noise_cov"])
        assert nxt.shape == (7, 7) and np.trace(nxt) > 0 and (nxt[6] == 0).all()
    # iteration k collected with the covariance fitted after iteration k-1
    for k in (1, 2):
        np.testing.assert_allclose(its[k]["noise_cov"], its[k - 1]["next_noise_cov"])
    assert its[2]["expert_labels"] > its[1]["expert_labels"] > its[0]["expert_labels"] == state["initial_labels"]
    assert sha(demos) == digest
    with DemoReader(run / "data.hdf5") as r:
        dart = [d for d in r.demos if r.attrs(d).get("source") == "dart"]
        assert sorted(int(r.attrs(d)["seed"]) for d in dart) == list(range(4_000_000, 4_000_004))
        assert sorted(int(r.attrs(d)["iteration"]) for d in dart) == [1, 1, 2, 2]
        ep = r.episode(dart[0])
        assert not np.allclose(ep.extras["executed_actions"], ep.actions)
        # the new episodes train; the input's split is kept (its valid demo stays out of training)
        assert set(r.split_demos("train")) == set(dart) | {"demo_1"} and r.split_demos("valid") == ["demo_0"]
        new = sum(r.num_samples(d) for d in dart)
    assert its[2]["expert_labels"] == state["initial_labels"] + new
    report = (run / "report.md").read_text()
    assert report.count("\n| ") >= 4 and "iteration 2:" in report


@pytest.mark.slow
def test_kill_during_a_dart_iteration_keeps_saved_episodes_and_resume_finishes(tiny, tmp_path):
    """kill -9 while iteration 1 rolls out: the episodes saved before the kill stay, --resume rolls out
    only the missing seeds with the same fitted noise, one episode per seed in the end."""
    import sys


    demos, policy = tiny
    run = tmp_path / "run"
    args = [sys.executable, "-m", "takeover.cli.main", "dart", str(demos), "--policy", str(policy), "--out", str(run),
            "--iterations", "1", "--episodes", "6", "--train-steps", "5", "--eval-episodes", "0", "--workers", "0"]
    kill_after_saves(args, run / "data.hdf5")
    with DemoReader(run / "data.hdf5") as r:
        saved = [d for d in r.demos if r.attrs(d).get("source") == "dart"]
    assert 2 <= len(saved) < 6
    assert run_cli(args[3:] + ["--resume"]) == 0
    state = json.loads((run / "dart.json").read_text())
    with DemoReader(run / "data.hdf5") as r:
        dart = [d for d in r.demos if r.attrs(d).get("source") == "dart"]
        assert sorted(int(r.attrs(d)["seed"]) for d in dart) == list(range(4_000_000, 4_000_006))
        traces = {round(float(r.attrs(d)["noise_trace"]), 9) for d in dart}
    assert traces == {round(float(np.trace(state["iterations"][0]["next_noise_cov"])), 9)}
    assert [e["iteration"] for e in state["iterations"]] == [0, 1]
    # --eval-episodes 0: iterations recorded (labels, noise, checkpoint), none evaluated
    assert [e["eval_episodes"] for e in state["iterations"]] == [0, 0] and "success_rate" not in state["iterations"][1]
    assert "not evaluated" in (run / "report.md").read_text()
