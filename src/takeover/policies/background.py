"""BackgroundPlanner: a policy as a rollout agent whose next action (and so its next chunk, when the
queue runs dry) is computed on a background thread while the current frame renders and displays.

The window calls `prefetch(obs)` right after a step with the observation the next `act` will get;
the thread then runs `policy.act(obs)`, which re-plans when it must (a new chunk for chunked heads, the
LSTM's cell step, one forward pass for single-step heads). `act(obs)` with that same observation
takes the result, waiting only for whatever the render did not already cover. The actions are those of
the synchronous policy, exactly: the same calls in the same order, only on another thread, and never
two at once (every access to the policy waits for the pending call first). Works for every head.

`reset()` (a new episode, or control handed back after a take-over) drops a pending result; a new
policy (a retrained checkpoint) is swapped in with `set_policy` between episodes.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np


class BackgroundPlanner:
    def __init__(self, policy, threads: int | None = 1):
        self.policy = policy
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner",
                                        initializer=_set_threads, initargs=(threads,))
        self._pending: tuple[object, Future] | None = None  # (the observation, its future)
        self.prefetched = 0  # acts served from a prefetch (tests, HUD)
        self.synchronous = 0  # acts computed in the caller's thread

    def _settle(self) -> Future | None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending[1].exception()  # wait; an error surfaces at result() below, or is dropped on reset
        return pending

    def reset(self, env=None):
        self._settle()
        self.policy.reset()

    def set_policy(self, policy):
        self._settle()
        self.policy = policy
        policy.reset()

    def prefetch(self, obs):
        """Start computing the action for `obs` (the observation the next `act` receives)."""
        self._settle()
        self._pending = (obs, self._pool.submit(self.policy.act, obs))

    def act(self, obs, env=None) -> np.ndarray:
        pending = self._settle()
        if pending is not None and pending[0] is obs:
            self.prefetched += 1
            return pending[1].result()
        self.synchronous += 1
        return self.policy.act(obs)

    def close(self):
        self._settle()
        self._pool.shutdown(wait=True)


def _set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)

