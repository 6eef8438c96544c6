"""DART (Laskey et al. 2017) with fitted noise: the scripted expert drives with Gaussian noise added to
the executed action, its clean action is the label at every visited state, the learner retrains on the
aggregate, and the noise covariance is refitted to the learner's error against the expert on the states
the noisy expert visited, so the next collection visits the states the learner will drift into.

    run_dart(DartConfig(data="demos.hdf5", policy="runs/bc", out="runs/dart", iterations=3, episodes=10))

The fit: Sigma = mean over labelled steps of (pi(s) - pi*(s))(pi(s) - pi*(s))^T over the arm dimensions
(every action dimension but the last, the gripper, which gets no noise), the second moment about zero as
in the paper (a learner's bias counts as error too), optionally scaled to a target trace (the expected
squared error). The learner's actions come from replaying each stored episode's observations through
`policy.reset()` / `policy.act()` in order, so observation histories and action chunks are what they
would be in a rollout along that path. Iteration 0's noise is fitted on DATA's demos (the states of the
expert with zero noise); iteration k's refit uses iteration k's episodes with the learner just trained on
them, a training error that underestimates the error on new states (the paper's choice too;
`target_trace` sets the magnitude where that matters).

Run folder:
    data.hdf5        a copy of DATA (never modified) + every iteration's episodes (source=dart,
                     iteration, noise_trace, executed_actions = what ran; actions = the clean labels)
    iter_<k>/train/  the iteration's training run (warm start by default)
    iter_<k>/eval.json
    dart.json        config + one entry per finished iteration: the noise covariance it collected with,
                     the learner's error covariance after it (the next noise when fitting), labels,
                     success with its Wilson 95% interval; the resume point
    report.md, plots/success_vs_labels.png

Seeds: iteration k rolls out on DART_SEED_START + seed * SEED_BLOCK + (k-1) * episodes ..., disjoint
from collection, evaluation, checkpoint selection and DAgger. A killed run resumes (`resume=True`) in
the iteration it was in: saved episodes are not rolled out again, training resumes from its last state.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from takeover.datasets import DemoReader
from takeover.datasets.scripted_collection import EpisodeNoise, ExpertAgent
from takeover.datasets.tools import merge
from takeover.policies.checkpoint import load_checkpoint
from takeover.policies.evaluate import resolve_checkpoint
from takeover.sim.errors import SimError
from takeover.sim.noise import ActionNoise, arm_dims_of
from takeover.sim.rollout import RolloutPool

from .dart_config import DART_SEED_START, DartConfig
from .errors import CorrectionError
from .report import write_dart_report
from .run_config import SEED_BLOCK
from .run_state import DartState
from .runs import (check_run_inputs, collect_missing, eval_entry, evaluate_into, load_state,
                   refuse_taken_folder, retrain, retrain_config, write_state)

log = logging.getLogger(__name__)

STATE_FILE = "dart.json"


# ----- the fit --------------------------------------------------------------------------------------
def labelled_steps(episode) -> np.ndarray:
    """Steps that are expert labels: all, or the operator's in a take-over episode."""
    flags = episode.extras.get("interventions")
    return np.ones(len(episode), bool) if flags is None else np.asarray(flags).reshape(-1) != 0


def learner_errors(policy, episodes) -> np.ndarray:
    """(N, A) learner action minus expert label at every labelled step of `episodes`, the learner fed
    each episode's observations in order (`policy.reset()`, then `policy.act(obs_t)`)."""
    errors = []
    for ep in episodes:
        keep = labelled_steps(ep)
        policy.reset()
        for t in range(len(ep)):
            action = np.asarray(policy.act({k: v[t] for k, v in ep.obs.items()}), dtype=np.float64)
            if keep[t]:
                errors.append(action - ep.actions[t])
    if not errors:
        raise CorrectionError("no labelled steps to fit the noise on")
    return np.stack(errors)


def fit_covariance(errors: np.ndarray, arm_dims: int, target_trace: float = 0.0) -> np.ndarray:
    """(A, A) noise covariance from (N, A) errors: the second moment over the first `arm_dims` dimensions
    (zero elsewhere), scaled to `target_trace` when that is > 0 (and the fit is not all zero)."""
    errors = np.asarray(errors, dtype=np.float64)
    arm = errors[:, :arm_dims]
    cov = np.zeros((errors.shape[1], errors.shape[1]))
    cov[:arm_dims, :arm_dims] = arm.T @ arm / len(arm)
    trace = float(np.trace(cov))
    if target_trace > 0 and trace > 0:
        cov *= target_trace / trace
    return (cov + cov.T) / 2


