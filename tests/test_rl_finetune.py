"""RL fine-tuning (issue 16): batch composition, the BC-initialised actor, learning on a tiny task,
resume after kill -9, and bad input refused in one line with nothing modified."""
from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
import torch

from kill9 import kill_finetune_after
from synthetic import build, train as bc_train
from takeover.cli.app import run_cli
from takeover.policies import PolicyShapes, make_config, make_policy
from takeover.policies.checkpoint import load_checkpoint, save_checkpoint
from takeover.rl_finetune.actor import ACTION_BOUND, TanhActor, check_finetunable
from takeover.rl_finetune.dapg import DAPG, DAPGConfig, gae
from takeover.rl_finetune.buffers import ReplayBuffer, discounted_returns, mixed_batch
from takeover.rl_finetune.errors import FinetuneError
from takeover.rl_finetune.rlpd import RLPD, RLPDConfig
from takeover.sim import EnvSpec


def filled(n: int, reward: float, obs_dim: int = 3, action_dim: int = 2) -> ReplayBuffer:
    buf = ReplayBuffer(obs_dim, action_dim)
    buf.add({"obs": np.zeros((n, obs_dim)), "actions": np.zeros((n, action_dim)), "rewards": np.full(n, reward),
             "next_obs": np.zeros((n, obs_dim)), "terminals": np.zeros(n)})
    return buf


def test_every_batch_holds_the_demo_share_asked_for():
    demo, online = filled(50, 1.0), filled(400, 0.0)  # the reward marks where a row came from
    g = torch.Generator().manual_seed(0)
    for fraction, size in [(0.5, 256), (0.25, 64), (0.0, 32), (1.0, 32)]:
        for _ in range(3):
            batch = mixed_batch(demo, online, size, fraction, g)
            assert len(batch["rewards"]) == size
            assert int(batch["rewards"].sum()) == round(size * fraction)
            assert torch.equal(batch["from_demo"], batch["rewards"])
    # before any online data every row is a demonstration; without demonstrations every row is online
    assert int(mixed_batch(demo, filled(0, 0.0), 16, 0.5, g)["rewards"].sum()) == 16
    assert int(mixed_batch(filled(0, 1.0), online, 16, 0.5, g)["rewards"].sum()) == 0


def test_bc_initialised_actor_reproduces_the_checkpoint_actions(tmp_path):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(512, 4)).astype(np.float32)
    actions = np.clip(np.stack([obs[:, 0] * 0.5, np.sign(obs[:, 1])], 1), -1, 1).astype(np.float32)  # dim 1 saturates
    policy = build("gaussian", obs, actions, hidden_dims=(64, 64))
    bc_train(policy, obs[:, None], actions[:, None], steps=200)
    save_checkpoint(tmp_path / "bc.pt", policy, EnvSpec(task="Lift"))
    loaded, _, _ = load_checkpoint(tmp_path / "bc.pt")
    actor = TanhActor(loaded)
    test_obs = rng.normal(size=(200, 4)).astype(np.float32)
    expected = np.stack([policy.predict_chunk(torch.from_numpy(o)[None])[0] for o in test_obs])  # what eval executes
    with torch.no_grad():
        got = actor.deterministic(torch.from_numpy(test_obs)).numpy()
    inside = np.abs(expected) < ACTION_BOUND
    assert inside.sum() > 100 and (~inside).sum() > 10
    assert np.abs(got - expected)[inside].max() < 1e-5
    assert np.abs(got - expected)[~inside].max() <= 1 - ACTION_BOUND + 1e-6
    gmm = make_policy(make_config("gmm"), PolicyShapes(("state",), ((4,),), 2), policy.normalizer and {
        k: getattr(policy.normalizer, k).numpy() for k in ("obs_mean", "obs_std", "obs_min", "obs_max", "action_mean",
                                                            "action_std", "action_min", "action_max")})
    with pytest.raises(FinetuneError, match="fine-tunable: gaussian"):
        check_finetunable(gmm, "x.pt")


