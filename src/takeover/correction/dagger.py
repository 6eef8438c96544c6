"""DAgger with a scripted expert: the learner drives (mixed with the expert by beta), the expert labels
every visited state, the labels join the data, the learner retrains, repeat. With `labeller="operator"`
it is HG-DAgger: the learner drives and a simulated operator (the scripted expert playing a person,
`operator.py`) takes over where it strays; only the operator's steps (`interventions` = 1) are labels,
the rest stay in the file as observation history. With `labeller="human"` a person takes over live in
the window (`live.py`, `run_live(DaggerRun(cfg), device)`): same run folder, data file, state and resume.

    run_dagger(DaggerConfig(data="demos.hdf5", policy="runs/bc", out="runs/dagger", rounds=5))

Run folder:
    data.hdf5              the aggregate: a copy of DATA (never modified) + every round's episodes
                           (source=dagger, round, beta, expert_executed, policy_actions, executed_actions)
    round_<k>/train/       the round's training run (warm start from the previous round's best by
                           default; `from_scratch` retrains from random weights on the aggregate)
    round_<k>/eval.json    success on the fixed evaluation seeds
    dagger.json            config + one entry per finished round: beta, episodes, expert labels so far,
                           success rate with its Wilson 95% interval; the resume point
    report.md, plots/success_vs_labels.png

Seeds: round k rolls out on DAGGER_SEED_START + seed * SEED_BLOCK + (k-1) * episodes_per_round ..., disjoint from the
collection (0...), evaluation (1,000,000...) and checkpoint-selection (2,000,000...) seeds. A killed
run resumes (`resume=True`) in the round it was in: episodes already saved (by seed) are not rolled
out again, an interrupted training run resumes from its last state.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from takeover.datasets.tools import merge
from takeover.policies.train_config import TrainConfig
from takeover.sim.rollout import RolloutPool

from .beta import BetaSchedule
from .dagger_config import DAGGER_SEED_START, SEED_BLOCK, DaggerConfig
from .labellers import LABELLERS
from .report import write_dagger_report
from .run_state import DaggerState
from .runs import (check_run_inputs, collect_missing, eval_entry, evaluate_into, load_state, refuse_taken_folder, retrain,
                   retrain_config, write_state)

log = logging.getLogger(__name__)

STATE_FILE = "dagger.json"


def labels_in(episode) -> int:
    """Expert labels an episode adds: every step, or the operator's steps in a take-over episode."""
    flags = episode.extras.get("interventions")
    return len(episode) if flags is None else int((flags != 0).sum())


def round_seeds(cfg: DaggerConfig, k: int) -> list[int]:
    """Rollout seeds of round k: each run seed has its own block, so runs with different seeds
    (a benchmark's replicates) explore different starts."""
    start = DAGGER_SEED_START + cfg.seed * SEED_BLOCK + (k - 1) * cfg.episodes_per_round
    return list(range(start, start + cfg.episodes_per_round))


