"""Rollouts: one episode in-process, or many over worker processes with deterministic seeds.

An agent is anything with `reset(env)` and `act(obs, env) -> action` (scripted experts, wrapped
policies, the mixtures in `agents.py`). `EpisodeRun` is the one episode loop; `run_rollouts` gives each episode its own seed; the outcome of an episode depends only on
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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .agents import as_decision
from .env import Env, make_env
from .errors import SimError
from .lifeline import Parent, bind_to_parent, parent_here
from .spec import EnvSpec

log = logging.getLogger(__name__)


@dataclass
class EpisodeResult:
    seed: int
    success: bool  # success held for `success_hold` consecutive steps at some point
    length: int  # steps taken (a `before` hook's steps not counted)
    total_reward: float
    first_success_step: int | None = None  # steps taken when success was first seen (1 = after the first action)
    video: str | None = None
    episode: object = None  # what the recorder's finish() returned (an Episode), when recording
    wall_s: float = 0.0

    def summary(self) -> dict:
        return {"seed": self.seed, "success": self.success, "length": self.length,
                "total_reward": round(self.total_reward, 4), "first_success_step": self.first_success_step,
                "video": self.video}


def seed_everything(seed: int):
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


class EpisodeRun:
    """One episode, one step at a time: the only place an agent's action meets the simulator.

    `run_episode` loops it to the end; the teleop window calls `step()` once per frame. Per step:
    the agent decides (an action, or a `Decision` with a label and extras), the noise hook perturbs
    what is executed (DART: the clean action stays the label), the environment steps, the success
    streak is updated, and the recorder (when given) stores the step with its extras; the executed
    action is stored as `executed_actions` whenever it can differ from the label.

    `recorder` is a factory (e.g. `takeover.datasets.EpisodeRecorder`) of an object with
    `add(obs, action, reward, next_obs, done, state, **extras)`, `clear()`, `__len__` and
    `finish(model_file, **attrs)`; the loop stays free of any file format."""

    def __init__(self, env: Env, agent, *, success_hold: int = 1, max_steps: int | None = None,
                 action_noise: Callable | None = None, recorder: Callable | None = None):
        if success_hold < 1:
            raise SimError(f"success_hold must be >= 1, got {success_hold}")
        self.env, self.agent, self.success_hold = env, agent, int(success_hold)
        self.max_steps = int(max_steps or env.max_steps)
        self._noise_source = action_noise
        self.recorder = recorder() if recorder is not None else None
        self.seed = None

    def reset(self, seed: int, before: Callable | None = None) -> dict:
        """Reset the environment and the agent for `seed`. `before(env, obs) -> obs` runs right after
        the reset (a perturbed start); its steps are neither counted nor recorded."""
        self.seed = int(seed)
        seed_everything(self.seed)
        noise = self._noise_source
        self.action_noise = noise.for_episode(self.seed) if hasattr(noise, "for_episode") else noise
        self.obs = self.env.reset(seed=self.seed)
        self.agent.reset(self.env)
        if before is not None:
            self.obs = before(self.env, self.obs)
        if self.recorder is not None:
            self.recorder.clear()
        self.length, self.total_reward, self.streak = 0, 0.0, 0
        self.first_success_step, self.succeeded, self.last_success = None, False, False
        self.started = time.perf_counter()
        return self.obs

    @property
    def done(self) -> bool:
        return self.length >= self.max_steps

    def step(self, **extras):
        """Advance one step; `extras` are per-step arrays from the caller (e.g. the device's input
        log), recorded beside the agent's own. Returns (obs, reward, success, truncated)."""
        decision = as_decision(self.agent.act(self.obs, self.env))
        label = decision.action if decision.label is None else np.asarray(decision.label, dtype=np.float64)
        executed = self.action_noise(decision.action) if self.action_noise is not None else decision.action
        state = self.env.get_state() if self.recorder is not None else None
        next_obs, reward, success, truncated, _ = self.env.step(executed)
        self.length += 1
        self.total_reward += reward
        self.streak = self.streak + 1 if success else 0
        self.last_success = bool(success)
        if success and self.first_success_step is None:
            self.first_success_step = self.length
        self.succeeded = self.succeeded or self.streak >= self.success_hold
        if self.recorder is not None:
            if self.action_noise is not None or decision.label is not None:
                extras["executed_actions"] = np.asarray(executed, dtype=np.float32)
            self.recorder.add(self.obs, label, reward, next_obs, bool(success or truncated), state,
                              **decision.extras, **extras)
        self.obs = next_obs
        return next_obs, reward, bool(success), bool(truncated or self.done)

    def episode(self, **attrs):
        """The recorded episode (recorder.finish) with `success` and `seed` filled in; empties the recorder."""
        attrs = {"success": bool(self.succeeded), "seed": int(self.seed), **attrs}
        return self.recorder.finish(model_file=self.env.model_xml(), **attrs)

    def result(self, video: str | None = None, **episode_attrs) -> EpisodeResult:
        episode = self.episode(**episode_attrs) if self.recorder is not None and len(self.recorder) else None
        return EpisodeResult(self.seed, bool(self.succeeded), self.length, float(self.total_reward),
                             self.first_success_step, video, episode, time.perf_counter() - self.started)


