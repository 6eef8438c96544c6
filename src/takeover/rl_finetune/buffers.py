"""Replay buffers and the transitions that fill them.

A transition is (obs, action, reward, next_obs, terminal, mc_return) with flat raw observations in
the policy's key order. `terminal` is 1 only where the task succeeded: success ends an episode (no
bootstrap); an episode cut by the horizon is not terminal (its last value is bootstrapped).
`mc_return` is the discounted return-to-go of an episode that reached its terminal (what that
action sequence achieved from there, so a lower bound on the optimal Q), -inf where the episode
was cut by the horizon (its return is incomplete; with rewards that can be negative it bounds nothing).

Demonstrations come from HDF5 files: the executed action is the transition's action (a DAgger
episode's label is the expert's, but what moved the robot is `executed_actions`), each episode is
cut at its first success (scripted demos keep going a few steps to hold it), and rewards are
recomputed in the fine-tuning reward mode by replaying the recorded states, so demo and online
rewards always mean the same thing.
"""
from __future__ import annotations

import numpy as np
import torch

from .errors import FinetuneError

FIELDS = ("obs", "actions", "rewards", "next_obs", "terminals", "mc_returns")
NO_RETURN = -np.inf  # mc_return of a transition whose episode did not end terminally


class ReplayBuffer:
    def __init__(self, obs_dim: int, action_dim: int, capacity: int = 1_000_000):
        self.capacity = int(capacity)
        self.data = {"obs": np.zeros((0, obs_dim), np.float32), "actions": np.zeros((0, action_dim), np.float32),
                     "rewards": np.zeros(0, np.float32), "next_obs": np.zeros((0, obs_dim), np.float32),
                     "terminals": np.zeros(0, np.float32), "mc_returns": np.zeros(0, np.float32)}
        self.added = 0  # transitions ever added (a full buffer overwrites the oldest)

    def __len__(self) -> int:
        return len(self.data["rewards"])

    def add(self, transitions: dict):
        n = len(transitions["rewards"])
        if n == 0:
            return
        transitions = {"mc_returns": np.full(n, NO_RETURN, np.float32), **transitions}
        for k in FIELDS:
            self.data[k] = np.concatenate([self.data[k], np.asarray(transitions[k], self.data[k].dtype)])[-self.capacity:]
        self.added += n

    def sample(self, n: int, generator: torch.Generator) -> dict:
        idx = torch.randint(len(self), (n,), generator=generator).numpy()
        return {k: torch.from_numpy(v[idx]) for k, v in self.data.items()}

    def state_dict(self) -> dict:
        return {**{k: torch.from_numpy(v.copy()) for k, v in self.data.items()}, "added": torch.tensor(self.added)}

    def load_state_dict(self, state: dict):
        n = len(state["rewards"])
        state = {"mc_returns": torch.full((n,), NO_RETURN), **state}  # a state saved before mc_returns existed
        self.data = {k: state[k].numpy().astype(np.float32).copy() for k in FIELDS}
        self.added = int(state["added"])


def mixed_batch(demo: ReplayBuffer, online: ReplayBuffer, batch_size: int, demo_fraction: float,
                generator: torch.Generator) -> dict:
    """RLPD's symmetric sampling: `demo_fraction` of every batch from the demonstrations, the rest from
    the online buffer (all from whichever one is not empty while the other is). `from_demo` marks rows."""
    n_demo = int(round(batch_size * demo_fraction)) if len(online) else batch_size
    if not len(demo):
        n_demo = 0
    parts = []
    if n_demo:
        parts.append((demo.sample(n_demo, generator), 1.0))
    if batch_size - n_demo:
        parts.append((online.sample(batch_size - n_demo, generator), 0.0))
    out = {k: torch.cat([p[k] for p, _ in parts]) for k in FIELDS}
    out["from_demo"] = torch.cat([torch.full((len(p["rewards"]),), flag) for p, flag in parts])
    return out


def successful_rows(transitions: dict) -> dict:
    """The transitions of episodes that reached success (their Monte-Carlo return is known)."""
    keep = np.isfinite(transitions["mc_returns"])
    return {k: v[keep] for k, v in transitions.items()}