# what to do instead when the task has no scripted expert, by who would label (a live person needs none)
class DaggerRun:
    def __init__(self, cfg: DaggerConfig, resume: bool = False):
        self.cfg, self.out = cfg, Path(cfg.out)
        self.schedule = BetaSchedule.parse(cfg.beta)
        self.labeller = LABELLERS[cfg.labeller]
        self.state: DaggerState | None
        self.state_path = self.out / STATE_FILE
        if resume:
            self.state = load_state(self.state_path, cfg, ("data", "episodes_per_round", "beta", "from_scratch",
                                                           "seed", "labeller"))
            self.state["config"]["rounds"] = cfg.rounds
        else:
            refuse_taken_folder(self.out)
            self.state = None
        self._check_inputs()

    # ----- set-up ------------------------------------------------------------------------------------
    def _check_inputs(self):
        inputs = check_run_inputs(self.cfg.data, self.cfg.policy, self.state["checkpoints"][-1] if self.state else None,
                                  no_expert_hint=self.labeller.no_expert_hint, need_expert=self.labeller.needs_expert)
        self.spec, self.initial_ckpt = inputs.spec, inputs.checkpoint
        self.initial_labels, self.train_base = inputs.initial_labels, inputs.train_base

    def start(self):
        """Create the run folder: the data copy and the first state."""
        self.out.mkdir(parents=True, exist_ok=True)
        data = self.out / "data.hdf5"
        if not data.exists():
            merge([self.cfg.data], data)  # a copy (journal episodes included); the input stays untouched
        self.state = {"config": asdict(self.cfg), "task": self.spec.task, "initial_labels": self.initial_labels,
                      "checkpoints": [str(self.initial_ckpt.resolve())], "rounds": []}
        self.save_state()

    def save_state(self):
        """Write the state (dagger.json) atomically: the resume point after every change."""
        write_state(self.state_path, self.state)

    # ----- the rounds --------------------------------------------------------------------------------
    def run(self, say=log.info) -> DaggerState:
        if self.state is None:
            self.start()
        data = self.out / "data.hdf5"
        with RolloutPool(self.spec, self.cfg.workers if self.cfg.workers > 1 else 0) as pool:
            if not self.state["rounds"]:
                say(f"round 0: evaluating the initial policy on {self.cfg.eval_episodes} episodes")
                self._record_round(0, pool, beta=1.0, episodes=0, new_labels=0)
            while len(self.state["rounds"]) <= self.cfg.rounds:
                k = len(self.state["rounds"])
                beta = self.labeller.beta(self.schedule, k)
                learner = self.state["checkpoints"][-1]
                say(f"round {k}: {self.labeller.who(beta)}, {self.cfg.episodes_per_round} episodes with "
                    f"{Path(learner).name}")
                new_labels = self._collect(k, beta, learner, data, pool)
                best = self._retrain(k, learner, data)
                self.state["checkpoints"].append(str(best.resolve()))
                self._record_round(k, pool, beta, self.cfg.episodes_per_round, new_labels)
        self.write_report()
        return self.state

    def _collect(self, k: int, beta: float, learner: str, data: Path, pool: RolloutPool) -> int:
        """Roll out round k's seeds not yet in the file, save every episode (success or not), add
        them to the train split. Returns the round's expert labels (steps)."""
        agent = self.labeller.agent(self.spec.task, learner, beta, self.cfg)
        attrs = {"source": "dagger", "round": k, **self.labeller.attrs(beta)}
        _, labels = collect_missing(data, self.spec, pool, agent, round_seeds(self.cfg, k), attrs, "round",
                                    labels_of=labels_in)
        return labels

    def retrain_config(self, k: int, learner: str, data: Path, **defaults) -> tuple[TrainConfig, bool]:
        """Round k's training (see runs.retrain_config); the live take-over's background process uses it too."""
        return retrain_config(self.out / f"round_{k}" / "train", {**self.train_base, **defaults}, self.cfg.train_overrides,
                              data, learner, self.cfg.from_scratch, self.cfg.seed * 1000 + k)

    def _retrain(self, k: int, learner: str, data: Path) -> Path:
        return retrain(*self.retrain_config(k, learner, data))

    def _record_round(self, k: int, pool: RolloutPool, beta: float, episodes: int, new_labels: int):
        ckpt = self.state["checkpoints"][-1]
        labels = (self.state["rounds"][-1]["expert_labels"] if self.state["rounds"] else self.state["initial_labels"])
        entry = {"round": k, "beta": round(beta, 6), "episodes": episodes, "new_labels": new_labels,
                 "expert_labels": labels + new_labels, "checkpoint": ckpt, "eval_episodes": 0}
        if self.cfg.eval_episodes:  # 0: a study that evaluates chosen rounds itself
            entry.update(eval_entry(evaluate_into(self.out / f"round_{k}", ckpt, self.cfg.eval_episodes, pool)))
        self.state["rounds"].append(entry)
        self.save_state()

    # ----- report ------------------------------------------------------------------------------------
    def write_report(self):
        write_dagger_report(self.out, self.cfg, self.state)


def run_dagger(cfg: DaggerConfig, resume: bool = False, say=log.info) -> DaggerState:
    return DaggerRun(cfg, resume=resume).run(say=say)
