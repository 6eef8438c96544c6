import warnings

import numpy as np
import pytest

from takeover.sim import EnvSpec, SimError, TASKS, make_env
from takeover.sim.rollout import run_rollouts
from takeover.sim.stats import mean_interval, wilson_interval


def test_envspec_json_round_trip():
    spec = EnvSpec(task="Stack", horizon=123, obs_keys=("robot0_eef_pos", "object"), camera_names=("agentview",),
                   controller_overrides={"kp": 120}, env_kwargs={"table_full_size": [0.8, 0.8, 0.05]})
    again = EnvSpec.from_json(spec.to_json())
    assert again == spec
    assert again.max_steps == 123


def test_unknown_task_and_field_are_named():
    with pytest.raises(SimError, match="unknown task 'Lfit'.*Lift"):
        EnvSpec(task="Lfit")
    with pytest.raises(SimError, match="horizn"):
        EnvSpec.from_dict({"task": "Lift", "horizn": 3})


@pytest.fixture(scope="module")
def lift():
    return make_env(EnvSpec(task="Lift"))


def test_seeded_reset_is_deterministic(lift):
    a = lift.reset(seed=7)["object"].copy()
    lift.step(np.ones(7) * 0.5)
    b = lift.reset(seed=8)["object"].copy()
    c = lift.reset(seed=7)["object"].copy()
    assert np.array_equal(a, c)
    assert not np.array_equal(a, b)


def test_bad_actions_are_refused(lift):
    lift.reset(seed=0)
    with pytest.raises(SimError, match=r"shape \(6,\).*\(7,\)"):
        lift.step(np.zeros(6))
    with pytest.raises(SimError, match="NaN"):
        lift.step(np.array([0, 0, np.nan, 0, 0, 0, 0]))


def test_unknown_obs_key_lists_available():
    with pytest.raises(SimError, match="robot0_eef_poss.*available.*robot0_eef_pos"):
        make_env(EnvSpec(task="Lift", obs_keys=("robot0_eef_poss",)))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_replaying_states_reproduces_observations(task):
    env = make_env(EnvSpec(task=task))
    rng = np.random.default_rng(0)
    record = [(env.get_state(), env.reset(seed=11))]
    record[0] = (env.get_state(), record[0][1])
    for _ in range(25):
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_dim))
        record.append((env.get_state(), obs))
    xml = env.model_xml()
    fresh = make_env(EnvSpec(task=task))  # another instance, other episode: state + XML must suffice
    fresh.reset(seed=99)
    for state, obs in record:
        again = fresh.set_state(state, xml)
        for key in obs:
            np.testing.assert_allclose(again[key], obs[key], atol=1e-6, rtol=0, err_msg=f"{task} {key}")


def test_state_of_wrong_size_is_refused(lift):
    with pytest.raises(SimError, match="needs 32"):
        lift.set_state(np.zeros(31))


def test_render_is_upright_uint8(lift):
    lift.reset(seed=0)
    frame = lift.render(96, 96, "frontview")
    assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8
    assert frame.std() > 5  # a scene, not a blank buffer
    # frontview looks at the robot over the table: the floor (dark, lower image) sits below the bright sky
    assert frame[:20].mean() > frame[-20:].mean()
    with pytest.raises(SimError, match="no camera 'nope'"):
        lift.render(32, 32, "nope")


def test_gym_adapter_passes_check_env():
    from gymnasium.utils.env_checker import check_env

    from takeover.sim.gym_adapter import GymEnv

    env = GymEnv(EnvSpec(task="Lift", horizon=20))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_render_check=True)
    # the one expected remark: raw state observations (positions, velocities) have no finite bounds
    unexpected = [str(w.message) for w in caught if "observation space m" not in str(w.message)
                  or "infinity" not in str(w.message)]
    assert not unexpected, unexpected
    assert np.isinf(env.observation_space.low).all() and np.isinf(env.observation_space.high).all()
    obs, info = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape and obs.dtype == np.float32


class NoisyAgent:
    """Random actions drawn from the global numpy generator: the runner seeds it per episode."""

    def reset(self, env):
        pass

    def act(self, obs, env):
        return np.random.uniform(-1, 1, 7)


def test_parallel_rollouts_do_not_depend_on_worker_count():
    spec = EnvSpec(task="Lift", horizon=15, reward_shaping=True)
    one = run_rollouts(spec, NoisyAgent, seeds=[3, 4, 5], workers=1, stop_on_success=False)
    two = run_rollouts(spec, NoisyAgent, seeds=[3, 4, 5], workers=2, stop_on_success=False)
    assert [r.seed for r in two] == [3, 4, 5]
    assert [r.total_reward for r in one] == [r.total_reward for r in two]
    assert len({r.total_reward for r in one}) == 3


def test_mean_interval_is_the_t_interval_over_units():
    mean, lo, hi = mean_interval([0.44, 0.32, 0.28])  # HG-DAgger minus BC on three seeds
    assert abs(mean - 0.3467) < 1e-3
    # sd 0.0833, se 0.0481, t(2) = 4.303: half-width 0.207
    assert abs((hi - lo) / 2 - 0.207) < 2e-3 and lo > 0
    _, lo, hi = mean_interval([0.58, -0.08, 0.0])  # fixed DART minus BC: a gain on one seed only
    assert lo < 0 < hi
    assert mean_interval([0.5]) == (0.5, float("-inf"), float("inf"))
    with pytest.raises(ValueError):
        mean_interval([])


def test_wilson_interval():
    lo, hi = wilson_interval(50, 50)
    assert 0.92 < lo < 0.94 and hi == pytest.approx(1.0)
    lo, hi = wilson_interval(25, 50)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-9


def test_reward_is_paid_on_the_state_success_is_read_from():
    """A cube dropped from rest 12.2 mm above Lift's success height is above it after 24 of a control
    step's 25 physics substeps (2 ms each: 11.8 mm fallen) and below after the 25th (12.7 mm).
    robosuite's own reward reads the poses of substep 24: it paid 1 for a step that ends unsuccessful
    (and, the other way round, 0 for a step that ends lifted)."""
    env = make_env(EnvSpec(task="Lift"))
    env.reset(seed=0)
    raw = env.raw
    success_height = raw.model.mujoco_arena.table_offset[2] + 0.04
    addr = raw.sim.model.get_joint_qpos_addr("cube_joint0")[0]
    raw.sim.data.qpos[addr + 2] = success_height + 0.0122
    raw.sim.data.qvel[raw.sim.model.get_joint_qvel_addr("cube_joint0")[0]:][:6] = 0.0
    raw.sim.forward()
    assert raw._check_success()
    _, reward, success, _, _ = env.step(np.r_[np.zeros(6), -1.0])
    assert not success and reward == 0.0