# ----- the critic warm-up on a tiny sparse-reward chain ------------------------------------------------
def chain_demos(gamma: float, lengths=(25, 30, 35, 40)) -> dict:
    """A 1-D point steps 0.03 toward the goal per step (action -0.5); reward 1 on arrival, terminal there."""
    parts = []
    for n in lengths:
        x = (0.03 * np.arange(n, 0, -1)).astype(np.float32)[:, None]
        rewards = np.zeros(n, np.float32)
        rewards[-1] = 1.0
        terminals = rewards.copy()
        parts.append({"obs": x, "actions": np.full((n, 1), -0.5, np.float32), "rewards": rewards,
                      "next_obs": x - 0.03, "terminals": terminals, "mc_returns": discounted_returns(rewards, gamma)})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


@pytest.mark.parametrize("mc_floor", [True, False])
def test_critic_warm_up_values_demonstrations_at_their_discounted_return(mc_floor):
    """Sparse success reward at the end of 25-40 step demonstrations: after the warm-up the critic must
    value a demonstration (s, a) at about its discounted return gamma^(steps to success), 0.67-1. Without
    the Monte-Carlo floor the reward creeps back one bootstrap per target-network lag and the critic
    is still near its initial values (on 4 Lift demos: -0.14 where the return was 0.85)."""
    torch.manual_seed(0)
    data = chain_demos(0.99)
    assert np.allclose(data["mc_returns"][:25], 0.99 ** np.arange(24, -1, -1), atol=1e-6)
    policy = build("gaussian", data["obs"], data["actions"], hidden_dims=(32, 32))
    bc_train(policy, data["obs"][:, None], data["actions"][:, None], steps=100)
    demo = ReplayBuffer(1, 1)
    demo.add(data)
    learner = RLPD(RLPDConfig(batch_size=64, critic_hidden=(64, 64), critic_warmup_updates=300, mc_floor=mc_floor),
                   TanhActor(policy).eval(), seed=0)
    stats = learner.warm_up(demo)
    with torch.no_grad():
        q = learner.critic(learner.actor.features(torch.from_numpy(data["obs"])), torch.from_numpy(data["actions"]))
    error = np.abs(q.mean(0).numpy() - data["mc_returns"]).mean()
    assert stats["demo_mc_return"] == pytest.approx(data["mc_returns"].mean(), abs=1e-5)  # logged after warm-up
    if mc_floor:
        assert error < 0.05, error
        assert stats["demo_q"] == pytest.approx(stats["demo_mc_return"], abs=0.05)
    else:  # the failure the floor fixes (so this test has teeth)
        assert error > 0.3, error


def test_lift_demo_buffer_rewards_success_once_and_ends_there(lift_demos, lift_bc):
    """Each demonstration is cut at its first success: reward 1 and terminal on that step only, no reward
    before it, and the Monte-Carlo return gamma^(steps to success)."""
    from takeover.rl_finetune.buffers import load_demo_buffer
    from takeover.sim.env import make_env

    policy, spec, _ = load_checkpoint(lift_bc)
    env = make_env(spec)
    try:
        buffer, info = load_demo_buffer([lift_demos], policy, spec, env, "sparse", 1.0, 0.9)
    finally:
        env.close()
    d = buffer.data
    ends = np.flatnonzero(d["terminals"])
    assert info["episodes"] == info["successes"] == len(ends) == 12 and ends[-1] == len(buffer) - 1
    assert np.array_equal(np.flatnonzero(d["rewards"]), ends) and np.all(d["rewards"][ends] == 1.0)
    for start, end in zip(np.r_[0, ends[:-1] + 1], ends):
        assert np.allclose(d["mc_returns"][start:end + 1], 0.9 ** np.arange(end - start, -1, -1), atol=1e-5)
        assert np.allclose(d["next_obs"][start:end], d["obs"][start + 1:end + 1])