def fit_noise(checkpoint, episodes, target_trace: float = 0.0, seed: int = 0) -> tuple[np.ndarray, dict]:
    """The DART noise covariance of a learner checkpoint on stored episodes, and a summary of the fit
    (steps, the unscaled error trace, the RMS error per dimension)."""
    import torch

    policy, _, _ = load_checkpoint(resolve_checkpoint(checkpoint))
    policy.sample_actions = False
    torch.manual_seed(seed)
    episodes = list(episodes)
    errors = learner_errors(policy, episodes)
    arm = arm_dims_of(errors.shape[1])
    raw = fit_covariance(errors, arm)
    cov = fit_covariance(errors, arm, target_trace)
    info = {"episodes": len(episodes), "steps": int(len(errors)), "error_trace": float(np.trace(raw)),
            "error_rms": np.sqrt((errors ** 2).mean(axis=0)).round(6).tolist(), "error_cov": raw.round(8).tolist()}
    return cov, info


def fit_noise_for_recording(checkpoint, data, task: str, target_trace: float = 0.0) -> tuple[np.ndarray, dict]:
    """`takeover record --noise fit:CKPT`: the covariance fitted to the policy's error on the demos of
    `data`, refusing a policy or a file of another task than the one being recorded."""
    ckpt = resolve_checkpoint(checkpoint)
    _, ckpt_spec, _ = load_checkpoint(ckpt)
    if ckpt_spec.task != task:
        raise CorrectionError(f"{ckpt}: checkpoint is for task {ckpt_spec.task}, not {task}")
    if not Path(data).is_file():
        raise CorrectionError(f"{data}: no such demonstration file to fit the noise on")
    with DemoReader(data) as reader:
        if reader.spec is not None and reader.spec.task != task:
            raise CorrectionError(f"{data}: holds task {reader.spec.task}, not {task}")
        if not reader.demos:
            raise CorrectionError(f"{data}: holds no demos to fit the noise on")
        return fit_noise(ckpt, [reader.episode(d) for d in reader.demos], target_trace)


def describe_cov(cov) -> str:
    cov = np.asarray(cov)
    return f"trace {np.trace(cov):.4g}, std {np.sqrt(np.diag(cov)).round(4).tolist()}"


# ----- the run --------------------------------------------------------------------------------------
def iteration_seeds(cfg: DartConfig, k: int) -> list[int]:
    start = DART_SEED_START + cfg.seed * SEED_BLOCK + (k - 1) * cfg.episodes
    return list(range(start, start + cfg.episodes))


