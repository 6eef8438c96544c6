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

import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from takeover.datasets import DemoReader, DemoWriter, EpisodeRecorder
from takeover.datasets.tools import add_to_split, merge
from takeover.policies.checkpoint import check_compatible, load_checkpoint
from takeover.policies.evaluate import CheckpointAgent, EVAL_SEED_START, evaluate, eval_seeds, resolve_checkpoint
from takeover.policies.train import TrainConfig, Trainer
from takeover.sim.agents import BetaMixture, GatedTakeover
from takeover.sim.experts import EXPERT_SUCCESS_HOLD, EXPERTS, make_expert
from takeover.sim.rollout import RolloutPool

from .beta import BetaSchedule
from .dagger_config import DAGGER_SEED_START, SEED_BLOCK, DaggerConfig
from .errors import CorrectionError
from .operator import OperatorRule, SimulatedOperator

log = logging.getLogger(__name__)

STATE_FILE = "dagger.json"


@dataclass(frozen=True)
class DaggerAgent:
    """Picklable factory for rollout workers: the task's scripted expert and the learner checkpoint,
    mixed by beta (`takeover.sim.agents.BetaMixture`)."""

    task: str
    checkpoint: str
    beta: float
    seed: int = 0

    def __call__(self):
        return BetaMixture(make_expert(self.task, seed=self.seed), CheckpointAgent(self.checkpoint)(), self.beta,
                           seed=self.seed)


@dataclass(frozen=True)
class OperatorAgent:
    """Picklable factory: the learner drives, the simulated operator takes over (GatedTakeover)."""

    task: str
    checkpoint: str
    threshold: float
    seed: int = 0

    def __call__(self):
        operator = SimulatedOperator(make_expert(self.task, seed=self.seed), OperatorRule(threshold=self.threshold))
        return GatedTakeover(operator.teacher, CheckpointAgent(self.checkpoint)(), operator.gate)


def write_atomic(path: Path, text: str):
    """Write a small text file so that a kill leaves either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def labels_in(episode) -> int:
    """Expert labels an episode adds: every step, or the operator's steps in a take-over episode."""
    flags = episode.extras.get("interventions")
    return len(episode) if flags is None else int((flags != 0).sum())


def round_seeds(cfg: DaggerConfig, k: int) -> list[int]:
    """Rollout seeds of round k: each run seed has its own block, so runs with different seeds
    (a benchmark's replicates) explore different starts."""
    start = DAGGER_SEED_START + cfg.seed * SEED_BLOCK + (k - 1) * cfg.episodes_per_round
    return list(range(start, start + cfg.episodes_per_round))


def _train_config_of(policy_path: str, ckpt: Path, policy) -> dict:
    """The TrainConfig the learner was trained with (its run's config.json), or one rebuilt from the
    checkpoint (head options, observation keys, quaternion features)."""
    run = Path(policy_path)
    config = run / "config.json" if run.is_dir() else ckpt.parent.parent / "config.json"
    if config.is_file():
        try:
            return dict(json.loads(config.read_text())["train"])
        except (ValueError, KeyError):
            log.warning("%s: unreadable run config; rebuilding the training options from the checkpoint", config)
    head = policy.config.to_dict()
    return {"head": head.pop("head"), "head_options": head, "obs_keys": list(policy.shapes.obs_keys),
            "quaternions": "matrix" if policy.shapes.quat_starts else "raw"}


