"""What every correction run (DAgger, DART) shares: checking DATA against the learner, the run
folder's state file (written atomically: a kill never leaves half of it), retraining on the aggregate
with a warm start, evaluation on the fixed seeds, and the success-against-labels plot.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

from takeover.datasets import DemoReader, DemoWriter, EpisodeRecorder
from takeover.datasets.tools import add_to_split
from takeover.policies.checkpoint import check_compatible, load_checkpoint
from takeover.policies.evaluate import EVAL_SEED_START, EvalReport, evaluate, eval_seeds, resolve_checkpoint
from takeover.policies.train import TrainConfig, Trainer
from takeover.sim.experts import EXPERT_SUCCESS_HOLD, EXPERTS
from takeover.sim.rollout import RolloutPool

from .errors import CorrectionError

log = logging.getLogger(__name__)


@dataclass
class RunInputs:
    spec: object  # EnvSpec of DATA
    checkpoint: Path  # the learner's checkpoint file
    initial_labels: int  # steps in DATA
    train_base: dict  # the learner's TrainConfig fields (retraining starts from these)


def check_run_inputs(data: str, policy_path: str, checkpoint=None, no_expert_hint: str = "",
                     need_expert: bool = True) -> RunInputs:
    """Refuse, one line each, what cannot run: a missing DATA, data without an environment spec, a task
    without a scripted expert, a learner of another task or observation layout. `checkpoint` (a resumed
    run's latest learner) replaces `policy_path`'s checkpoint for the checks."""
    if not Path(data).is_file():
        raise CorrectionError(f"{data}: no such demonstration file")
    with DemoReader(data) as reader:
        spec, obs_keys, action_dim = reader.spec, reader.obs_keys, reader.action_dim
        initial_labels = sum(reader.num_samples(d) for d in reader.demos)
    if spec is None:
        raise CorrectionError(f"{data}: has no environment spec; import it first (takeover data import-robosuite)")
    if need_expert and spec.task not in EXPERTS:
        raise CorrectionError(f"{spec.task} has no scripted expert (tasks with one: {', '.join(EXPERTS)})"
                              + (f"; {no_expert_hint}" if no_expert_hint else ""))
    ckpt = resolve_checkpoint(checkpoint or policy_path)
    policy, ckpt_spec, _ = load_checkpoint(ckpt)
    reads = list(policy.shapes.obs_keys) + list(policy.shapes.image_keys)
    missing = [k for k in reads if k not in obs_keys]
    if missing:
        raise CorrectionError(f"{data}: lacks observation key(s) {missing} that the policy reads ({reads})")
    check_compatible(policy, ckpt_spec, spec, policy.shapes.obs_keys, action_dim, str(ckpt))
    return RunInputs(spec, ckpt, initial_labels, train_config_of(policy_path, ckpt, policy))


def train_config_of(policy_path: str, ckpt: Path, policy) -> dict:
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


def refuse_taken_folder(out: Path):
    if out.exists() and any(out.iterdir()):
        raise CorrectionError(f"{out}: exists and is not empty; pass --resume to continue it or choose another --out")


def load_state(state_path: Path, cfg, same_keys) -> dict:
    """A resumed run's state; refuses a config that differs in a setting the run cannot change."""
    if not state_path.is_file():
        raise CorrectionError(f"{state_path.parent}: nothing to resume (no {state_path.name})")
    state = json.loads(state_path.read_text())
    saved = state["config"]
    for key in same_keys:
        if saved.get(key, getattr(cfg, key)) != getattr(cfg, key):
            raise CorrectionError(f"{state_path.parent}: run was started with {key}={saved[key]!r}; resume with the same")
    return state


def write_atomic(path: Path, text: str):
    """Write a small text file so that a kill leaves either the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_state(state_path: Path, state: dict):
    write_atomic(state_path, json.dumps(state, indent=2))


def retrain_config(run_dir: Path, train_base: dict, overrides: dict, data: Path, learner: str, from_scratch: bool,
                   seed: int) -> tuple[TrainConfig, bool]:
    """The training of a round on the aggregate `data` into `run_dir` (warm start from `learner` unless
    from_scratch), and whether a killed one left its state to resume from."""
    options = {**train_base, **overrides, "data": str(data), "out": str(run_dir),
               "init_from": None if from_scratch else learner, "seed": seed}
    cfg = TrainConfig.from_dict({key: v for key, v in options.items() if key in {f.name for f in fields(TrainConfig)}})
    return cfg, (run_dir / "checkpoints" / "last.pt").is_file()


def retrain(cfg: TrainConfig, resume: bool) -> Path:
    """Run a round's training (see retrain_config); returns its best checkpoint."""
    result = Trainer(cfg, resume=resume).run()
    log.info("%s: trained %d steps, best %s", cfg.out, result["step"], result.get("best"))
    return Path(cfg.out) / "checkpoints" / "best.pt"


def collect_missing(data: Path, spec, pool: RolloutPool, agent, seeds: list[int], attrs: dict, round_key: str,
                    labels_of=len, **run_options) -> tuple[list[str], int]:
    """Roll out those of `seeds` not yet saved in `data` with this source and round (attrs["source"],
    attrs[round_key]), save every episode (success or not) in seed order as soon as it and every earlier
    seed have finished, add them all to the train split. Returns the round's demo names and expert labels
    (`labels_of(episode)` each)."""
    with DemoReader(data) as reader:
        done = {int(reader.attrs(d).get("seed", -1)): d for d in reader.demos
                if reader.attrs(d).get("source") == attrs["source"]
                and int(reader.attrs(d).get(round_key, -1)) == attrs[round_key]}
        names = [done[s] for s in seeds if s in done]
        labels = sum(labels_of(reader.episode(n, check=False)) for n in names)
    todo = [s for s in seeds if s not in done]
    if len(todo) < len(seeds):
        log.info("%s %d: %d of %d episodes already saved", round_key, attrs[round_key], len(seeds) - len(todo), len(seeds))
    if todo:
        with DemoWriter(data, spec, append=True) as writer:
            # Saved in seed order as soon as every earlier seed has finished: the file (and so the
            # training on it) must not depend on which worker finished first. An episode that finished
            # ahead of an earlier seed waits in memory; a kill loses at most those (< one per worker).
            finished, next_index = {}, 0

            def save(res):
                nonlocal labels, next_index
                finished[res.seed] = res.episode
                while next_index < len(todo) and todo[next_index] in finished:
                    episode = finished.pop(todo[next_index])
                    names.append(writer.save(episode))
                    labels += labels_of(episode)
                    next_index += 1

            pool.run(agent, todo, record=EpisodeRecorder, success_hold=EXPERT_SUCCESS_HOLD, episode_attrs=attrs,
                     progress=save, **run_options)
    add_to_split(data, "train", names)
    return names, labels


def evaluate_into(folder: Path, checkpoint: str, episodes: int, pool: RolloutPool) -> EvalReport:
    """Success of `checkpoint` on the fixed evaluation seeds, written to folder/eval.json."""
    report = evaluate(checkpoint, seeds=eval_seeds(episodes, EVAL_SEED_START), pool=pool)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "eval.json", report.to_json())
    return report


