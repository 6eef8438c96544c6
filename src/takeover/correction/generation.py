"""Object-centric demo generation (MimicGen, Mandlekar et al. 2023; DESIGN §8): many new successful
demonstrations from a few source demos.

For each new episode (a fresh seed: new object poses), subtask by subtask: pick a source segment
(segments.py; the source whose reference object lay nearest the current one, or at random), map its
end-effector poses rigidly from the source object's frame to the current object's frame (choosing,
among the object's symmetric turns, the one nearest the gripper's current heading), bridge from the
current pose to the mapped start by interpolation, and follow the mapped poses with ordinary OSC
delta actions (the experts' pose -> action conversion) and the recorded gripper commands, optionally
with Gaussian action noise (recorded as `executed_actions`; the clean action is the label). An attempt
that misses a subtask's end signal is abandoned there; only successful episodes are kept.

    report = generate("sources.hdf5", "generated.hdf5", GenerateConfig(episodes=100))

Episodes run through sim/rollout.py (the one episode loop and its worker pool) and are saved through
DemoWriter (crash-safe journal) as they finish, with `source="generated"`, `source_demos` (the source
demo of each subtask) and `subtask_ends`. A killed run resumes (`resume=True`) from the file: saved
episodes stay and new attempts continue after the largest stored seed.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import time
from pathlib import Path

import numpy as np

from takeover.datasets import DemoReader, DemoWriter, EpisodeRecorder
from takeover.datasets.errors import DatasetError
from takeover.sim.agents import Decision
from takeover.sim.experts import EXPERT_SUCCESS_HOLD
from takeover.sim.experts.base import eef_mat, eef_pos, orientation_action, position_action, rot_z, rotvec_between
from takeover.sim.rollout import RolloutPool

from .errors import CorrectionError
from .generation_config import GenerateConfig
from .segments import SUBTASK_ENDS_ATTR, Library, Segment, load_library

log = logging.getLogger(__name__)

BRIDGE_STEP_M = 0.02  # a bridge moves at most this far per step (metres) ...
BRIDGE_STEP_RAD = 0.1  # ... and turns at most this much


# --- the rigid transform ---------------------------------------------------------------------------
def _yaw_turns(period: float | None) -> list[float]:
    if not period:
        return [0.0]
    return [k * period for k in range(int(round(2 * np.pi / period)))]


def object_transform(seg: Segment, cur_pos, cur_mat, period: float | None, eef_mat_now=None):
    """(A, b): world -> world map taking the source object's frame to the current object's frame,
    x' = A x + b. `period` 0: translation only (a round object); None: the object's full rotation; a
    value: the symmetric turn of the current object (about its own vertical) that starts the segment
    with the gripper turned least from `eef_mat_now`."""
    if period == 0:
        rot = np.eye(3)
    else:
        candidates = [cur_mat @ rot_z(a) for a in _yaw_turns(period)]
        rots = [c @ seg.object_mat.T for c in candidates]
        if eef_mat_now is None or len(rots) == 1:
            rot = rots[0]
        else:
            rot = min(rots, key=lambda r: np.linalg.norm(rotvec_between(r @ seg.eef_mat[0], eef_mat_now)))
    return rot, np.asarray(cur_pos) - rot @ seg.object_pos


def transform_segment(seg: Segment, rot, shift):
    """The segment's start pose and its set-points (one per step) mapped by x' = rot x + shift:
    (positions (n+1, 3), rotations (n+1, 3, 3)), row 0 the start."""
    pos = np.concatenate([seg.eef_pos[:1], seg.target_pos])
    mats = np.concatenate([seg.eef_mat[:1], seg.target_mat])
    return pos @ rot.T + shift, np.einsum("ij,njk->nik", rot, mats)


def _slerp_mats(m0, m1, fractions):
    r = rotvec_between(m1, m0)
    out = []
    for f in fractions:
        angle = np.linalg.norm(r) * f
        if angle < 1e-9:
            out.append(m0)
            continue
        k = r / np.linalg.norm(r)
        K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        out.append((np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K) @ m0)
    return out


def bridge(pos0, mat0, pos1, mat1, min_steps: int):
    """Interpolated targets from (pos0, mat0) to (pos1, mat1), ending on the latter; more steps than
    `min_steps` when the gap is wider than BRIDGE_STEP_M / BRIDGE_STEP_RAD per step."""
    dist = float(np.linalg.norm(np.asarray(pos1) - pos0))
    angle = float(np.linalg.norm(rotvec_between(mat1, mat0)))
    n = max(min_steps, math.ceil(dist / BRIDGE_STEP_M), math.ceil(angle / BRIDGE_STEP_RAD))
    fractions = np.arange(1, n + 1) / n
    return [pos0 + f * (np.asarray(pos1) - pos0) for f in fractions], _slerp_mats(mat0, mat1, fractions)


def pose_to_action(env, pos, mat, gripper: float) -> np.ndarray:
    """The OSC delta action aiming the end effector at (pos, mat) from where it is now (the scripted
    experts' conversion: 1.0 = 5 cm / 0.5 rad, clipped to [-1, 1])."""
    return np.clip(np.concatenate([position_action(env, pos, 1.0, 1.0), orientation_action(env, mat, 1.0, 1.0),
                                   [gripper]]), -1.0, 1.0)


# --- the agent ------------------------------------------------------------------------------------
class GenerationAgent:
    """Acts out one generated episode subtask by subtask (see the module doc). Per step it records
    `subtask` (index) and `source` (index of the source demo in the library) beside the action."""

    def __init__(self, library: Library, cfg: GenerateConfig):
        self.lib, self.cfg = library, cfg
        self.demo_index = {name: i for i, name in enumerate(library.demos)}

    def reset(self, env):
        self.rng = np.random.default_rng(np.random.randint(2**31))  # seeded per episode by the rollout loop
        self.k, self.plan, self.i = -1, [], 0
        self.source = -1
        self.gave_up, self.failed_subtask, self.waited = False, None, 0

    def _choose(self, k: int, cur_pos, cur_mat) -> Segment:
        segments = self.lib.segments[k]
        if self.cfg.select == "random":
            return segments[int(self.rng.integers(len(segments)))]
        period = self.lib.subtasks[k].yaw_period

        def distance(seg):
            if period == 0:
                return float(np.linalg.norm(seg.object_pos - cur_pos))
            angle = min(np.linalg.norm(rotvec_between(cur_mat @ rot_z(a), seg.object_mat)) for a in _yaw_turns(period))
            return float(np.linalg.norm(seg.object_pos - cur_pos)) + 0.1 * angle  # 10 cm per radian

        order = sorted(range(len(segments)), key=lambda i: distance(segments[i]))
        pick = order[:self.cfg.nearest_k]
        return segments[pick[int(self.rng.integers(len(pick)))]]

    def _plan(self, env, k: int):
        sub = self.lib.subtasks[k]
        cur_pos, cur_mat = sub.object_pose(env)
        now_pos, now_mat = eef_pos(env), eef_mat(env)
        seg = self._choose(k, cur_pos, cur_mat)
        rot, shift = object_transform(seg, cur_pos, cur_mat, sub.yaw_period, now_mat)
        pos, mats = transform_segment(seg, rot, shift)
        if seg.held_offset is not None:
            # the carried object sits in this hand a little differently than in the source's: move the
            # hand so that the object, not the hand, follows the source's path
            now_offset = now_mat.T @ (sub.held_pose(env)[0] - now_pos)
            pos = pos + np.einsum("nij,j->ni", mats, seg.held_offset - now_offset)
        bpos, bmats = bridge(now_pos, now_mat, pos[0], mats[0], self.cfg.bridge_steps)
        grip = float(seg.gripper[0])
        self.plan = [(p, m, grip) for p, m in zip(bpos, bmats)] + \
                    [(pos[i + 1], mats[i + 1], float(seg.gripper[i])) for i in range(len(seg))]
        self.k, self.i, self.source = k, 0, self.demo_index[seg.demo]

    def act(self, obs, env):
        if self.i >= len(self.plan):
            self._next(env)
        if self.i < len(self.plan):
            pos, mat, grip = self.plan[self.i]
            self.i += 1
        else:  # after the last segment: hold its last pose while success settles
            pos, mat, grip = self.plan[-1]
        clean = pose_to_action(env, pos, mat, grip)
        extras = {"subtask": np.uint8(self.k), "source": np.int16(self.source)}
        if self.cfg.action_noise <= 0:
            return Decision(clean, extras=extras)
        noisy = clean.copy()
        noisy[:6] = np.clip(noisy[:6] + self.rng.normal(0.0, self.cfg.action_noise, 6), -1.0, 1.0)
        return Decision(noisy, label=clean, extras=extras)

    def _next(self, env):
        """The current segment is done: check its end signal, then plan the next (or wait)."""
        subs = self.lib.subtasks
        if self.k >= 0 and self.k < len(subs) - 1 and not subs[self.k].signal(env):
            self._give_up()
            return
        if self.k < len(subs) - 1:
            self._plan(env, self.k + 1)
            return
        self.waited += 1
        if self.waited > self.cfg.settle_steps:
            self._give_up()

    def _give_up(self):
        self.failed_subtask, self.gave_up = self.k, True


@dataclasses.dataclass(frozen=True)
class GenerationAgentFactory:
    """Picklable for the rollout workers (compared by value: the library travels as bytes)."""
    library: bytes
    config: GenerateConfig

    def __call__(self):
        return GenerationAgent(pickle.loads(self.library), self.config)


# --- running --------------------------------------------------------------------------------------
def _as_generated(episode, lib: Library):
    """Move the per-step `subtask`/`source` arrays into demo attributes: the subtask ends and the
    source demo of each subtask."""
    sub = np.asarray(episode.extras.pop("subtask"), dtype=int)
    src = np.asarray(episode.extras.pop("source"), dtype=int)
    ends, sources = [], []
    for k in range(len(lib.subtasks)):
        steps = np.flatnonzero(sub == k)
        ends.append(int(steps[-1] + 1) if len(steps) else 0)
        sources.append(lib.demos[src[steps[0]]] if len(steps) else "")
    episode.attrs.update({"source": "generated", SUBTASK_ENDS_ATTR: ends, "source_demos": sources})
    return episode


def episode_spec(lib: Library):
    """The sources' spec, its horizon stretched to twice the longest source demo where that is longer:
    slow human sources (pauses included) replay at their own pace, and a task's default horizon (400
    steps for PickPlaceCan) would cut every attempt short of success."""
    need = 2 * max(ends[-1] for ends in lib.ends.values())
    if need <= lib.spec.max_steps:
        return lib.spec
    log.info("%s: generated episodes may last %d steps (twice the longest source), over the horizon %d",
             lib.task, need, lib.spec.max_steps)
    return dataclasses.replace(lib.spec, horizon=need)


def _failed_at(result, lib: Library) -> str:
    """The subtask a failed attempt was in when it ended."""
    return lib.subtasks[int(np.asarray(result.episode.extras["subtask"])[-1])].name


def check_output(out: Path, resume: bool):
    if out.exists() and not resume:
        raise CorrectionError(f"{out}: already exists; choose a new output file (or --resume a killed generation)")
    if resume and out.exists():
        try:
            with DemoReader(out) as r:
                others = sorted({str(r.attrs(n).get("source")) for n in r.demos} - {"generated"})
        except DatasetError as exc:
            raise CorrectionError(str(exc)) from None
        if others:
            raise CorrectionError(f"{out}: holds demos of source {', '.join(others)}; --resume continues a "
                                  f"generated file only")


def generate(source, out, config: GenerateConfig, overrides=None, resume: bool = False,
             progress=None, library: Library | None = None) -> dict:
    """Generate `config.episodes` successful demos from the successful demos of `source` into `out`
    (never modifying `source`). `progress(kept, attempts)` is called after every attempt. Raises
    CorrectionError before writing anything when the input is unusable."""
    cfg = config
    source, out = Path(source), Path(out)
    if out.resolve() == source.resolve():
        raise CorrectionError(f"{out}: the output must be a new file, not the source")
    check_output(out, resume)
    started = time.time()
    lib = library or load_library(source, overrides)  # warns about each demo it leaves out
    spec = episode_spec(lib)
    factory = GenerationAgentFactory(pickle.dumps(lib), cfg)
    max_attempts = cfg.max_attempts or 20 * cfg.episodes
    failures = {s.name: 0 for s in lib.subtasks}
    attempts = surplus = 0
    with DemoWriter(out, spec, append=resume and out.exists()) as writer:
        resumed_from = len(writer)
        kept = resumed_from
        next_seed = max(cfg.first_seed, writer.next_seed)
        if progress:
            progress(kept, attempts)

        def on_result(res):
            nonlocal kept, attempts, surplus
            attempts += 1
            if res.success and kept < cfg.episodes:
                writer.save(_as_generated(res.episode, lib))
                kept += 1
            elif res.success:
                surplus += 1  # a batch's successes beyond the number wanted
            else:
                failures[_failed_at(res, lib)] += 1
            if progress:
                progress(kept, attempts)

        with RolloutPool(spec, cfg.workers if cfg.workers > 1 else 0) as pool:
            while kept < cfg.episodes and attempts < max_attempts:
                needed = cfg.episodes - kept
                rate = (kept - resumed_from + surplus) / attempts if attempts else 0.8
                batch = math.ceil(needed / max(rate, 0.1))
                batch = int(min(max(batch, cfg.workers, 1), 8 * max(cfg.workers, 1), max_attempts - attempts))
                seeds = range(next_seed, next_seed + batch)
                next_seed += batch
                pool.run(factory, seeds, record=EpisodeRecorder, success_hold=EXPERT_SUCCESS_HOLD,
                         stop_on_success=True, progress=on_result)
    seconds = time.time() - started
    made = kept - resumed_from
    report = {
        "source": str(source), "output": str(out), "task": lib.task, "config": cfg.to_dict(),
        "subtasks": [s.name for s in lib.subtasks], "source_demos": lib.demos, "left_out": lib.left_out,
        "resumed_from": resumed_from, "attempts": attempts, "kept": made, "total_in_file": kept,
        "surplus": surplus, "success_rate": (made + surplus) / attempts if attempts else 0.0,
        "failures_by_subtask": failures,
        "seconds": round(seconds, 1), "demos_per_minute": round(60.0 * made / seconds, 2) if seconds > 0 else 0.0,
    }
    if kept < cfg.episodes:
        log.warning("%s: %d of %d demos after %d attempts (the attempt limit)", out, kept, cfg.episodes, attempts)
    return report