@pytest.mark.parametrize("bc_loss", ["nll", "mse"])
def test_nll_bc_term_keeps_the_actor_std_where_bc_left_it(bc_loss):
    """SAC's entropy term (alpha 0.01) widens the pre-tanh std toward its 0.5 cap within a few hundred
    actor updates even on demonstration-only batches; the BC term as a log-likelihood holds it near
    the BC std, the squared error of the mean does not (measured on Lift: 0.02-0.06 to 0.5)."""
    torch.manual_seed(0)
    data = chain_demos(0.99)
    data["actions"] += 0.1 * np.random.default_rng(0).normal(size=data["actions"].shape).astype(np.float32)
    policy = build("gaussian", data["obs"], data["actions"], hidden_dims=(32, 32))
    bc_train(policy, data["obs"][:, None], data["actions"][:, None], steps=300)  # pre-tanh std ~0.12
    actor = TanhActor(policy).eval()
    obs = torch.from_numpy(data["obs"])
    with torch.no_grad():
        start = actor(obs)[1].mean().item()
    demo = ReplayBuffer(1, 1)
    demo.add(data)
    learner = RLPD(RLPDConfig(batch_size=64, critic_hidden=(32, 32), num_critics=4, bc_weight=1.0, bc_loss=bc_loss,
                              init_alpha=0.01, alpha_lr=3e-4), actor, seed=0)  # SAC's temperature tuning on
    learner.train_on(800, demo, ReplayBuffer(1, 1))  # 800 critic and actor updates, demo rows only
    with torch.no_grad():
        end = actor(obs)[1].mean().item()
    if bc_loss == "nll":  # measured: 0.124 -> 0.128
        assert end < 1.25 * start, (start, end)
    else:  # measured: 0.124 -> 0.371
        assert end > 2 * start, (start, end)


