"""Run one expert episode in-process (the parallel rollout runner lives in `takeover.sim.rollout`)."""
from __future__ import annotations

import logging
import time

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_SUCCESS_HOLD = 5


def run_expert_episode(env, expert, seed: int, max_steps: int | None = None, stop_on_success: bool = True,
                       success_hold: int = DEFAULT_SUCCESS_HOLD, before=None) -> dict:
    """Reset `env` with `seed`, let `expert` act until success has held for `success_hold`
    consecutive steps (when `stop_on_success`) or `max_steps` (default: the env's horizon).

    `before(env, obs) -> obs`, if given, runs right after the reset (e.g. to perturb the start
    state); its steps do not count toward `length`. Returns success (reached and held), length
    (steps taken), first_success_step (or None), phases (expert phase per step) and wall_s."""
    max_steps = env.max_steps if max_steps is None else int(max_steps)
    start = time.perf_counter()
    obs = env.reset(seed=seed)
    expert.reset(env)
    if before is not None:
        obs = before(env, obs)
    streak, first_success, phases, success = 0, None, [], False
    length = 0
    for t in range(max_steps):
        action = expert.act(obs, env)
        phases.append(getattr(expert, "phase", ""))
        obs, _, ok, _, _ = env.step(action)
        length = t + 1
        streak = streak + 1 if ok else 0
        if ok and first_success is None:
            first_success = t
        if streak >= success_hold:
            success = True
            if stop_on_success:
                break
    if not stop_on_success:
        success = streak >= success_hold or (success and streak > 0)
    wall = time.perf_counter() - start
    logger.debug("seed %d: success=%s length=%d (%.2fs)", seed, success, length, wall)
    return {"seed": seed, "success": bool(success), "length": length, "first_success_step": first_success,
            "phases": phases, "wall_s": wall}


def random_action_prefix(steps: int, rng_seed: int, scale=1.0):
    """A `before` hook: `steps` uniformly random actions (seeded), to start the expert from a
    perturbed state. `scale` is a number or one bound per action dimension."""
    def before(env, obs):
        rng = np.random.default_rng(rng_seed)
        bound = np.broadcast_to(np.asarray(scale, dtype=np.float64), (env.action_dim,))
        for _ in range(steps):
            obs, *_ = env.step(rng.uniform(-bound, bound))
        env.t = 0
        return obs
    return before
