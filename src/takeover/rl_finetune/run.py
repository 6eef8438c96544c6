"""A fine-tuning run: collect with the current actor, update, evaluate, save; resumable after a kill.

    Finetuner(FinetuneConfig(checkpoint=..., demos=[...], out="runs/ft", algo="rlpd")).run()

Run folder:
    config.json, metrics.jsonl (kind = collect | eval | warmup | done), plots/learning_curve.png
    checkpoints/start.pt       the starting policy as given (evaluated at env step 0)
    checkpoints/actor.pt       the current actor, what the rollout workers load
    checkpoints/step_*.pt      the actor at each evaluation; best.pt (highest success, later on ties,
                               start.pt included), last_policy.pt (the latest): standard policy checkpoints
    checkpoints/last.pt        the full state: learner, optimisers, online buffer, RNG, env-step count
Everything in `last.pt` is written to a temporary file and renamed, so a kill leaves the previous
complete state; `--resume` continues with the same step count and buffers.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from takeover.datasets import EpisodeRecorder
from takeover.policies.checkpoint import load_checkpoint, load_failure, save_checkpoint
from takeover.policies.errors import PolicyError
from takeover.policies.evaluate import evaluate, eval_seeds
from takeover.sim.env import make_env
from takeover.sim.rollout import RolloutPool

from takeover.policies.residual import ResidualPolicy

from .actor import TanhActor, check_finetunable
from .buffers import ReplayBuffer, check_demo_files, load_demo_buffer, successful_rows
from .collect import COLLECT_SEED_START, ActorFactory, online_transitions
from .config import FinetuneConfig
from .dapg import DAPG, DAPGConfig
from .errors import FinetuneError
from .residual import ResidualActor, ResidualRLConfig, demo_base_actions, residual_policy, with_base_actions
from .rlpd import RLPD, RLPDConfig

log = logging.getLogger(__name__)
STATE_FORMAT = "takeover-finetune-state"


def run_spec(spec, cfg: FinetuneConfig):
    import dataclasses

    return dataclasses.replace(spec, reward_shaping=cfg.reward == "shaped", camera_names=(),
                               horizon=cfg.horizon or spec.horizon)


class Finetuner:
    def __init__(self, cfg: FinetuneConfig, resume: bool = False):
        self.cfg = cfg
        self.out = Path(cfg.out)
        torch.set_num_threads(cfg.threads)
        state = self._check_out(resume)
        if state is not None:
            saved = FinetuneConfig.from_dict(json.loads(state["config"]))
            def key(c):
                return (c.algo, c.reward, c.horizon, str(Path(c.checkpoint).resolve()),
                        [str(Path(p).resolve()) for p in c.demos])

            if key(saved) != key(cfg):
                raise FinetuneError(f"{self.out}: run was {saved.algo} from {saved.checkpoint} with demos {saved.demos} "
                                    f"({saved.reward} reward, horizon {saved.horizon}); resume with the same settings")
        try:
            self.policy, self.spec, _ = load_checkpoint(cfg.checkpoint)
        except PolicyError as exc:
            raise FinetuneError(str(exc)) from None
        self.residual = cfg.algo == "residual"
        algo_cls, algo_cfg = {"rlpd": (RLPD, RLPDConfig), "dapg": (DAPG, DAPGConfig),
                              "residual": (RLPD, ResidualRLConfig)}[cfg.algo]
        self.algo_cfg = algo_cfg.from_dict(cfg.algo_options)
        if self.residual:
            self.policy = residual_policy(self.policy, self.algo_cfg)
            self.actor = ResidualActor(self.policy)
        else:
            if isinstance(self.policy, ResidualPolicy):
                raise FinetuneError(f"{cfg.checkpoint}: a residual policy; continue it with --algo residual")
            check_finetunable(self.policy, cfg.checkpoint)
            self.actor = TanhActor(self.policy)
        if not cfg.demos and cfg.algo != "dapg" and cfg.algo_options.get("demo_fraction", 0.5) > 0:
            raise FinetuneError(f"{cfg.algo} needs --demos (or --set demo_fraction=0 for RL without demonstrations)")
        self.env_spec = run_spec(self.spec, cfg)
        self.actor.eval()
        self.success_reward = 1.0 if cfg.reward == "sparse" else 1.0 / (1.0 - self.algo_cfg.gamma)
        check_demo_files(cfg.demos, self.policy, self.spec)  # before the run folder is touched
        env = make_env(self.env_spec)
        try:
            row_extra = None
            if self.residual:
                def row_extra(transitions, episode):
                    return with_base_actions(transitions, demo_base_actions(self.policy, episode))
            self.demo, self.demo_info = load_demo_buffer(cfg.demos, self.policy, self.spec, env, cfg.reward,
                                                         self.success_reward, self.algo_cfg.gamma,
                                                         row_dim=self.actor.row_dim, row_extra=row_extra)
        finally:
            env.close()
        self.online = ReplayBuffer(self.actor.row_dim, self.policy.shapes.action_dim)
        self.demo_from_files = len(self.demo)  # rows past this are online successes (success_replay)
        self.learner = algo_cls(self.algo_cfg, self.actor, seed=cfg.seed)
        self.env_steps, self.episodes, self.history = 0, 0, []
        self.best = {"success_rate": -1.0, "env_steps": None}
        if state is not None:
            self._load(state)
        else:
            self._prepare_out()

    # ----- run folder ------------------------------------------------------------------------------
    def _check_out(self, resume: bool):
        last = self.out / "checkpoints" / "last.pt"
        if resume:
            if not last.is_file():
                raise FinetuneError(f"{self.out}: nothing to resume (no checkpoints/last.pt)")
            try:
                state = torch.load(last, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001  (any unreadable state is one message)
                raise FinetuneError(f"{last}: cannot resume from it, {load_failure(exc)}; start again in another "
                                    f"--out") from None
            if state.get("format") != STATE_FORMAT:
                raise FinetuneError(f"{last}: not a fine-tuning state")
            return state
        if self.out.exists() and (not self.out.is_dir() or any(self.out.iterdir())):
            raise FinetuneError(f"{self.out}: exists; pass --resume to continue its run or choose another --out")
        return None

    def _prepare_out(self):
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.out / "plots").mkdir(exist_ok=True)
        shutil.copyfile(self.cfg.checkpoint, self.out / "checkpoints" / "start.pt")
        config = {"finetune": self.cfg.to_dict(), self.cfg.algo: self.algo_cfg.to_dict(),
                  "env_spec": self.env_spec.to_dict(), "demo_buffer": self.demo_info}
        (self.out / "config.json").write_text(json.dumps(config, indent=2))

    def _state(self) -> dict:
        return {"format": STATE_FORMAT, "config": json.dumps(self.cfg.to_dict()), "env_steps": self.env_steps,
                "episodes": self.episodes, "actor": self.policy.state_dict(), "learner": self.learner.state_dict(),
                "online": self.online.state_dict(), "replayed": self._replayed_rows(), "torch_rng": torch.get_rng_state(),
                "history": json.dumps(self.history), "best": json.dumps(self.best)}

    def _replayed_rows(self) -> dict:
        """The demo buffer's rows past the files' own: the online successes success_replay added."""
        return {k: torch.from_numpy(v[self.demo_from_files:].copy()) for k, v in self.demo.data.items()}

    def save_state(self):
        path = self.out / "checkpoints" / "last.pt"
        tmp = path.with_name(f".last.pt.tmp{os.getpid()}")
        torch.save(self._state(), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _load(self, state: dict):
        self.policy.load_state_dict(state["actor"])
        self.learner.load_state_dict(state["learner"])
        self.online.load_state_dict(state["online"])
        if "replayed" in state:  # the demo buffer was rebuilt from the files; the successes it gained are here
            self.demo.add({k: v.numpy() for k, v in state["replayed"].items()})
        torch.set_rng_state(state["torch_rng"])
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.history, self.best = json.loads(state["history"]), json.loads(state["best"])
        log.info("resumed %s at env step %d (%d online transitions)", self.out, self.env_steps, len(self.online))

    def _log(self, record: dict):
        with open(self.out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def save_policy(self, name: str) -> Path:
        path = self.out / "checkpoints" / name
        save_checkpoint(path, self.policy, self.spec, step=self.env_steps,
                        metrics={"finetune": self.cfg.algo, "env_steps": self.env_steps})
        return path

    # ----- the loop --------------------------------------------------------------------------------
    def evaluate(self, pool: RolloutPool, path: Path) -> dict:
        t0 = time.time()
        report = evaluate(path, seeds=eval_seeds(self.cfg.eval_episodes), pool=pool, spec=self.env_spec,
                          max_steps=self.env_spec.max_steps)
        returns = [e["total_reward"] for e in report.per_episode]
        record = {"kind": "eval", "env_steps": self.env_steps, "success_rate": report.success_rate,
                  "ci95": list(report.ci95), "episodes": report.episodes, "mean_return": float(np.mean(returns)),
                  "mean_length": report.mean_length, "seconds": round(time.time() - t0, 1), "checkpoint": path.name}
        if self.cfg.eval_sample:  # same seeds, actions drawn from the tanh-Gaussian instead of tanh(mean)
            drawn = evaluate(path, seeds=eval_seeds(self.cfg.eval_episodes), pool=pool, spec=self.env_spec,
                             max_steps=self.env_spec.max_steps, sample=True)
            record["sampled"] = {"success_rate": drawn.success_rate, "ci95": list(drawn.ci95),
                                 "mean_return": float(np.mean([e["total_reward"] for e in drawn.per_episode]))}
            record["seconds"] = round(time.time() - t0, 1)
        self.history.append(record)
        self._log(record)
        # the starting policy competes too: best.pt is never worse than what the run started from
        if report.success_rate >= self.best["success_rate"]:
            shutil.copyfile(path, path.with_name(".best.pt.tmp"))
            os.replace(path.with_name(".best.pt.tmp"), path.with_name("best.pt"))
            self.best = {"success_rate": report.success_rate, "env_steps": self.env_steps}
        return record

    def round_lengths(self) -> list[int]:
        """The step limit of each episode of the next round: as many as the round wants, none past the
        run's env-step budget (the last one is cut short where a whole episode would overrun it; a cut
        episode is a horizon cut to both learners)."""
        cfg, horizon = self.cfg, self.env_spec.max_steps
        n = cfg.episodes_per_round or max(1, cfg.workers)
        if cfg.algo == "dapg":  # whole episodes until the iteration's step budget
            n = max(n, int(np.ceil(self.algo_cfg.steps_per_iter / horizon)))
        left = cfg.env_steps - self.env_steps
        full = min(n, left // horizon)
        return [horizon] * full + ([left - full * horizon] if full < n and left > full * horizon else [])

    def collect(self, pool: RolloutPool) -> dict:
        cfg = self.cfg
        lengths = self.round_lengths()
        n = len(lengths)
        path = self.save_policy("actor.pt")
        seeds = [COLLECT_SEED_START + cfg.seed * 100_000_000 + self.episodes + i for i in range(n)]
        t0 = time.time()
        share = self.algo_cfg.residual_share(self.online.added) if self.residual else None
        factory = ActorFactory(str(path.resolve()), self.episodes, share)
        results = []
        for limit in sorted(set(lengths), reverse=True):  # one batch per step limit (a short last one at most)
            batch_seeds = [s for s, m in zip(seeds, lengths) if m == limit]
            results += pool.run(factory, batch_seeds, record=EpisodeRecorder, max_steps=limit)
        batch = online_transitions(results, self.policy.shapes.obs_keys, self.success_reward, cfg.reward == "shaped",
                                   self.algo_cfg.gamma)
        self.episodes += n
        steps = len(batch["rewards"])
        return {"batch": batch, "steps": steps, "collect_s": time.time() - t0,
                "success_rate": float(np.mean([r.success for r in results])),
                "mean_return": float(np.mean([r.total_reward for r in results]))}

    def add_online(self, batch: dict):
        """Collected transitions into the online buffer; with `success_replay` the episodes that reached
        success into the demo buffer too (saved in the state, since a resume rebuilds it from the files)."""
        self.online.add(batch)
        if self.algo_cfg.success_replay:
            self.demo.add(successful_rows(batch))

    def run(self, progress=None) -> dict:
        cfg = self.cfg
        pool = RolloutPool(self.env_spec, cfg.workers)
        try:
            if not self.history:
                self.evaluate(pool, self.out / "checkpoints" / "start.pt") if cfg.eval_episodes else None
                self.save_state()
            if not self.learner.warmed_up:
                t0 = time.time()
                stats = self.learner.warm_up(self.demo)
                self._log({"kind": "warmup", "updates": self.algo_cfg.critic_warmup_updates,
                           "seconds": round(time.time() - t0, 1), **stats})
                self.save_state()
            next_eval = (self.env_steps // cfg.eval_every + 1) * cfg.eval_every
            deadline = time.time() + cfg.max_minutes * 60 if cfg.max_minutes else None
            out_of_time = False
            while self.env_steps < cfg.env_steps and not out_of_time:
                got = self.collect(pool)
                t0 = time.time()
                if cfg.algo in ("rlpd", "residual"):
                    self.add_online(got["batch"])
                    stats = self.learner.train_on(got["steps"], self.demo, self.online)
                else:
                    stats = self.learner.train_on(got["batch"], self.demo)
                update_s = time.time() - t0
                self.env_steps += got["steps"]
                record = {"kind": "collect", "env_steps": self.env_steps, "episodes": self.episodes,
                          "success_rate": got["success_rate"], "mean_return": got["mean_return"],
                          "env_steps_per_s": round(got["steps"] / (got["collect_s"] + update_s), 1),
                          "collect_s": round(got["collect_s"], 2), "update_s": round(update_s, 2),
                          "demo_transitions": len(self.demo),
                          **{k: v if isinstance(v, int) else float(f"{v:.5g}") for k, v in stats.items()}}
                self._log(record)
                if progress:
                    progress(self.env_steps, record)
                out_of_time = deadline is not None and time.time() > deadline
                last_round = self.env_steps >= cfg.env_steps or out_of_time
                if (self.env_steps >= next_eval or last_round) and cfg.eval_episodes:
                    path = self.save_policy(f"step_{self.env_steps:08d}.pt")
                    self.evaluate(pool, path)
                    if progress:
                        progress(self.env_steps, self.history[-1])
                    next_eval = (self.env_steps // cfg.eval_every + 1) * cfg.eval_every
                self.save_policy("last_policy.pt")
                self.save_state()
        finally:
            pool.close()
        result = {"kind": "done", "env_steps": self.env_steps, "episodes": self.episodes, "best": self.best,
                  "start": self.history[0] if self.history else None, "final": self.history[-1] if self.history else None}
        self._log(result)
        self.plot()
        return result

    def plot(self):
        from .plots import plot_learning_curve

        try:
            plot_learning_curve(self.out)
        except Exception as exc:  # noqa: BLE001  a plot must never fail a finished run
            log.warning("could not draw the learning curve: %s", exc)


def finetune(cfg: FinetuneConfig, resume: bool = False, progress=None) -> dict:
    return Finetuner(cfg, resume=resume).run(progress=progress)