def run_episode(env: Env, agent, seed: int, max_steps: int | None = None, stop_on_success: bool = True,
                success_hold: int = 1, record: Callable | None = None, action_noise: Callable | None = None,
                before: Callable | None = None, video_path: str | None = None, video_size: int = 256,
                camera: str = "agentview", episode_attrs: dict | None = None) -> EpisodeResult:
    """Run one episode to the end: until success has held for `success_hold` steps (when
    `stop_on_success`) or `max_steps` (default: the task's horizon).

    `record` is a recorder factory (see `EpisodeRun`); the result's `episode` then holds the
    recording, with `episode_attrs` (source, round, ...) as its attributes. `action_noise(action) ->
    executed action` injects noise (DART); a noise object with `for_episode(seed)` gets a fresh
    generator per episode, so noise depends only on the seed. `before` perturbs the start state. An
    agent ends the episode early by setting its attribute `gave_up` to true."""
    run = EpisodeRun(env, agent, success_hold=success_hold, max_steps=max_steps, action_noise=action_noise,
                     recorder=record)
    run.reset(seed, before=before)
    frames = [env.render(video_size, video_size, camera)] if video_path else None
    while not run.done:
        run.step()
        if frames is not None:
            frames.append(env.render(video_size, video_size, camera))
        if stop_on_success and run.succeeded:
            break
        if getattr(agent, "gave_up", False):  # an agent that knows the episode is lost (demo generation)
            break
    video = None
    if frames is not None:
        from .video import write_mp4

        video = str(write_mp4(video_path, frames, fps=env.spec.control_freq))
    return run.result(video, **(episode_attrs or {}))


def random_action_prefix(steps: int, rng_seed: int, scale=1.0):
    """A `before` hook: `steps` uniformly random actions (seeded), to start from a perturbed state.
    `scale` is a number or one bound per action dimension."""
    def before(env, obs):
        rng = np.random.default_rng(rng_seed)
        bound = np.broadcast_to(np.asarray(scale, dtype=np.float64), (env.action_dim,))
        for _ in range(steps):
            obs, *_ = env.step(rng.uniform(-bound, bound))
        env.t = 0
        return obs
    return before


# ----- parallel ------------------------------------------------------------------------------------
_worker: dict = {}


def _init_worker(spec_json: str, parent: Parent):
    """A worker process's start: die with the parent, one torch thread, the environment."""
    bind_to_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    _build_env(spec_json)


def _build_env(spec_json: str):
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

    `workers=0` runs in this process (its thread settings untouched). Workers die with this process
    (`lifeline`). Agent factories must be picklable (module-level classes or
    dataclasses; set `wants_env = True` on one to receive the worker's env)."""

    def __init__(self, spec: EnvSpec, workers: int = 1):
        self.spec = spec
        self.workers = workers
        self._pool = None
        if workers > 0:
            ctx = mp.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(spec.to_json(), parent_here()))
            # start every worker now: the executor spawns lazily and reuses idle workers, so without
            # this a short first batch can run on one worker while the rest start mid-way
            pings = [self._pool.submit(_ready, 0.2) for _ in range(workers)]
            started = {p.result() for p in pings}
            log.debug("rollout pool: %d workers ready", len(started))

    def run(self, agent_factory, seeds, video_seeds=(), video_dir=None,
            progress: Callable[[EpisodeResult], None] | None = None, **options) -> list[EpisodeResult]:
        """One episode per seed, results in the order of `seeds`. `options` go to `run_episode`
        (max_steps, stop_on_success, success_hold, record, action_noise, before, video_size, camera,
        episode_attrs)."""
        seeds = [int(s) for s in seeds]
        video_seeds = set(video_seeds)
        paths = {s: str(Path(video_dir) / f"episode_seed{s}.mp4") if (video_dir and s in video_seeds) else None
                 for s in seeds}
        results: dict[int, EpisodeResult] = {}
        if self._pool is None:
            if "env" not in _worker or _worker.get("spec") != self.spec:
                _build_env(self.spec.to_json())  # in the caller's process: its threads stay as they are
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