class DaggerRun:
    def __init__(self, cfg: DaggerConfig, resume: bool = False):
        self.cfg, self.out = cfg, Path(cfg.out)
        self.schedule = BetaSchedule.parse(cfg.beta)
        self.state_path = self.out / STATE_FILE
        if resume:
            if not self.state_path.is_file():
                raise CorrectionError(f"{self.out}: nothing to resume (no {STATE_FILE})")
            self.state = json.loads(self.state_path.read_text())
            saved = self.state["config"]
            for key in ("data", "episodes_per_round", "beta", "from_scratch", "seed", "labeller"):
                if saved.get(key, getattr(cfg, key)) != getattr(cfg, key):
                    raise CorrectionError(f"{self.out}: run was started with {key}={saved[key]!r}; resume with the same")
            self.state["config"]["rounds"] = cfg.rounds
        else:
            if self.out.exists() and any(self.out.iterdir()):
                raise CorrectionError(f"{self.out}: exists and is not empty; pass --resume to continue it or choose another --out")
            self.state = None
        self._check_inputs()

    # ----- set-up ------------------------------------------------------------------------------------
    def _check_inputs(self):
        cfg = self.cfg
        if not Path(cfg.data).is_file():
            raise CorrectionError(f"{cfg.data}: no such demonstration file")
        with DemoReader(cfg.data) as reader:
            spec, obs_keys, action_dim = reader.spec, reader.obs_keys, reader.action_dim
            self.initial_labels = sum(reader.num_samples(d) for d in reader.demos)
        if spec is None:
            raise CorrectionError(f"{cfg.data}: has no environment spec; import it first (takeover data import-robosuite)")
        if spec.task not in EXPERTS and cfg.labeller != "human":
            raise CorrectionError(f"{spec.task} has no scripted expert (tasks with one: {', '.join(EXPERTS)}); "
                                  f"use --expert human")
        ckpt = resolve_checkpoint(self.state["checkpoints"][-1] if self.state else cfg.policy)
        policy, ckpt_spec, _ = load_checkpoint(ckpt)
        missing = [k for k in policy.shapes.obs_keys if k not in obs_keys]
        if missing:
            raise CorrectionError(f"{cfg.data}: lacks observation key(s) {missing} that the policy reads "
                                  f"({list(policy.shapes.obs_keys)})")
        check_compatible(policy, ckpt_spec, spec, policy.shapes.obs_keys, action_dim, str(ckpt))
        self.spec, self.initial_ckpt = spec, ckpt
        self.train_base = _train_config_of(cfg.policy, ckpt, policy)

    def _start(self):
        self.out.mkdir(parents=True, exist_ok=True)
        data = self.out / "data.hdf5"
        if not data.exists():
            merge([self.cfg.data], data)  # a copy (journal episodes included); the input stays untouched
        self.state = {"config": asdict(self.cfg), "task": self.spec.task, "initial_labels": self.initial_labels,
                      "checkpoints": [str(self.initial_ckpt.resolve())], "rounds": []}
        self._write_state()

    def _write_state(self):
        write_atomic(self.state_path, json.dumps(self.state, indent=2))

    # ----- the rounds --------------------------------------------------------------------------------
    def run(self, say=log.info) -> dict:
        if self.state is None:
            self._start()
        data = self.out / "data.hdf5"
        with RolloutPool(self.spec, self.cfg.workers if self.cfg.workers > 1 else 0) as pool:
            if not self.state["rounds"]:
                say(f"round 0: evaluating the initial policy on {self.cfg.eval_episodes} episodes")
                self._record_round(0, pool, beta=1.0, episodes=0, new_labels=0)
            while len(self.state["rounds"]) <= self.cfg.rounds:
                k = len(self.state["rounds"])
                beta = self.schedule(k) if self.cfg.labeller == "scripted" else 0.0
                learner = self.state["checkpoints"][-1]
                who = f"beta {beta:.3f}" if self.cfg.labeller == "scripted" else "simulated operator"
                say(f"round {k}: {who}, {self.cfg.episodes_per_round} episodes with {Path(learner).name}")
                new_labels = self._collect(k, beta, learner, data, pool)
                best = self._retrain(k, learner, data)
                self.state["checkpoints"].append(str(best.resolve()))
                self._record_round(k, pool, beta, self.cfg.episodes_per_round, new_labels)
        self._report()
        return self.state

    def _collect(self, k: int, beta: float, learner: str, data: Path, pool: RolloutPool) -> int:
        """Roll out round k's seeds not yet in the file, save every episode (success or not), add
        them to the train split. Returns the round's expert labels (steps)."""
        seeds = round_seeds(self.cfg, k)
        with DemoReader(data) as reader:
            done = {int(reader.attrs(d).get("seed", -1)): d for d in reader.demos
                    if reader.attrs(d).get("source") == "dagger" and int(reader.attrs(d).get("round", -1)) == k}
        todo = [s for s in seeds if s not in done]
        if len(todo) < len(seeds):
            log.info("round %d: %d of %d episodes already saved", k, len(seeds) - len(todo), len(seeds))
        names = list(done.values())
        with DemoReader(data) as reader:
            labels = sum(labels_in(reader.episode(n, check=False)) for n in names)
        if todo:
            if self.cfg.labeller == "operator":
                agent = OperatorAgent(self.spec.task, learner, self.cfg.operator_threshold, self.cfg.seed)
            else:
                agent = DaggerAgent(self.spec.task, learner, beta, self.cfg.seed)
            attrs = {"source": "dagger", "round": k, "labeller": self.cfg.labeller}
            if self.cfg.labeller == "scripted":
                attrs["beta"] = beta
            with DemoWriter(data, self.spec, append=True) as writer:

                def save(res):  # as each episode finishes: a kill loses only episodes still running
                    nonlocal labels
                    names.append(writer.save(res.episode))
                    labels += labels_in(res.episode)

                pool.run(agent, todo, record=EpisodeRecorder, success_hold=EXPERT_SUCCESS_HOLD, episode_attrs=attrs,
                         progress=save)
        add_to_split(data, "train", names)
        return labels

    def retrain_config(self, k: int, learner: str, data: Path, **defaults) -> tuple[TrainConfig, bool]:
        """Round k's training: the learner's options (`defaults` under the run's overrides), on `data`,
        warm-started from `learner` unless from scratch; resume=True when a killed one left its state."""
        run_dir = self.out / f"round_{k}" / "train"
        options = {**self.train_base, **defaults, **self.cfg.train_overrides, "data": str(data), "out": str(run_dir),
                   "init_from": None if self.cfg.from_scratch else learner}
        options["seed"] = self.cfg.seed * 1000 + k
        cfg = TrainConfig.from_dict({key: v for key, v in options.items() if key in {f.name for f in fields(TrainConfig)}})
        return cfg, (run_dir / "checkpoints" / "last.pt").is_file()

    def _retrain(self, k: int, learner: str, data: Path) -> Path:
        cfg, resume = self.retrain_config(k, learner, data)
        result = Trainer(cfg, resume=resume).run()
        best = Path(cfg.out) / "checkpoints" / "best.pt"
        log.info("round %d: trained %d steps, best %s", k, result["step"], result.get("best"))
        return best

    def _record_round(self, k: int, pool: RolloutPool, beta: float, episodes: int, new_labels: int):
        ckpt = self.state["checkpoints"][-1]
        labels = (self.state["rounds"][-1]["expert_labels"] if self.state["rounds"] else self.state["initial_labels"])
        entry = {"round": k, "beta": round(beta, 6), "episodes": episodes, "new_labels": new_labels,
                 "expert_labels": labels + new_labels, "checkpoint": ckpt, "eval_episodes": 0}
        if self.cfg.eval_episodes:
            report = evaluate(ckpt, seeds=eval_seeds(self.cfg.eval_episodes, EVAL_SEED_START), pool=pool)
            folder = self.out / f"round_{k}"
            folder.mkdir(parents=True, exist_ok=True)
            write_atomic(folder / "eval.json", report.to_json())
            entry.update(eval_episodes=report.episodes, successes=report.successes, success_rate=report.success_rate,
                         ci95=list(report.ci95), mean_length=report.mean_length)
            log.info("round %d: success %.2f [%.2f, %.2f] with %d expert labels", k, report.success_rate,
                     *report.ci95, labels + new_labels)
        self.state["rounds"].append(entry)
        self._write_state()

    # ----- report ------------------------------------------------------------------------------------
    def _report(self):
        rounds = self.state["rounds"]
        kind = {"scripted": "scripted expert", "operator": "HG-DAgger, simulated operator",
                "human": "HG-DAgger, live human take-over"}[self.cfg.labeller]
        lines = [f"# DAgger ({kind}) on {self.state['task']}", "",
                 f"Data: `{self.cfg.data}` ({self.state['initial_labels']} expert labels), initial policy "
                 f"`{self.state['checkpoints'][0]}`, beta `{self.cfg.beta}`, {self.cfg.episodes_per_round} episodes "
                 f"per round, {'retrained from scratch' if self.cfg.from_scratch else 'warm-started'} each round.",
                 f"Success over {self.cfg.eval_episodes} evaluation episodes (seeds from {EVAL_SEED_START}), "
                 "Wilson 95% interval.", "",
                 "| round | beta | expert labels | success | 95% CI | mean length |", "|---|---|---|---|---|---|"]
        for r in rounds:
            if not r.get("eval_episodes"):  # a live round or eval_episodes=0 (a live round's attempts: below)
                lines.append(f"| {r['round']} | {r['beta']:.3f} | {r['expert_labels']} | not evaluated | | |")
                continue
            lines.append(f"| {r['round']} | {r['beta']:.3f} | {r['expert_labels']} | {r['success_rate']:.2f} | "
                         f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}] | {r['mean_length']:.0f} |")
        live = [r for r in rounds if "session" in r]
        if live:
            lines += ["", "Live rounds (attempts with the round's policy; 'policy alone' = attempts without a take-over):",
                      "", "| round | attempts | successes | policy alone: successes / attempts | labels |",
                      "|---|---|---|---|---|"]
            for r in live:
                s = r["session"]
                lines.append(f"| {r['round']} | {s['attempts']} | {s['successes']} | {s['alone_successes']} / "
                             f"{s['alone_attempts']} | {r['new_labels']} |")
        plot = self._plot(rounds)
        if plot:
            lines += ["", f"![success against expert labels]({plot.relative_to(self.out)})"]
        (self.out / "report.md").write_text("\n".join(lines) + "\n")

    def _plot(self, rounds) -> Path | None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        (self.out / "plots").mkdir(exist_ok=True)
        rounds = [r for r in rounds if r.get("eval_episodes")]
        if not rounds:
            return None
        x = [r["expert_labels"] for r in rounds]
        y = [r["success_rate"] for r in rounds]
        err = [[r["success_rate"] - r["ci95"][0] for r in rounds], [r["ci95"][1] - r["success_rate"] for r in rounds]]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
        for r in rounds:
            ax.annotate(str(r["round"]), (r["expert_labels"], r["success_rate"]), textcoords="offset points", xytext=(4, 4))
        ax.set_xlabel("expert labels (steps)")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"DAgger, {self.state['task']}")
        path = self.out / "plots" / "success_vs_labels.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path


def run_dagger(cfg: DaggerConfig, resume: bool = False, say=log.info) -> dict:
    return DaggerRun(cfg, resume=resume).run(say=say)
