"""Rollouts: one episode in-process, or many over worker processes with deterministic seeds.

An agent is anything with `reset(env)` and `act(obs, env) -> action` (scripted experts, wrapped
policies). `run_rollouts` gives each episode its own seed; the outcome of an episode depends only on
its seed, never on which worker ran it or in what order (each episode also re-seeds numpy and torch).
Workers are spawned (not forked: torch threads and GL contexts do not survive a fork), build the
environment and the agent once, and use one torch thread each.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .env import Env, make_env
from .spec import EnvSpec

log = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    seed: int
    success: bool
    length: int
    total_reward: float
    first_success_step: int | None = None
    video: str | None = None
    trajectory: dict | None = None  # recorded arrays when asked: obs, next_obs, actions, states, ...

    def summary(self) -> dict:
        return {"seed": self.seed, "success": self.success, "length": self.length,
                "total_reward": round(self.total_reward, 4), "first_success_step": self.first_success_step,
                "video": self.video}


def seed_everything(seed: int):
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def run_episode(env: Env, agent, seed: int, max_steps: int | None = None, stop_on_success: bool = True,
                success_hold: int = 1, record: bool = False, action_noise: Callable | None = None,
                video_path: str | None = None, video_size: int = 256, camera: str = "agentview") -> EpisodeResult:
    """Run one episode. `action_noise(action) -> executed action` injects noise (DART): the agent's
    clean action is recorded as the label and the executed one as `executed_actions`. A noise object
    with `for_episode(seed)` gets a fresh generator per episode, so noise depends only on the seed."""
    seed_everything(seed)
    if action_noise is not None and hasattr(action_noise, "for_episode"):
        action_noise = action_noise.for_episode(seed)
    obs = env.reset(seed=seed)
    agent.reset(env)
    max_steps = max_steps or env.max_steps
    rec = _Recorder() if record else None
    frames = [env.render(video_size, video_size, camera)] if video_path else None
    total, held, first_success, t = 0.0, 0, None, 0
    for t in range(1, max_steps + 1):
        action = np.asarray(agent.act(obs, env), dtype=np.float64)
        executed = action_noise(action) if action_noise is not None else action
        state = env.get_state() if rec is not None else None
        next_obs, reward, success, _, _ = env.step(executed)
        total += reward
        if rec is not None:
            extras = {"executed_actions": executed} if action_noise is not None else {}
            rec.add(obs, action, reward, next_obs, success, state, extras)
        if frames is not None:
            frames.append(env.render(video_size, video_size, camera))
        obs = next_obs
        held = held + 1 if success else 0
        if success and first_success is None:
            first_success = t
        if stop_on_success and held >= success_hold:
            break
    video = None
    if frames is not None:
        from .video import write_mp4

        video = str(write_mp4(video_path, frames, fps=env.spec.control_freq))
    return EpisodeResult(seed, first_success is not None and (held >= success_hold or not stop_on_success), t,
                         total, first_success, video, rec.arrays() if rec is not None else None)


class _Recorder:
    def __init__(self):
        self.steps = []

    def add(self, obs, action, reward, next_obs, done, state, extras):
        self.steps.append((obs, action, reward, next_obs, done, state, extras))

    def arrays(self) -> dict:
        obs, actions, rewards, next_obs, dones, states, extras = zip(*self.steps)
        stack = lambda dicts: {k: np.stack([d[k] for d in dicts]) for k in dicts[0]}  # noqa: E731
        out = {"obs": stack(obs), "next_obs": stack(next_obs), "actions": np.stack(actions).astype(np.float32),
               "rewards": np.asarray(rewards, np.float32), "dones": np.asarray(dones, np.uint8),
               "states": np.stack(states)}
        out["extras"] = {k: np.stack([e[k] for e in extras]).astype(np.float32) for k in extras[0]}
        return out


# ----- parallel ------------------------------------------------------------------------------------
_worker: dict = {}


def _init_worker(spec_json: str):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _worker.clear()
    _worker["env"] = make_env(EnvSpec.from_json(spec_json))


def _agent_for(factory):
    """The worker keeps one agent and rebuilds it only when a different factory arrives (compared by
    value: a factory that names a new checkpoint file makes a new agent)."""
    if _worker.get("factory") != factory or "agent" not in _worker:
        _worker["agent"] = factory(_worker["env"]) if getattr(factory, "wants_env", False) else factory()
        _worker["factory"] = factory
    return _worker["agent"]


def _ready(hold_s: float) -> int:
    time.sleep(hold_s)  # keep this worker busy so the next ping has to start (and initialise) another
    return os.getpid()


def _run_one(factory, seed: int, video_path: str | None, options: dict):
    return run_episode(_worker["env"], _agent_for(factory), seed, video_path=video_path, **options)


class RolloutPool:
    """Worker processes that each hold one environment; reuse one pool for many batches (evaluation
    during training, DAgger rounds) so start-up (~seconds of imports per worker) is paid once.

    `workers=0` runs in this process. Agent factories must be picklable (module-level classes or
    dataclasses; set `wants_env = True` on one to receive the worker's env)."""

    def __init__(self, spec: EnvSpec, workers: int = 1):
        self.spec = spec
        self.workers = workers
        self._pool = None
        if workers > 0:
            ctx = mp.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(spec.to_json(),))
            # start every worker now: the executor spawns lazily and reuses idle workers, so without
            # this a short first batch can run on one worker while the rest start mid-way
            pings = [self._pool.submit(_ready, 0.2) for _ in range(workers)]
            started = {p.result() for p in pings}
            log.debug("rollout pool: %d workers ready", len(started))

    def run(self, agent_factory, seeds, video_seeds=(), video_dir=None,
            progress: Callable[[EpisodeResult], None] | None = None, **options) -> list[EpisodeResult]:
        """One episode per seed, results in the order of `seeds`. `options` go to `run_episode`
        (max_steps, stop_on_success, success_hold, record, action_noise, video_size, camera)."""
        seeds = [int(s) for s in seeds]
        video_seeds = set(video_seeds)
        paths = {s: str(Path(video_dir) / f"episode_seed{s}.mp4") if (video_dir and s in video_seeds) else None
                 for s in seeds}
        results: dict[int, EpisodeResult] = {}
        if self._pool is None:
            if "env" not in _worker or _worker.get("spec") != self.spec:
                _init_worker(self.spec.to_json())
                _worker["spec"] = self.spec
            for s in seeds:
                results[s] = _run_one(agent_factory, s, paths[s], options)
                if progress:
                    progress(results[s])
        else:
            futures = {self._pool.submit(_run_one, agent_factory, s, paths[s], options): s for s in seeds}
            for fut in as_completed(futures):
                results[futures[fut]] = res = fut.result()
                if progress:
                    progress(res)
        return [results[s] for s in seeds]

    def close(self):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_rollouts(spec: EnvSpec, agent_factory, seeds, workers: int = 1, **kwargs) -> list[EpisodeResult]:
    """One-shot: a pool for this batch only (`workers <= 1` runs in this process)."""
    with RolloutPool(spec, workers if workers > 1 else 0) as pool:
        return pool.run(agent_factory, seeds, **kwargs)
