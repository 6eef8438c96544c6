"""Residual RL on a frozen base policy: a zero residual is the base exactly (chunked and recurrent heads,
through a checkpoint too), SAC on the residual removes a base policy's known bias, and a residual
fine-tuning run on Lift resumes after kill -9 with the same steps, buffers and residual weights."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from kill9 import kill_finetune_after
from synthetic import build, train as bc_train
from takeover.cli.app import run_cli
from takeover.policies.checkpoint import load_checkpoint, save_checkpoint
from takeover.policies.errors import PolicyError
from takeover.policies.residual import ResidualConfig, ResidualPolicy
from takeover.rl_finetune.actor import TanhActor
from takeover.rl_finetune.buffers import ReplayBuffer
from takeover.rl_finetune.residual import ResidualActor, ResidualRLConfig, with_base_actions
from takeover.rl_finetune.rlpd import RLPD
from takeover.sim import EnvSpec


@pytest.mark.parametrize("head, overrides", [
    ("diffusion", {"obs_horizon": 2, "action_horizon": 8, "exec_horizon": 4, "down_dims": [16, 32],
                   "inference_steps": 3}),
    ("lstm", {"rnn_hidden_dim": 16, "rnn_layers": 1, "seq_len": 4}),
])
def test_zero_residual_reproduces_the_base_exactly(head, overrides, tmp_path):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 3)).astype(np.float32)
    actions = np.tanh(obs[:, :2]).astype(np.float32)
    torch.manual_seed(0)
    base = build(head, obs, actions, **overrides).eval()
    episode = rng.normal(size=(13, 3)).astype(np.float32)

    def run(policy):
        policy.reset()
        torch.manual_seed(1)  # the diffusion head samples its chains from torch's generator
        return np.stack([policy.act({"state": o}) for o in episode])

    expected = run(base)
    wrapped = ResidualPolicy(base, ResidualConfig(scale=0.3))
    assert np.array_equal(run(wrapped), expected)
    save_checkpoint(tmp_path / "residual.pt", wrapped, EnvSpec(task="Lift"))
    loaded, _, _ = load_checkpoint(tmp_path / "residual.pt")  # a standard checkpoint, base + residual
    assert isinstance(loaded, ResidualPolicy) and loaded.config.head == head
    assert np.array_equal(run(loaded), expected)
    with torch.no_grad():  # a non-zero residual moves the action by at most its scale
        loaded.net.mean.bias.fill_(5.0)
    moved = run(loaded)
    assert np.all(moved >= expected - 1e-6) and np.all(moved - expected <= 0.3 + 1e-6) and not np.allclose(moved, expected)


def test_residual_scale_must_be_positive():
    with pytest.raises(PolicyError, match="scale must be above 0"):
        ResidualConfig(scale=0.0)


class PointReach:
    """Batched: pos += 0.1 * action; success within 0.1 of the origin ends an episode; 25 steps."""

    horizon = 25

    def __init__(self, starts: np.ndarray):
        self.pos = starts.astype(np.float32).copy()

    def step(self, action: np.ndarray):
        self.pos = np.clip(self.pos + 0.1 * np.clip(action, -1, 1), -1.5, 1.5).astype(np.float32)
        dist = np.linalg.norm(self.pos, axis=1)
        return self.pos.copy(), -dist.astype(np.float32), dist < 0.1


def residual_rollout(actor: ResidualActor, base_actor: TanhActor, starts, explore: bool, gen=None):
    """Episodes of the residual policy (base action from the frozen base, plus the residual)."""
    env, alive = PointReach(starts), np.ones(len(starts), bool)
    obs, steps, final = env.pos.copy(), [], None
    for _ in range(env.horizon):
        with torch.no_grad():
            base = base_actor.deterministic(torch.from_numpy(obs))
            rows = torch.cat([torch.from_numpy(obs), base], 1)
            residual = actor.sample(rows, gen)[0] if explore else torch.tanh(actor(rows)[0])
            action = actor.executed(residual, rows).numpy()
        next_obs, reward, success = env.step(action)
        steps.append((obs[alive], action[alive], reward[alive], next_obs[alive], success[alive].astype(np.float32),
                      base[alive].numpy()))
        alive &= ~success
        obs = next_obs
    final = np.linalg.norm(obs, axis=1)
    parts = [np.concatenate([s[i] for s in steps]) for i in range(6)]
    batch = dict(zip(("obs", "actions", "rewards", "next_obs", "terminals"), parts[:5]))
    # the next row's base action is the base's proposal at next_obs (a pure function here)
    with torch.no_grad():
        next_base = base_actor.deterministic(torch.from_numpy(batch["next_obs"])).numpy()
    batch["obs"] = np.concatenate([batch["obs"], parts[5]], 1)
    batch["next_obs"] = np.concatenate([batch["next_obs"], next_base], 1)
    return batch, final


def test_residual_sac_removes_most_of_a_known_bias_of_the_base():
    """The base reaches for (0.3, 0) instead of the origin (BC on a demonstrator with that offset), so
    it stalls 0.3 away, outside the success radius. The residual (scale 1: the base's action near the origin
is off by 0.9, so a smaller scale could not cancel it) learns to cancel the offset."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    starts = rng.uniform(-1, 1, size=(400, 2)).astype(np.float32)
    bias = np.array([0.3, 0.0], np.float32)
    demo_actions = np.clip(-(starts - bias) * 3.0, -1, 1).astype(np.float32)
    base = build("gaussian", starts, demo_actions, hidden_dims=(64, 64))
    bc_train(base, starts[:, None], demo_actions[:, None], steps=400)
    base.eval()
    base_actor = TanhActor(base)
    policy = ResidualPolicy(base, ResidualConfig(scale=1.0, hidden=(64, 64)))
    actor = ResidualActor(policy).eval()
    eval_starts = np.random.default_rng(1).uniform(-1, 1, size=(100, 2)).astype(np.float32)
    _, start_final = residual_rollout(actor, base_actor, eval_starts, explore=False)
    assert 0.2 < np.median(start_final) < 0.4  # the base stalls near the biased goal
    cfg = ResidualRLConfig(batch_size=128, utd=1, num_critics=4, critic_hidden=(64, 64), demo_fraction=0.0,
                           critic_warmup_updates=0, scale=1.0, residual_hidden=(64, 64), init_alpha=0.05)
    learner = RLPD(cfg, actor, seed=0)
    online, gen = ReplayBuffer(4, 2), torch.Generator().manual_seed(0)
    demo = ReplayBuffer(4, 2)
    for _ in range(20):
        batch, _ = residual_rollout(actor, base_actor, rng.uniform(-1, 1, size=(8, 2)).astype(np.float32), True, gen)
        online.add(batch)
        learner.train_on(len(batch["rewards"]), demo, online)
    _, end_final = residual_rollout(actor, base_actor, eval_starts, explore=False)
    # measured: median final distance 0.31 -> 0.024 (the base alone never gets closer than the bias)
    assert np.median(end_final) < 0.25 * np.median(start_final), (np.median(start_final), np.median(end_final))
    assert not any(p.requires_grad for p in base.parameters())  # the base stayed frozen


