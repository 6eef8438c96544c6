"""The typed shape of a correction run's state file (dagger.json, dart.json): what a resume reads.

The state stays a plain JSON dict on disk and in memory (the live take-over and the studies read it as
one); these TypedDicts name its keys and their types in one place, and `runs.write_state` writes it
atomically (as `runs.evaluate_into` writes round_<k>/eval.json), so a kill leaves the old file or the
whole new one.
"""
from __future__ import annotations

from typing import TypedDict


class Evaluation(TypedDict, total=False):
    eval_episodes: int  # 0: not evaluated (a live round, or a study that evaluates chosen rounds itself)
    successes: int
    success_rate: float
    ci95: list[float]
    mean_length: float


class DaggerRound(Evaluation, total=False):
    round: int
    beta: float
    episodes: int
    new_labels: int
    expert_labels: int  # labels so far, the initial data's included
    checkpoint: str  # the policy this round evaluated (round 0: the initial one)
    session: dict  # live rounds: the window's attempts (SessionCounts.summary())


class LiveProgress(TypedDict, total=False):
    saved: int  # live episodes saved in the run
    retrain_from: int  # `saved` when the last background retrain started
    training: int | None  # the round a background retrain is running for (restarted on resume)


class DaggerState(TypedDict, total=False):
    config: dict  # DaggerConfig.to_dict() of the run's start (rounds follows the last resume)
    task: str
    initial_labels: int
    checkpoints: list[str]  # the initial policy, then one per finished round
    rounds: list[DaggerRound]
    live: LiveProgress


class DartIteration(Evaluation, total=False):
    iteration: int
    episodes: int
    new_labels: int
    expert_labels: int
    checkpoint: str
    noise_cov: list | None  # the covariance the iteration collected with (None: iteration 0)
    noise_trace: float | None
    noisy_expert_successes: int | None
    fit: dict  # the learner's error fit on the iteration's states
    next_noise_cov: list


class DartState(TypedDict, total=False):
    config: dict
    task: str
    initial_labels: int
    action_dim: int
    checkpoints: list[str]
    iterations: list[DartIteration]
