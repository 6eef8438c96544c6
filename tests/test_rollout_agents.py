"""The one episode loop with the agents corrections are built from: the beta-mixture (DAgger) and
the gated take-over (HG-DAgger), recorded through the one recorder."""
import numpy as np
import pytest

from takeover.datasets import EpisodeRecorder
from takeover.sim import EnvSpec, SimError, make_env
from takeover.sim.agents import BetaMixture, GatedTakeover
from takeover.sim.rollout import run_episode

TEACHER = np.array([0.2, 0, 0, 0, 0, 0, -1.0])
LEARNER = np.array([-0.2, 0, 0, 0, 0, 0, -1.0])


class Constant:
    def __init__(self, action):
        self.action, self.resets = action, 0

    def reset(self, env):
        self.resets += 1

    def act(self, obs, env):
        return self.action.copy()


@pytest.fixture(scope="module")
def env():
    e = make_env(EnvSpec(task="Lift", horizon=100), seed=0)
    yield e
    e.close()


def test_beta_mixture_executes_the_teacher_with_probability_beta_and_always_labels_with_it(env):
    beta, flags = 0.3, []
    for seed in (1, 2, 3):
        agent = BetaMixture(Constant(TEACHER), Constant(LEARNER), beta)
        ep = run_episode(env, agent, seed, stop_on_success=False, record=EpisodeRecorder).episode
        ran = ep.extras["expert_executed"].astype(bool)
        flags.append(ran)
        np.testing.assert_allclose(ep.actions, np.tile(TEACHER, (len(ep), 1)), atol=1e-6)  # label: the teacher's
        np.testing.assert_allclose(ep.extras["executed_actions"][ran], np.tile(TEACHER, (ran.sum(), 1)), atol=1e-6)
        np.testing.assert_allclose(ep.extras["executed_actions"][~ran], np.tile(LEARNER, ((~ran).sum(), 1)), atol=1e-6)
        np.testing.assert_allclose(ep.extras["policy_actions"], np.tile(LEARNER, (len(ep), 1)), atol=1e-6)
    flags = np.concatenate(flags)
    sigma = np.sqrt(beta * (1 - beta) / len(flags))
    assert abs(flags.mean() - beta) < 4 * sigma, (flags.mean(), beta)
    # the coin flips depend only on the episode seed
    again = run_episode(env, BetaMixture(Constant(TEACHER), Constant(LEARNER), beta), 1, stop_on_success=False,
                        record=EpisodeRecorder).episode
    np.testing.assert_array_equal(again.extras["expert_executed"].astype(bool), flags[:100])
    with pytest.raises(SimError, match="beta"):
        BetaMixture(Constant(TEACHER), Constant(LEARNER), 1.5)


def test_gated_takeover_marks_teacher_steps_and_resets_the_learner_on_hand_back(env):
    teacher, learner = Constant(TEACHER), Constant(LEARNER)
    gate = lambda obs, env, proposal: 10 <= env.t < 20  # noqa: E731  (env.t: steps taken so far)
    agent = GatedTakeover(teacher, learner, gate)
    ep = run_episode(env, agent, 5, max_steps=40, stop_on_success=False, record=EpisodeRecorder).episode
    expected = np.zeros(40, np.uint8)
    expected[10:20] = 1
    np.testing.assert_array_equal(ep.extras["interventions"], expected)
    np.testing.assert_allclose(ep.actions[10:20], np.tile(TEACHER, (10, 1)), atol=1e-6)
    np.testing.assert_allclose(ep.actions[:10], np.tile(LEARNER, (10, 1)), atol=1e-6)
    np.testing.assert_allclose(ep.extras["policy_actions"], np.tile(LEARNER, (40, 1)), atol=1e-6)
    assert agent.handovers == 2
    assert learner.resets == 2  # the episode start and the hand-back at step 20


class WrongBetween:
    """Proposes the teacher's action except on steps [start, stop), where it goes the other way."""

    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def reset(self, env):
        pass

    def act(self, obs, env):
        return LEARNER.copy() if self.start <= env.t < self.stop else TEACHER.copy()


def test_simulated_operator_takes_over_after_patience_and_hands_back_after_recovery(env):
    from takeover.correction.operator import OperatorRule, SimulatedOperator

    operator = SimulatedOperator(Constant(TEACHER), OperatorRule(threshold=0.3, patience=3, recover=5))
    agent = GatedTakeover(operator.teacher, WrongBetween(10, 30), operator.gate)
    ep = run_episode(env, agent, 7, max_steps=50, stop_on_success=False, record=EpisodeRecorder).episode
    expected = np.zeros(50, np.uint8)
    expected[12:34] = 1  # 3 disagreeing proposals (10, 11, 12), then 5 agreeing ones (30-34) hand back
    np.testing.assert_array_equal(ep.extras["interventions"], expected)
    np.testing.assert_allclose(ep.actions[12:34], np.tile(TEACHER, (22, 1)), atol=1e-6)
    np.testing.assert_allclose(ep.actions[10:12], np.tile(LEARNER, (2, 1)), atol=1e-6)  # before the take-over


class _Still:
    """A picklable agent factory: an agent that holds still."""

    def __call__(self):
        return Constant(np.zeros(7))


def test_an_in_process_pool_leaves_the_callers_threads_alone(monkeypatch):
    """workers=0 runs episodes in the caller's process: a training run that evaluates in-process keeps its
    torch threads and OMP setting (the one-thread limit is for worker processes only)."""
    import torch

    from takeover.sim.rollout import RolloutPool

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with RolloutPool(EnvSpec(task="Lift", horizon=3), workers=0) as pool:
            results = pool.run(_Still(), [0])
        assert len(results) == 1 and torch.get_num_threads() == 2
        assert "OMP_NUM_THREADS" not in __import__("os").environ
    finally:
        torch.set_num_threads(before)
