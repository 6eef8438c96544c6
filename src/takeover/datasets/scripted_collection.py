"""Scripted collection: a scripted expert is the operator, running over worker processes.

Episodes run in seed order in batches; a batch's successful episodes (or all, with keep_failed) are
saved through the crash-safe DemoWriter in seed order, so the file's content depends only on the seeds.
With `noise`, the executed action is perturbed (DART) while the expert's clean action is the label.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from takeover.sim.env import object_layout
from takeover.sim.experts import EXPERT_SUCCESS_HOLD, make_expert
from takeover.sim.rollout import RolloutPool
from takeover.sim.spec import EnvSpec

from .episode import EpisodeRecorder
from .writer import DemoWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertAgent:
    """Picklable factory of the scripted expert for rollout workers."""

    task: str

    def __call__(self):
        return make_expert(self.task)


@dataclass(frozen=True)
class EpisodeNoise:
    """Picklable DART noise for rollout workers: one generator per episode, seeded by the episode seed
    (and the base seed), so the noise an episode sees does not depend on which worker ran it."""

    noise: object  # sim.noise.ActionNoise
    base_seed: int = 0

    def for_episode(self, seed: int):
        return dataclasses.replace(self.noise, seed=[self.base_seed, seed]).apply

    def describe(self) -> str:
        return f"DART action noise, std per dimension {[round(float(s), 4) for s in self.noise.std]}"


def collect_scripted(spec: EnvSpec, out: str, episodes: int, seed: int | None = None, workers: int = 1,
                     keep_failed: bool = False, append: bool = False, action_noise=None, max_attempts: int | None = None,
                     progress=None) -> dict:
    """Save `episodes` expert demonstrations (successful ones only unless keep_failed) to `out`.

    Seeds start at `seed` (default 0; with append, after the file's largest seed). Gives up after
    `max_attempts` episodes (default 3x the request) so a broken expert cannot loop forever."""
    max_attempts = max_attempts or 3 * episodes
    saved, tried, successes = 0, 0, 0
    if action_noise is not None and not isinstance(action_noise, EpisodeNoise):
        action_noise = EpisodeNoise(action_noise, seed or 0)
    attrs = {"source": "expert"}
    if action_noise is not None:
        attrs["noise"] = action_noise.describe()
    # the layout now, not the writer's default (known only once this process has built the env): the
    # pool builds its env later, or in other processes, and the file would go without it
    with DemoWriter(out, spec, append=append, object_layout=object_layout(spec)) as writer, \
            RolloutPool(spec, workers if workers > 1 else 0) as pool:
        next_seed = writer.next_seed if (append and seed is None) else (seed or 0)
        while saved < episodes and tried < max_attempts:
            batch = min(max(1, (episodes - saved) if keep_failed else episodes - saved), 4 * max(1, workers))
            seeds = list(range(next_seed, next_seed + batch))
            next_seed += batch
            results = pool.run(ExpertAgent(spec.task), seeds, record=EpisodeRecorder, action_noise=action_noise,
                               success_hold=EXPERT_SUCCESS_HOLD, episode_attrs=attrs)
            for res in results:
                tried += 1
                successes += res.success
                if (res.success or keep_failed) and saved < episodes:
                    writer.save(res.episode)
                    saved += 1
                if progress:
                    progress(saved, tried, res)
    summary = {"saved": saved, "tried": tried, "expert_successes": successes}
    if saved < episodes:
        log.warning("saved %d of %d requested demos after %d attempts", saved, episodes, tried)
    return summary