def test_with_base_actions_pairs_each_row_with_its_own_and_the_next_proposal():
    t = {"obs": np.zeros((3, 2), np.float32), "next_obs": np.ones((3, 2), np.float32), "rewards": np.zeros(3)}
    base = np.array([[0.1], [0.2], [0.3], [0.4]], np.float32)  # 4 steps, the transitions cut after 3
    out = with_base_actions(t, base)
    assert out["obs"][:, 2].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert out["next_obs"][:, 2].tolist() == pytest.approx([0.2, 0.3, 0.4])
    last = with_base_actions({**t, "obs": t["obs"][:1], "next_obs": t["next_obs"][:1], "rewards": t["rewards"][:1]},
                             base[:1])
    assert last["next_obs"][0, 2] == pytest.approx(0.1)  # the final step reuses its own proposal


@pytest.fixture(scope="module")
def lift_lstm(lift_demos, tmp_path_factory):
    from takeover.policies.train import TrainConfig, train

    out = tmp_path_factory.mktemp("residual_base") / "lstm"
    train(TrainConfig(data=str(lift_demos), out=str(out), head="lstm", steps=20, eval_episodes=0, threads=1,
                      head_options={"rnn_hidden_dim": 32, "rnn_layers": 1}))
    return out / "checkpoints" / "best.pt"


def test_bad_residual_input_is_one_line_and_modifies_nothing(lift_demos, lift_lstm, tmp_path, capsys):
    run = tmp_path / "run"
    base = ["finetune", str(lift_lstm), "--demos", str(lift_demos), "--out", str(run), "--algo", "residual"]
    for args, message in [(base + ["--set", "scale=0"], "scale must be above 0"),
                          (base + ["--env-steps", "0"], "must be at least 1"),
                          (["finetune", str(lift_lstm), "--demos", str(lift_demos), "--out", str(run)],
                           "cannot be fine-tuned with RL")]:
        capsys.readouterr()
        assert run_cli(args) == 2, args
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not run.exists()


@pytest.mark.slow
def test_killed_residual_finetune_resumes_with_the_same_steps_buffers_and_weights(lift_demos, lift_lstm, tmp_path):
    from takeover.rl_finetune.config import FinetuneConfig
    from takeover.rl_finetune.run import Finetuner

    run = tmp_path / "run"
    algo = {"batch_size": 32, "utd": 1, "critic_hidden": [32, 32], "num_critics": 4, "residual_hidden": [32, 32],
            "critic_warmup_updates": 10, "ramp_steps": 0}
    opts = [x for k, v in algo.items() for x in ("--set", f"{k}={v}".replace(" ", ""))]
    args = [sys.executable, "-m", "takeover.cli.main", "finetune", str(lift_lstm), "--demos", str(lift_demos),
            "--out", str(run), "--algo", "residual", "--env-steps", "100000", "--horizon", "10", "--workers", "0",
            "--eval-episodes", "0", *opts]
    saved = kill_finetune_after(args, run, env_steps=20, timeout_s=240)
    cfg = FinetuneConfig(checkpoint=str(lift_lstm), demos=[str(lift_demos)], out=str(run), algo="residual",
                         env_steps=saved["env_steps"] + 20, horizon=10, workers=0, eval_episodes=0, algo_options=algo)
    resumed = Finetuner(cfg, resume=True)
    assert resumed.env_steps == saved["env_steps"] and resumed.episodes == saved["episodes"]
    for key, value in saved["online"].items():
        assert torch.equal(torch.as_tensor(resumed.online.state_dict()[key]), value), key
    for name, tensor in saved["actor"].items():
        assert torch.equal(resumed.policy.state_dict()[name], tensor), name
    assert any(name.startswith("net.") for name in saved["actor"])  # the residual's weights are in the state
    rows = resumed.online.data["obs"]
    assert rows.shape[1] == resumed.policy.shapes.obs_dim + resumed.policy.action_dim  # obs + base action
    result = resumed.run()
    assert result["env_steps"] >= saved["env_steps"] + 20
    policy, _, info = load_checkpoint(run / "checkpoints" / "last_policy.pt")
    assert isinstance(policy, ResidualPolicy) and policy.config.head == "lstm" and info["step"] == result["env_steps"]