def flat_obs(obs: dict, keys, n: int) -> np.ndarray:
    return np.concatenate([np.asarray(obs[k], np.float32).reshape(n, -1) for k in keys], axis=1)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Return-to-go sum_k gamma^k r_{t+k} of every step of one complete episode."""
    out = np.zeros(len(rewards), np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out.astype(np.float32)


def episode_transitions(episode, keys, rewards: np.ndarray, success_step: int | None, gamma: float) -> dict:
    """Transitions of a recorded Episode, cut after `success_step` (0-based; terminal there)."""
    n = len(episode) if success_step is None else success_step + 1
    actions = episode.extras.get("executed_actions", episode.actions)
    rewards = np.asarray(rewards[:n], np.float32)
    terminals = np.zeros(n, np.float32)
    mc_returns = np.full(n, NO_RETURN, np.float32)
    if success_step is not None:
        terminals[-1] = 1.0
        mc_returns = discounted_returns(rewards, gamma)
    return {"obs": flat_obs(episode.obs, keys, len(episode))[:n], "actions": np.asarray(actions[:n], np.float32),
            "rewards": rewards, "next_obs": flat_obs(episode.next_obs, keys, len(episode))[:n],
            "terminals": terminals, "mc_returns": mc_returns}


def relabel_rewards(env, episode, reward_mode: str, success_reward: float) -> tuple[np.ndarray, int | None]:
    """Per-step reward and the first success step of a demo, by replaying its recorded states in `env`
    (built with the fine-tuning spec: shaped or sparse rewards)."""
    n = len(episode)
    success = np.zeros(n, bool)
    shaped = np.zeros(n, np.float32)
    for t in range(n - 1):
        env.set_state(episode.states[t + 1])
        success[t] = env.check_success()
        shaped[t] = env.raw.reward(None) if reward_mode == "shaped" else 0.0
    success[-1] = bool(episode.attrs.get("success", False))  # its next state is not stored
    first = int(np.argmax(success)) if success.any() else None
    rewards = shaped if reward_mode == "shaped" else np.zeros(n, np.float32)
    if first is not None:
        rewards[first] = success_reward
    return rewards, first


def check_demo_file(reader, policy, spec, path) -> None:
    """Refuse a file of another task, observation layout or action size than the policy."""
    if reader.spec is None:
        raise FinetuneError(f"{path}: file has no environment spec; import it with `takeover data import-robosuite`")
    if reader.spec.task != spec.task:
        raise FinetuneError(f"{path}: demonstrations of {reader.spec.task}; the checkpoint is for {spec.task}")
    missing = [k for k in policy.shapes.obs_keys if k not in reader.obs_keys]
    if missing:
        raise FinetuneError(f"{path}: observation key(s) {missing} missing; the checkpoint reads {list(policy.shapes.obs_keys)}")
    if reader.action_dim != policy.shapes.action_dim:
        raise FinetuneError(f"{path}: actions have {reader.action_dim} values; the checkpoint's have {policy.shapes.action_dim}")
    if not len(reader):
        raise FinetuneError(f"{path}: holds no demonstrations")
    first = reader.episode(reader.demos[0], check=False)
    for key, shape in zip(policy.shapes.obs_keys, policy.shapes.obs_shapes):
        got = tuple(first.obs[key].shape[1:])
        if got != tuple(shape):
            raise FinetuneError(f"{path}: observation {key} has shape {got}; the checkpoint expects {tuple(shape)} "
                                f"(another observation layout)")


def check_demo_files(paths, policy, spec):
    from takeover.datasets import DemoReader

    for path in paths:
        with DemoReader(path) as reader:
            check_demo_file(reader, policy, spec, path)


def load_demo_buffer(paths, policy, spec, env, reward_mode: str, success_reward: float, gamma: float,
                     capacity: int = 1_000_000, row_dim: int | None = None, row_extra=None) -> tuple[ReplayBuffer, dict]:
    """Every episode of every file as transitions (call `check_demo_files` first). `row_extra`
    (transitions, episode) -> transitions adds what an actor's rows hold beyond the flat observation
    (a residual's base actions), `row_dim` values in all."""
    from takeover.datasets import DemoReader

    keys = policy.shapes.obs_keys
    buffer = ReplayBuffer(row_dim or policy.shapes.obs_dim, policy.shapes.action_dim, capacity)
    readers = [DemoReader(p) for p in paths]
    try:
        info = {"episodes": 0, "successes": 0, "interventions": 0}
        for reader in readers:
            for name in reader.demos:
                episode = reader.episode(name)
                rewards, first = relabel_rewards(env, episode, reward_mode, success_reward)
                transitions = episode_transitions(episode, keys, rewards, first, gamma)
                if row_extra is not None:
                    transitions = row_extra(transitions, episode)
                buffer.add(transitions)
                info["episodes"] += 1
                info["successes"] += first is not None
                info["interventions"] += int(np.sum(episode.extras.get("interventions", 0)))
    finally:
        for r in readers:
            r.close()
    info["transitions"] = len(buffer)
    return buffer, info