def test_actor_waits_for_actor_start_steps_of_online_data_while_the_critic_learns():
    data = chain_demos(0.99)
    policy = build("gaussian", data["obs"], data["actions"], hidden_dims=(16, 16))
    actor = TanhActor(policy).eval()
    demo, online = ReplayBuffer(1, 1), ReplayBuffer(1, 1)
    demo.add(data)
    learner = RLPD(RLPDConfig(batch_size=32, critic_hidden=(16, 16), num_critics=2, actor_start_steps=50), actor, seed=0)
    snapshot = lambda module: [p.detach().clone() for p in module.parameters()]  # noqa: E731
    actor_before, critic_before = snapshot(actor), snapshot(learner.critic)
    online.add({k: v[:40] for k, v in data.items()})  # 40 online steps: fewer than 50
    learner.train_on(40, demo, online)
    assert all(torch.equal(a, b) for a, b in zip(actor_before, actor.parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(critic_before, learner.critic.parameters()))
    online.add({k: v[40:60] for k, v in data.items()})  # 60 >= 50: the actor moves
    learner.train_on(20, demo, online)
    assert not all(torch.equal(a, b) for a, b in zip(actor_before, actor.parameters()))



@pytest.mark.parametrize("bound_weight", [1.0, 0.0])
def test_a_mean_past_the_action_bound_still_learns_and_the_bound_term_pulls_it_back(bound_weight):
    """A hard clamp at the bound gave a raw mean past it zero gradient (the Lift fly-offs: raw means of
    8-19); the mean now passes its gradient through the bound and the bound term brings it back in."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    data = {"obs": rng.normal(size=(64, 3)).astype(np.float32), "actions": rng.uniform(-0.9, 0.9, (64, 2)).astype(np.float32)}
    policy = build("gaussian", data["obs"], data["actions"], hidden_dims=(16, 16))
    with torch.no_grad():  # push every mean far past the bound (normalised units: the range is +-1)
        policy.net[-1].bias[:2] += 4.0
    actor = TanhActor(policy).eval()
    obs = torch.from_numpy(data["obs"])
    raw_before = actor.distribution(obs)[2].detach()
    assert (raw_before.abs() > 1.5).all()
    assert torch.allclose(actor.deterministic(obs), torch.full_like(raw_before, ACTION_BOUND).copysign(raw_before))
    actor.deterministic(obs).sum().backward()  # a clamp in gradient: every parameter's grad was zero here
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in policy.parameters())
    policy.zero_grad()
    learner = RLPD(RLPDConfig(batch_size=64, critic_hidden=(16, 16), num_critics=2, bound_weight=bound_weight, actor_lr=3e-3,
                               init_alpha=1e-6, alpha_lr=0.0),  # the Lift runs: no entropy term to pull it in either
                   actor, seed=0)
    batch = {k: torch.from_numpy(np.asarray(v[:64])) for k, v in data.items()}
    batch["from_demo"] = torch.ones(64)
    first = learner.actor_update(batch)["overshoot"]
    for _ in range(150):
        last = learner.actor_update(batch)["overshoot"]
    if bound_weight > 0:  # measured: 2.95 -> 0.021
        assert last < 0.05 * first, (first, last)
    else:  # measured: 2.95 -> 2,269: an untrained critic's gradient drives the mean ever further out
        assert last > 0.5 * first, (first, last)


# ----- a tiny shaped-reward task: a point moves toward the origin, reward = -distance -----------------
class PointReach:
    """Batched: pos += 0.1 * action; success within 0.15 of the origin ends an episode; 20 steps."""

    horizon = 20

    def __init__(self, starts: np.ndarray):
        self.pos = starts.astype(np.float32).copy()
        self.t = 0

    def step(self, action: np.ndarray):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -1.5, 1.5).astype(np.float32)
        self.t += 1
        dist = np.linalg.norm(self.pos, axis=1)
        return self.pos.copy(), -dist.astype(np.float32), dist < 0.15


def rollout(actor, starts, explore: bool, gen=None):
    env, alive = PointReach(starts), np.ones(len(starts), bool)
    obs, steps, returns = env.pos.copy(), [], np.zeros(len(starts))
    for _ in range(env.horizon):
        with torch.no_grad():
            t = torch.from_numpy(obs)
            action = (actor.sample(t, gen)[0] if explore else actor.deterministic(t)).numpy()
        next_obs, reward, success = env.step(action)
        returns += reward * alive
        steps.append((obs[alive], action[alive], reward[alive], next_obs[alive], success[alive].astype(np.float32)))
        alive &= ~success
        obs = next_obs
        if not alive.any():
            break
    return {k: np.concatenate([s[i] for s in steps]) for i, k in
            enumerate(("obs", "actions", "rewards", "next_obs", "terminals"))}, returns


def test_gae_stops_at_episode_ends_and_bootstraps_only_cut_episodes():
    """Two episodes back to back: the first ends in a terminal (no bootstrap), the second is cut by the
    horizon (its last step bootstraps from the next state's value); hand-computed with gamma 0.5, lambda 0.5."""
    rewards = np.array([0.0, 1.0, 0.0, 0.0], np.float32)
    values = np.array([0.2, 0.4, 0.1, 0.3], np.float32)
    next_values = np.array([0.4, 9.0, 0.3, 0.8], np.float32)  # 9.0 follows a terminal: never read
    terminals = np.array([0, 1, 0, 0], np.float32)
    ends = np.array([False, True, False, True])
    adv = gae(rewards, values, next_values, terminals, ends, gamma=0.5, lam=0.5)
    d = [0.0 + 0.5 * 0.4 - 0.2, 1.0 - 0.4, 0.0 + 0.5 * 0.3 - 0.1, 0.0 + 0.5 * 0.8 - 0.3]
    assert adv == pytest.approx([d[0] + 0.25 * d[1], d[1], d[2] + 0.25 * d[3], d[3]], abs=1e-6)


def dapg_batch(actor, obs: np.ndarray, seed: int) -> dict:
    """An on-policy batch on the given states: actions sampled from the actor, random rewards, 50-step episodes."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        _, _, u = actor.sample(torch.from_numpy(obs), gen)
    n = len(obs)
    return {"obs": obs, "next_obs": obs, "pre_tanh": u.numpy(),
            "rewards": np.random.default_rng(seed).normal(size=n).astype(np.float32),
            "terminals": np.zeros(n, np.float32), "episode_ends": np.arange(n) % 50 == 49}


@pytest.mark.parametrize("adaptive", [False, True])
def test_dapg_steers_each_iteration_to_the_target_kl(adaptive):
    """A BC actor's std is small, so a learning rate that is fine for BC moves the policy by a KL far above
    the target in one PPO epoch (on Lift: 1-340 against 0.05). The iteration stops its minibatch steps once
    the KL passes the target, and the adaptive learning rate brings the next iterations to it; without
    the adaptation every iteration keeps overshooting (here a learning rate far too high for the toy actor). The demo term's weight decays as lambda0 * lambda1^k."""
    torch.manual_seed(0)
    data = chain_demos(0.99)
    policy = build("gaussian", data["obs"], data["actions"], hidden_dims=(32, 32))
    bc_train(policy, data["obs"][:, None], data["actions"][:, None], steps=300)
    actor = TanhActor(policy).eval()
    demo = ReplayBuffer(1, 1)
    demo.add(data)
    cfg = DAPGConfig(actor_lr=0.1, minibatch=64, epochs=5, target_kl=0.02, adaptive_lr=adaptive, lambda0=0.1,
                     lambda1=0.5, value_hidden=(16, 16))
    learner = DAPG(cfg, actor, seed=0)
    obs = np.random.default_rng(0).uniform(0.0, 1.2, size=(400, 1)).astype(np.float32)
    stats = [learner.train_on(dapg_batch(actor, obs, k), demo) for k in range(8)]
    assert [s["demo_weight"] for s in stats[:3]] == pytest.approx([0.1, 0.05, 0.025])
    kls = [s["approx_kl"] for s in stats]
    assert kls[0] > 3 * cfg.target_kl, kls  # the starting step size overshoots
    assert stats[0]["actor_updates"] < cfg.epochs * 400 // cfg.minibatch  # and the iteration stopped early
    if adaptive:  # measured: KL 0.23 at first, then 0.012-0.062 (mean of the last four 0.027)
        assert np.mean(kls[-4:]) < 2 * cfg.target_kl, kls
        assert stats[-1]["actor_lr"] < cfg.actor_lr / 3
    else:  # measured: 0.17-1.7 in every iteration
        assert np.mean(kls[-4:]) > 5 * cfg.target_kl, kls
        assert stats[-1]["actor_lr"] == cfg.actor_lr


def test_rlpd_raises_the_return_of_a_weak_bc_start():
    """BC on a slow demonstrator (speed 0.3 of the maximum) reaches the goal from near starts only; RLPD
    with half-demo batches learns to move faster: the evaluation return rises well above the start's."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    starts = rng.uniform(-1, 1, size=(400, 2)).astype(np.float32)
    demo_actions = (-0.3 * starts / np.maximum(np.linalg.norm(starts, axis=1, keepdims=True), 1e-3)).astype(np.float32)
    policy = build("gaussian", starts, demo_actions, hidden_dims=(64, 64))
    bc_train(policy, starts[:, None], demo_actions[:, None], steps=300)
    actor = TanhActor(policy).eval()
    demo = ReplayBuffer(2, 2)
    demo.add(rollout(actor, starts[:40], explore=False)[0])  # the demonstrator's own episodes
    eval_starts = np.random.default_rng(1).uniform(-1, 1, size=(100, 2)).astype(np.float32)
    _, start_returns = rollout(actor, eval_starts, explore=False)
    learner = RLPD(RLPDConfig(batch_size=128, utd=1, num_critics=10, critic_hidden=(32, 32), actor_lr=3e-4,
                              critic_warmup_updates=100), actor, seed=0)
    learner.warm_up(demo)
    online, gen = ReplayBuffer(2, 2), torch.Generator().manual_seed(0)
    for round_ in range(9):  # about 1,300 env steps and as many updates
        batch, _ = rollout(actor, rng.uniform(-1, 1, size=(8, 2)).astype(np.float32), explore=True, gen=gen)
        online.add(batch)
        learner.train_on(len(batch["rewards"]), demo, online)
    _, end_returns = rollout(actor, eval_starts, explore=False)
    assert end_returns.mean() > start_returns.mean() + 1.0, (start_returns.mean(), end_returns.mean())


# ----- Lift: resume after kill -9, and bad input -----------------------------------------------------
def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def lift_bc(lift_demos, tmp_path_factory):
    from takeover.policies.train import TrainConfig, train

    out = tmp_path_factory.mktemp("finetune_bc") / "bc"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="gaussian", steps=20, eval_episodes=0, threads=1,
                      head_options={"hidden_dims": [64, 64]}))
    return out / "checkpoints" / "best.pt"


def test_bad_finetune_input_is_one_line_and_modifies_nothing(lift_demos, lift_bc, tmp_path, capsys):
    policy, spec, _ = load_checkpoint(lift_bc)
    gmm = make_policy(make_config("gmm"), policy.shapes, {k: getattr(policy.normalizer, k).numpy() for k in (
        "obs_mean", "obs_std", "obs_min", "obs_max", "action_mean", "action_std", "action_min", "action_max")})
    save_checkpoint(tmp_path / "gmm.pt", gmm, spec)
    save_checkpoint(tmp_path / "can.pt", policy, EnvSpec(task="PickPlaceCan"))
    other = make_policy(policy.config, PolicyShapes(("robot0_eef_pos", "state"), ((3,), (4,)), 7),
                        {k: np.zeros(d) if "std" not in k else np.ones(d) for k, d in
                         [(k, 7 if "action" in k else 7) for k in ("obs_mean", "obs_std", "obs_min", "obs_max",
                                                                   "action_mean", "action_std", "action_min", "action_max")]})
    save_checkpoint(tmp_path / "other_keys.pt", other, spec)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x")
    before = sha(lift_demos)
    run = tmp_path / "run"
    base = ["finetune", str(lift_bc), "--demos", str(lift_demos), "--out", str(run)]
    cases = [
        (["finetune", str(tmp_path / "gmm.pt"), "--demos", str(lift_demos), "--out", str(run)], "fine-tunable: gaussian"),
        (["finetune", str(tmp_path / "can.pt"), "--demos", str(lift_demos), "--out", str(run)],
         "demonstrations of Lift; the checkpoint is for PickPlaceCan"),
        (["finetune", str(tmp_path / "other_keys.pt"), "--demos", str(lift_demos), "--out", str(run)],
         "observation key(s) ['state'] missing"),
        (base + ["--env-steps", "0"], "must be at least 1"),
        (["finetune", str(lift_bc), "--demos", str(lift_demos), "--out", str(taken)], "exists; pass --resume"),
        (base + ["--resume"], "nothing to resume"),
        (base + ["--set", "utd=0"], "utd must be at least 1"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert run_cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err, (args, err)
        assert len(err.splitlines()) == 1, err
        assert not run.exists()
    assert sha(lift_demos) == before and [p.name for p in taken.iterdir()] == ["something"]


def test_success_replay_adds_successful_episodes_to_the_demo_buffer_and_a_resume_keeps_them(lift_demos, lift_bc,
                                                                                             tmp_path):
    from takeover.rl_finetune.config import FinetuneConfig
    from takeover.rl_finetune.run import Finetuner

    cfg = FinetuneConfig(checkpoint=str(lift_bc), demos=[str(lift_demos)], out=str(tmp_path / "run"), env_steps=10,
                         horizon=10, workers=0, eval_episodes=0,
                         algo_options={"success_replay": True, "num_critics": 2, "critic_hidden": [16, 16]})
    runner = Finetuner(cfg)
    base = len(runner.demo)
    dim, actions = runner.policy.shapes.obs_dim, runner.policy.shapes.action_dim
    rng = np.random.default_rng(0)
    # one round: an episode cut by the horizon (3 steps, return unknown), then one that succeeded (4 steps)
    batch = {"obs": rng.normal(size=(7, dim)).astype(np.float32), "actions": rng.uniform(-1, 1, (7, actions)),
             "rewards": np.array([0, 0, 0, 0, 0, 0, 1.0]), "next_obs": rng.normal(size=(7, dim)).astype(np.float32),
             "terminals": np.array([0, 0, 0, 0, 0, 0, 1.0]),
             "mc_returns": np.r_[[-np.inf] * 3, discounted_returns(np.array([0, 0, 0, 1.0]), 0.99)],
             "pre_tanh": np.zeros((7, actions), np.float32)}
    runner.add_online(batch)
    assert len(runner.online) == 7 and len(runner.demo) == base + 4
    assert np.allclose(runner.demo.data["obs"][-4:], batch["obs"][3:])
    runner.save_state()
    resumed = Finetuner(cfg, resume=True)
    assert len(resumed.demo) == base + 4
    for key, value in runner.demo.data.items():
        assert np.array_equal(resumed.demo.data[key], value), key


@pytest.mark.slow
def test_killed_finetune_resumes_with_the_same_steps_and_buffers(lift_demos, lift_bc, tmp_path):
    from takeover.rl_finetune.config import FinetuneConfig
    from takeover.rl_finetune.run import Finetuner

    run = tmp_path / "run"
    opts = ["--set", "batch_size=32", "--set", "utd=1", "--set", "critic_hidden=[32,32]", "--set", "num_critics=4"]
    args = [sys.executable, "-m", "takeover.cli.main", "finetune", str(lift_bc), "--demos", str(lift_demos),
            "--out", str(run), "--env-steps", "100000", "--horizon", "10", "--workers", "0", "--eval-episodes", "0",
            *opts]
    saved = kill_finetune_after(args, run, env_steps=20, timeout_s=180)
    cfg = FinetuneConfig(checkpoint=str(lift_bc), demos=[str(lift_demos)], out=str(run), env_steps=saved["env_steps"] + 20,
                         horizon=10, workers=0, eval_episodes=0,
                         algo_options={"batch_size": 32, "utd": 1, "critic_hidden": [32, 32], "num_critics": 4})
    resumed = Finetuner(cfg, resume=True)
    assert resumed.env_steps == saved["env_steps"] and resumed.episodes == saved["episodes"]
    for key, value in saved["online"].items():
        assert torch.equal(torch.as_tensor(resumed.online.state_dict()[key]), value), key
    assert len(resumed.demo) > 0
    for name, tensor in saved["actor"].items():
        assert torch.equal(resumed.policy.state_dict()[name], tensor), name
    result = resumed.run()
    assert result["env_steps"] >= saved["env_steps"] + 20
    assert resumed.online.added == result["env_steps"]
    policy, _, info = load_checkpoint(run / "checkpoints" / "last_policy.pt")  # a standard checkpoint
    assert info["step"] == result["env_steps"] and policy.config.head == "gaussian"
    assert json.loads((run / "config.json").read_text())["finetune"]["algo"] == "rlpd"


def test_eval_sample_evaluates_mean_and_sampled_actions_on_the_same_seeds(lift_demos, lift_bc, tmp_path, monkeypatch):
    import takeover.rl_finetune.run as run_module
    from takeover.rl_finetune.config import FinetuneConfig

    calls, reports = [], []
    real = run_module.evaluate

    def spy(path, seeds=None, sample=False, **kw):
        calls.append((tuple(seeds), sample))
        reports.append(real(path, seeds=seeds, sample=sample, **kw))
        return reports[-1]

    monkeypatch.setattr(run_module, "evaluate", spy)
    cfg = FinetuneConfig(checkpoint=str(lift_bc), demos=[str(lift_demos)], out=str(tmp_path / "run"), env_steps=10,
                         horizon=10, workers=0, eval_episodes=2, eval_sample=True,
                         algo_options={"num_critics": 2, "critic_hidden": [16, 16], "batch_size": 8})
    run_module.Finetuner(cfg).run()
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["kind"] == "eval"]
    assert len(evals) == 2 and len(calls) == 4  # start and end, each with the mean and with sampled actions
    assert [s for _, s in calls] == [False, True, False, True] and calls[0][0] == calls[1][0]
    # each record holds its own evaluation's numbers: the mean's at the top, the sampled one's under "sampled"
    for r, mean, drawn in zip(evals, reports[0::2], reports[1::2]):
        assert not mean.sampled and drawn.sampled and drawn.seeds == mean.seeds == [1_000_000, 1_000_001]
        assert (r["success_rate"], r["ci95"]) == (mean.success_rate, list(mean.ci95))
        assert r["sampled"] == {"success_rate": drawn.success_rate, "ci95": list(drawn.ci95),
                                "mean_return": float(np.mean([e["total_reward"] for e in drawn.per_episode]))}
        assert drawn.success_rate == drawn.successes / 2 and drawn.episodes == 2
    assert (tmp_path / "run" / "plots" / "learning_curve.png").exists()


@pytest.fixture(scope="module")
def tiny_lift(tmp_path_factory):
    from takeover.policies.train import TrainConfig, train
    from takeover.datasets.scripted_collection import collect_scripted

    root = tmp_path_factory.mktemp("tiny_finetune")
    demos = root / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift", horizon=40), str(demos), 2, workers=1)
    train(TrainConfig(data=str(demos), out=str(root / "bc"), head="gaussian", steps=2, eval_episodes=0, threads=1,
                      head_options={"hidden_dims": [16, 16]}))
    return demos, root / "bc" / "checkpoints" / "best.pt"


def test_dapg_stops_at_the_env_step_budget_and_best_is_never_worse_than_the_start(tiny_lift, tmp_path, monkeypatch):
    """A DAPG iteration wants 2,000 steps; a 25-step budget runs 25 (two whole 10-step episodes and one cut at
    5), and when the start evaluates better than every fine-tuned actor, best.pt is the start."""
    from types import SimpleNamespace

    import takeover.rl_finetune.run as run_module
    from takeover.rl_finetune.config import FinetuneConfig

    demos, bc = tiny_lift

    def evaluate(path, **kw):  # the start succeeds, every fine-tuned actor fails
        rate = 1.0 if path.name == "start.pt" else 0.0
        return SimpleNamespace(success_rate=rate, ci95=(rate, rate), episodes=1, mean_length=10.0,
                               per_episode=[{"total_reward": rate}])

    monkeypatch.setattr(run_module, "evaluate", evaluate)
    run = tmp_path / "run"
    cfg = FinetuneConfig(checkpoint=str(bc), demos=[str(demos)], out=str(run), algo="dapg", env_steps=25, horizon=10,
                         workers=0, eval_episodes=1, eval_every=10,
                         algo_options={"value_hidden": [16, 16], "minibatch": 8, "epochs": 1})
    runner = run_module.Finetuner(cfg)
    assert runner.round_lengths() == [10, 10, 5]
    result = runner.run()
    assert result["env_steps"] == 25
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in records if r["kind"] == "collect"] == [25]
    assert result["best"] == {"success_rate": 1.0, "env_steps": 0}
    assert (run / "checkpoints" / "best.pt").read_bytes() == (run / "checkpoints" / "start.pt").read_bytes()