def eval_entry(report: EvalReport) -> dict:
    return {"eval_episodes": report.episodes, "successes": report.successes, "success_rate": report.success_rate,
            "ci95": list(report.ci95), "mean_length": report.mean_length}


def success_text(entry: dict) -> str:
    """'success 0.40 [0.28, 0.54]' for an evaluated round or iteration, 'not evaluated' otherwise."""
    if not entry.get("eval_episodes"):
        return "not evaluated"
    return f"success {entry['success_rate']:.2f} [{entry['ci95'][0]:.2f}, {entry['ci95'][1]:.2f}]"


def plot_success(out: Path, entries: list[dict], key: str, title: str) -> Path | None:
    """plots/success_vs_labels.png: success (Wilson 95% bars) against expert labels, each point
    annotated with entry[key] (the round or iteration)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not entries:
        return None
    (out / "plots").mkdir(exist_ok=True)
    x = [r["expert_labels"] for r in entries]
    y = [r["success_rate"] for r in entries]
    err = [[r["success_rate"] - r["ci95"][0] for r in entries], [r["ci95"][1] - r["success_rate"] for r in entries]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
    for r in entries:
        ax.annotate(str(r[key]), (r["expert_labels"], r["success_rate"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("expert labels (steps)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    path = out / "plots" / "success_vs_labels.png"
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