class DartRun:
    def __init__(self, cfg: DartConfig, resume: bool = False):
        self.cfg, self.out = cfg, Path(cfg.out)
        self.state_path = self.out / STATE_FILE
        self.state: DartState | None
        if resume:
            self.state = load_state(self.state_path, cfg, ("data", "episodes", "noise", "target_trace", "from_scratch",
                                                           "seed"))
            self.state["config"]["iterations"] = cfg.iterations
        else:
            refuse_taken_folder(self.out)
            self.state = None
        inputs = check_run_inputs(cfg.data, cfg.policy, self.state["checkpoints"][-1] if self.state else None)
        self.spec, self.initial_ckpt = inputs.spec, inputs.checkpoint
        self.initial_labels, self.train_base = inputs.initial_labels, inputs.train_base
        with DemoReader(cfg.data) as reader:
            self.action_dim = reader.action_dim
        self.fixed_cov = None
        if not cfg.fitted:
            try:
                self.fixed_cov = ActionNoise.from_option(cfg.noise, self.action_dim).cov
            except SimError as exc:
                raise CorrectionError(f"--noise: {exc}") from None

    def start(self):
        """Create the run folder: the data copy and the first state."""
        self.out.mkdir(parents=True, exist_ok=True)
        data = self.out / "data.hdf5"
        if not data.exists():
            merge([self.cfg.data], data)  # a copy; the input stays untouched
        self.state = {"config": asdict(self.cfg), "task": self.spec.task, "initial_labels": self.initial_labels,
                      "action_dim": self.action_dim, "checkpoints": [str(self.initial_ckpt.resolve())],
                      "iterations": []}
        write_state(self.state_path, self.state)

    def noise_for(self, k: int) -> np.ndarray:
        """Iteration k's noise: fixed, or the previous iteration's learner error (scaled)."""
        if self.fixed_cov is not None:
            return self.fixed_cov
        return np.asarray(self.state["iterations"][k - 1]["next_noise_cov"])

    def run(self, say=log.info) -> DartState:
        if self.state is None:
            self.start()
        data = self.out / "data.hdf5"
        with RolloutPool(self.spec, self.cfg.workers if self.cfg.workers > 1 else 0) as pool:
            if not self.state["iterations"]:
                say(f"iteration 0: evaluating the initial policy on {self.cfg.eval_episodes} episodes, "
                    f"fitting the noise on {self.cfg.data}")
                with DemoReader(data) as reader:
                    names = list(reader.demos)
                self._record(0, pool, data, names, None, 0, 0)
            while len(self.state["iterations"]) <= self.cfg.iterations:
                k = len(self.state["iterations"])
                cov = self.noise_for(k)
                learner = self.state["checkpoints"][-1]
                say(f"iteration {k}: {self.cfg.episodes} noisy expert episodes, noise {describe_cov(cov)}")
                attrs = {"source": "dart", "iteration": k, "noise_trace": float(np.trace(cov))}
                noise = EpisodeNoise(ActionNoise(cov), base_seed=self.cfg.seed)
                names, labels = collect_missing(data, self.spec, pool, ExpertAgent(self.spec.task),
                                                iteration_seeds(self.cfg, k), attrs, "iteration", action_noise=noise)
                best = retrain(*retrain_config(self.out / f"iter_{k}" / "train", self.train_base, self.cfg.train_overrides,
                                               data, learner, self.cfg.from_scratch, self.cfg.seed * 1000 + k))
                self.state["checkpoints"].append(str(best.resolve()))
                self._record(k, pool, data, names, cov, self.cfg.episodes, labels)
        self.write_report()
        return self.state

    def _record(self, k: int, pool: RolloutPool, data: Path, names: list[str], cov, episodes: int, new_labels: int):
        """Evaluate iteration k's learner, fit its error on the iteration's states, save the entry."""
        ckpt = self.state["checkpoints"][-1]
        report = evaluate_into(self.out / f"iter_{k}", ckpt, self.cfg.eval_episodes, pool) if self.cfg.eval_episodes else None
        with DemoReader(data) as reader:
            episodes = [reader.episode(n, check=False) for n in names]
            expert_successes = sum(bool(reader.attrs(n).get("success", False)) for n in names)
        next_cov, fit = fit_noise(ckpt, episodes, self.cfg.target_trace, seed=self.cfg.seed)
        labels = self.state["iterations"][-1]["expert_labels"] if self.state["iterations"] else self.initial_labels
        entry = {"iteration": k, "episodes": len(names) if k else 0, "new_labels": new_labels,
                 "expert_labels": labels + new_labels, "checkpoint": ckpt,
                 "noise_cov": None if cov is None else np.asarray(cov).tolist(),
                 "noise_trace": None if cov is None else float(np.trace(cov)),
                 "noisy_expert_successes": expert_successes if k else None,
                 "fit": fit, "next_noise_cov": (self.fixed_cov if self.fixed_cov is not None else next_cov).tolist(),
                 **(eval_entry(report) if report else {"eval_episodes": 0})}
        self.state["iterations"].append(entry)
        write_state(self.state_path, self.state)
        if report:
            log.info("iteration %d: success %.2f [%.2f, %.2f] with %d expert labels; learner error trace %.4g",
                     k, report.success_rate, *report.ci95, entry["expert_labels"], fit["error_trace"])

    def write_report(self):
        write_dart_report(self.out, self.cfg, self.state)


def run_dart(cfg: DartConfig, resume: bool = False, say=log.info) -> DartState:
    """Run (or resume) a DART run; returns its state (the content of dart.json)."""
    return DartRun(cfg, resume=resume).run(say=say)
