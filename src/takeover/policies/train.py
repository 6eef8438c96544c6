"""Behaviour-cloning trainer for every head.

    train(TrainConfig(data="demos.hdf5", out="runs/lift_gmm", head="gmm"))

Run folder (docs/reference/formats.md): config.json, metrics.jsonl (one JSON object per line: kind = train | valid |
eval | done), plots/losses.png, plots/success.png, checkpoints/{step_*.pt, best.pt, last.pt}, eval.json.
- AdamW, linear warm-up then cosine decay; optional EMA weights used for validation, evaluation and
  the saved policy checkpoints.
- Periodic rollout evaluation in the simulator; `best.pt` is the checkpoint with the highest success
  rate (ties go to the later one), never the lowest validation loss (docs/architecture.md: that picks badly).
- `last.pt` holds the full training state (weights, optimiser, scheduler, EMA, RNG, step); `resume`
  continues from it after a kill. Budgets: `steps` and `max_minutes` (whichever comes first).
- Data-parallel with `torchrun --nproc-per-node N` (DDP; gloo on CPU, nccl on CUDA): each rank draws its
  own batches; rank 0 writes everything and runs the evaluations.
- The trainer knows no head: the head config says which windows it trains on (`HeadConfig.windows`),
  the dataset serves them with their label masks (`TrainConfig.weighting`, datasets/labels.py: only a person's steps in take-over
  demos) and weights, and `Policy.prepare(train_data)` lets a head fit itself to the data once.
  Everything comes from the file; no simulator is built to train (files recorded before the object
  layout was stored derive it once: DemoReader.object_layout).
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from takeover.datasets import DemoDataset
from takeover.datasets.labels import WEIGHTINGS
from takeover.sim.observations import ObsLayout
from takeover.sim.spec import EnvSpec
from takeover.sim.rollout import RolloutPool

from .base import PolicyShapes
from .checkpoint import load_failure, read_checkpoint, save_checkpoint
from .ema import EMA
from .errors import PolicyError
from .evaluate import evaluate, eval_seeds, horizon_for, require_rendering
from .registry import make_config, make_policy
from .rotations import ObsFeatures, quaternion_starts
from .train_config import TrainConfig  # noqa: F401  (re-exported: `from takeover.policies.train import TrainConfig`)
from .vision import EncoderConfig

log = logging.getLogger(__name__)


DEFAULT_OBS_KEYS = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise PolicyError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def cameras_for(spec, image_keys, image_shapes, where: str):
    """The spec evaluations render: exactly the cameras the policy reads, at the size it trained on
    (the file's spec may name more cameras, or none when frames were imported)."""
    cameras = []
    for key in image_keys:
        if not key.endswith("_image"):
            raise PolicyError(f"{where}: observation key {key} is not a camera image (<camera>_image); "
                              f"policies read RGB camera images only")
        cameras.append(key[: -len("_image")])
    sizes = {tuple(s[:2]) for s in image_shapes}
    if len(sizes) > 1:
        raise PolicyError(f"{where}: camera images differ in size ({dict(zip(image_keys, image_shapes))}); "
                          f"record every camera at one size")
    (height, width), = sizes
    return replace(spec, camera_names=tuple(cameras), camera_height=height, camera_width=width)


class _Distributed:
    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if self.enabled and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.enabled:
            torch.distributed.barrier()

    def broadcast_flag(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0])
        torch.distributed.broadcast(t, 0)
        return bool(t.item())

    def gather_floats(self, value: float) -> list[float]:
        if not self.enabled:
            return [value]
        t = torch.tensor([value], dtype=torch.float64)
        out = [torch.zeros_like(t) for _ in range(self.world)]
        torch.distributed.all_gather(out, t)
        return [o.item() for o in out]

    def close(self):
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _cosine_with_warmup(optimizer, warmup: int, total: int):
    def factor(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False):
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.dist = _Distributed(self.device)
        init = None
        if cfg.init_from and not resume:
            init = read_checkpoint(cfg.init_from)
            saved = json.loads(init["config"])
            if saved.get("head") != cfg.head:
                raise PolicyError(f"{cfg.init_from}: is a {saved.get('head')} checkpoint; --init-from needs a {cfg.head} one")
            self.head_config = make_config(cfg.head, **{**{k: v for k, v in saved.items() if k != "head"}, **cfg.head_options})
        else:
            self.head_config = make_config(cfg.head, **cfg.head_options)
        self._load_data()
        if self.dist.main and cfg.eval_episodes > 0:
            require_rendering(self.spec, f"{cfg.data} (--eval-episodes 0 trains without rollouts)")
        torch.manual_seed(cfg.seed)
        self.policy = make_policy(self.head_config, self.shapes, self._feature_stats()).to(self.device)
        if self.shapes.image_encoder and self.shapes.image_encoder.pretrained and not resume:
            self._load_pretrained(self.shapes.image_encoder.pretrained)
        if init is not None:
            self._warm_start(init)
        self.policy.prepare(self.train_ds)  # after a warm start too: e.g. bins follow this data's normalisation
        self.model = self.policy
        if self.dist.enabled:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.policy, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        lr = cfg.lr if cfg.lr is not None else self.head_config.default_lr
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=lr, weight_decay=cfg.weight_decay)
        self.scheduler = _cosine_with_warmup(self.optimizer, cfg.warmup_steps, cfg.steps)
        self.ema = EMA(self.policy, max_decay=cfg.ema_decay) if cfg.ema_decay else None
        self.generator = torch.Generator().manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.step = 0
        self.best = {"success_rate": -1.0, "step": None, "path": None}
        self.eval_history: list[dict] = []
        if resume:
            self._resume()
        elif self.dist.main:
            self._prepare_out()

    # ----- set-up -----------------------------------------------------------------------------------
    def _load_data(self):
        cfg, hc = self.cfg, self.head_config
        from takeover.datasets import DemoReader

        with DemoReader(cfg.data) as reader:  # one open serves both datasets and the key shapes
            spec, splits = reader.spec, reader.splits
            if spec is None:
                raise PolicyError(f"{cfg.data}: file has no environment spec; import it with `takeover data import-robosuite`")
            available = reader.obs_keys
            obs_keys = list(cfg.obs_keys) if cfg.obs_keys else [k for k in DEFAULT_OBS_KEYS if k in available] or None
            label_rule, weight_rule, _ = WEIGHTINGS[cfg.weighting]
            windows = dict(asdict(hc.windows), labels=label_rule, weights=weight_rule)
            train_split = "train" if "train" in splits else None
            windows["frame_cache"] = True  # camera frames decoded once per file into a mapped cache
            self.train_ds = DemoDataset(reader, obs_keys=obs_keys, split=train_split, **windows)
            self.valid_ds = DemoDataset(reader, obs_keys=obs_keys, split="valid", **windows) if "valid" in splits else None
            first = reader.episode(self.train_ds.demos[0], check=False)
            quaternions_in_object = cfg.quaternions == "matrix" and "object" in self.train_ds.obs_keys
            parts = reader.object_layout if quaternions_in_object else None
        longest = int(self.train_ds.lengths.max())
        if horizon_for(spec, longest) > spec.max_steps:
            log.info("evaluation horizon %d (task: %d): the longest training demo has %d steps",
                     horizon_for(spec, longest), spec.max_steps, longest)
            spec = replace(spec, horizon=horizon_for(spec, longest))
        image_keys = tuple(self.train_ds.image_keys)
        image_shapes = tuple(tuple(int(n) for n in first.obs[k].shape[1:]) for k in image_keys)
        self.spec = cameras_for(spec, image_keys, image_shapes, cfg.data) if image_keys else spec
        layout_shapes = [tuple(first.obs[k].shape[1:]) for k in self.train_ds.obs_keys]
        layout = ObsLayout(tuple(self.train_ds.obs_keys), tuple(layout_shapes))
        quat_starts = ()
        if cfg.quaternions not in ("matrix", "raw"):
            raise PolicyError(f"quaternions must be 'matrix' or 'raw', not {cfg.quaternions!r}")
        if cfg.quaternions == "matrix":
            quat_starts = quaternion_starts(layout, parts)
        encoder = None
        if image_keys:
            try:
                encoder = EncoderConfig.from_dict(dict(cfg.image_encoder))
            except TypeError as exc:
                raise PolicyError(f"image encoder options {cfg.image_encoder}: {exc}") from None
        self.shapes = PolicyShapes(layout.keys, layout.shapes, self.train_ds.action_dim, image_keys, quat_starts,
                                   image_shapes, encoder)
        if self.train_ds.action_dim != 7 and spec.controller == "OSC_POSE":
            raise PolicyError(f"{cfg.data}: actions have {self.train_ds.action_dim} values; OSC_POSE expects 7")

    def _load_pretrained(self, path: str):
        cameras = {k: enc for k, enc in self.policy.encoder.images.items() if enc.trunk_name == "resnet18"}
        if not cameras:
            raise PolicyError(f"pretrained weights {path} are for resnet18 trunks; no camera uses one "
                              f"(set image_encoder trunk=resnet18)")
        for key, enc in cameras.items():
            log.info("%s: %d pretrained tensors from %s", key, enc.load_pretrained(path), path)

    def _feature_stats(self) -> dict:
        """Normalisation statistics of what the policy reads: the observations after ObsFeatures."""
        if not self.shapes.quat_starts:
            return self.train_ds.stats
        return self.train_ds.stats_for(ObsFeatures(self.shapes.obs_dim, self.shapes.quat_starts)(self.train_ds.obs))

    def _prepare_out(self):
        if (self.out / "checkpoints" / "last.pt").exists():
            raise PolicyError(f"{self.out}: a run already exists here; pass --resume to continue it or choose another --out")
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (self.out / "plots").mkdir(exist_ok=True)
        config = {"train": self.cfg.to_dict(), "head": self.head_config.to_dict(), "env_spec": self.spec.to_dict(),
                  "obs_keys": list(self.shapes.obs_keys), "train_windows": len(self.train_ds),
                  "valid_windows": len(self.valid_ds) if self.valid_ds else 0, "world_size": self.dist.world}
        (self.out / "config.json").write_text(json.dumps(config, indent=2))

    # ----- training state -----------------------------------------------------------------------------
    def _state(self) -> dict:
        return {"format": "takeover-train-state", "step": self.step,
                "model": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "ema": self.ema.state_dict() if self.ema else {},
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state(),
                "best": json.dumps(self.best), "eval_history": json.dumps(self.eval_history),
                "config": json.dumps(self.cfg.to_dict())}

    def _save_state(self):
        path = self.out / "checkpoints" / "last.pt"
        tmp = path.with_name(".last.pt.tmp")
        torch.save(self._state(), tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _warm_start(self, payload: dict):
        """Start from a checkpoint's weights; the normalisation stays the one fitted to this run's data.

        A warm start is how DAgger and fine-tuning continue on more (and different) data than the
        checkpoint saw. Its statistics come from that older data: after 2 Lift demos the aggregate of a
        DAgger round sat up to ~58 std out on some inputs and the new labels ~5 std out on some action
        dimensions, and warm-started rounds barely improved. Refitting costs a short re-adaptation of
        the first and last layers, which the retraining does anyway."""
        shapes = PolicyShapes.from_dict(json.loads(payload["shapes"]))
        if bool(shapes.quat_starts) != bool(self.shapes.quat_starts) and shapes.obs_keys == self.shapes.obs_keys:
            was = "matrix" if shapes.quat_starts else "raw"
            raise PolicyError(f"{self.cfg.init_from}: was trained with --quaternions {was}; warm start with the same")
        if shapes.image_shapes != self.shapes.image_shapes and shapes.image_keys == self.shapes.image_keys:
            raise PolicyError(f"{self.cfg.init_from}: trained on {list(shapes.image_keys)} images of "
                              f"{[list(s) for s in shapes.image_shapes]}; this data's are {[list(s) for s in self.shapes.image_shapes]}")
        if shapes != self.shapes:
            raise PolicyError(f"{self.cfg.init_from}: {self._shape_difference(shapes, payload)}; --init-from needs a "
                              f"checkpoint of the same task and observations")
        fitted = {k: v for k, v in self.policy.state_dict().items() if k.startswith("normalizer.")}
        self.policy.load_state_dict({**payload["state_dict"], **fitted})
        log.info("warm start from %s (step %d), normalisation refitted to %s", self.cfg.init_from, payload["step"],
                 self.cfg.data)

    def _shape_difference(self, shapes: PolicyShapes, payload: dict) -> str:
        """What differs between a warm-start checkpoint and this data, named: the task, then each
        observation key whose size differs (or that only one side has), then the action size."""
        parts = []
        task = EnvSpec.from_json(payload["env_spec"]).task if "env_spec" in payload else None
        if task and task != self.spec.task:
            parts.append(f"is a checkpoint of {task}, this data is {self.spec.task}")
        task_named = len(parts)
        theirs = dict(zip(shapes.obs_keys, shapes.layout.sizes))
        ours = dict(zip(self.shapes.obs_keys, self.shapes.layout.sizes))
        for key in list(ours) + [k for k in theirs if k not in ours]:
            if theirs.get(key) != ours.get(key):
                parts.append(f"{key}: " + (f"{theirs[key]} values there" if key in theirs else "not read there")
                             + ", " + (f"{ours[key]} here" if key in ours else "not in this data"))
        if shapes.image_keys != self.shapes.image_keys:
            parts.append(f"cameras {list(shapes.image_keys)} there, {list(self.shapes.image_keys)} here")
        if shapes.action_dim != self.shapes.action_dim:
            parts.append(f"{shapes.action_dim} actions there, {self.shapes.action_dim} here")
        if len(parts) == task_named:  # same keys and sizes: the order or the shapes differ
            parts.append(f"observations {list(zip(theirs, shapes.obs_shapes))} there, "
                         f"{list(zip(ours, self.shapes.obs_shapes))} here")
        return "; ".join(parts)

    def _resume(self):
        path = self.out / "checkpoints" / "last.pt"
        if not path.is_file():
            raise PolicyError(f"{self.out}: nothing to resume (no checkpoints/last.pt)")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any unreadable file is one message)
            raise PolicyError(f"{path}: cannot resume from it, {load_failure(exc)}; start again in another --out") from None
        saved = json.loads(state["config"])
        if saved["head"] != self.cfg.head or Path(saved["data"]).resolve() != Path(self.cfg.data).resolve():
            raise PolicyError(f"{path}: run was {saved['head']} on {saved['data']}; resume with the same head and data")
        was = saved.get("quaternions", "raw")  # runs from before the option fed quaternions raw
        if was != self.cfg.quaternions:
            raise PolicyError(f"{path}: run was trained with --quaternions {was}; resume with the same")
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.step = int(state["step"])
        self.best = json.loads(state["best"])
        self.eval_history = json.loads(state["eval_history"])
        log.info("resumed %s at step %d", self.out, self.step)

    # ----- the loop ------------------------------------------------------------------------------------
    def _batch(self, ds: DemoDataset, idx: torch.Tensor) -> dict:
        batch = ds.get_batch(idx)
        out = {k: v.to(self.device, non_blocking=True) for k, v in batch.items() if k != "images"}
        if "images" in batch:
            out["images"] = {k: v.to(self.device, non_blocking=True) for k, v in batch["images"].items()}
        return out

    def _log(self, record: dict):
        if self.dist.main:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _averaged_weights(self):
        """Context in which self.policy holds the weights that are evaluated (EMA when on)."""
        return self.ema.applied_to(self.policy) if self.ema else contextlib.nullcontext(self.policy)

    @torch.no_grad()
    def validate(self, batches: int = 20) -> float | None:
        if self.valid_ds is None:
            return None
        g = torch.Generator().manual_seed(1234)
        n = min(batches, max(1, len(self.valid_ds) // self.cfg.batch_size))
        with self._averaged_weights() as model:
            model.eval()
            losses = [model.loss(self._batch(self.valid_ds, torch.randint(len(self.valid_ds), (self.cfg.batch_size,),
                                                                              generator=g)))["loss"].item()
                      for _ in range(n)]
        self.policy.train()
        return sum(losses) / len(losses)

    def save_policy(self, name: str) -> Path:
        path = self.out / "checkpoints" / name
        weights = self.ema.state_dict_for_model() if self.ema else None
        save_checkpoint(path, self.policy, self.spec, self.step, state_dict=weights)
        return path

    def rollout_eval(self, pool: RolloutPool | None):
        path = self.save_policy(f"step_{self.step:07d}.pt")
        if self.cfg.eval_episodes <= 0 or pool is None:
            self._set_best(path, None)  # without rollouts the latest policy is the best we know
            return None
        t0 = time.time()
        report = evaluate(path, seeds=eval_seeds(self.cfg.eval_episodes, self.cfg.eval_seed_start), pool=pool)
        record = {"kind": "eval", "step": self.step, "success_rate": report.success_rate, "ci95": report.ci95,
                  "episodes": report.episodes, "mean_length": report.mean_length, "seconds": round(time.time() - t0, 1),
                  "checkpoint": path.name}
        self.eval_history.append(record)
        self._log(record)
        log.info("step %d: success %.2f over %d episodes", self.step, report.success_rate, report.episodes)
        if report.success_rate >= self.best["success_rate"]:
            self._set_best(path, report.success_rate)
        return report

    def _set_best(self, path: Path, success_rate):
        import shutil

        tmp = path.with_name(".best.pt.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, path.with_name("best.pt"))
        self.best = {"success_rate": -1.0 if success_rate is None else success_rate, "step": self.step, "path": path.name}

    def run(self, progress=None) -> dict:
        cfg = self.cfg
        deadline = time.time() + cfg.max_minutes * 60 if cfg.max_minutes else None
        pool = RolloutPool(self.spec, cfg.eval_workers) if (self.dist.main and cfg.eval_episodes > 0) else None
        self.model.train()
        t_last, samples = time.time(), 0
        try:
            while self.step < cfg.steps:
                idx = self.train_ds.sample_indices(cfg.batch_size, self.generator,
                                                   balance_interventions=WEIGHTINGS[cfg.weighting][2])
                out = self.model(self._batch(self.train_ds, idx))
                loss = out["loss"]
                if not torch.isfinite(loss):
                    raise PolicyError(f"training diverged at step {self.step} (loss {loss.item()}); try a lower --lr")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                if self.ema:
                    self.ema.update(self.policy)
                self.step += 1
                samples += cfg.batch_size
                if progress:
                    progress(self.step, loss.item())
                if self.step % cfg.log_every == 0:
                    now = time.time()
                    self._log({"kind": "train", "step": self.step, "lr": self.scheduler.get_last_lr()[0],
                               "samples_per_s": round(samples * self.dist.world / (now - t_last), 1),
                               **{k: round(float(v.detach()), 6) for k, v in out.items()}})
                    t_last, samples = now, 0
                if self.dist.main and self.step % cfg.valid_every == 0 and self.valid_ds is not None:
                    self._log({"kind": "valid", "step": self.step, "loss": self.validate()})
                    self.model.train()
                out_of_time = deadline is not None and time.time() > deadline
                out_of_time = self.dist.broadcast_flag(out_of_time)
                if self.dist.main and self.step % cfg.eval_every == 0 and self.step < cfg.steps and not out_of_time:
                    self.rollout_eval(pool)
                    self.model.train()
                if self.dist.main and (self.step % cfg.checkpoint_every == 0):
                    self._save_state()
                if out_of_time:
                    log.info("wall-clock budget of %s minutes reached at step %d", cfg.max_minutes, self.step)
                    break
            result = self._finish(pool)
        finally:
            if pool is not None:
                pool.close()
        return result

    def _finish(self, pool) -> dict:
        checksums = self.dist.gather_floats(sum(p.double().sum().item() for p in self.policy.parameters()))
        result = {"kind": "done", "step": self.step, "rank_param_checksums": checksums}
        if self.dist.main:
            self._save_state()
            if not self.eval_history or self.eval_history[-1]["step"] != self.step:
                self.rollout_eval(pool)
            if self.valid_ds is not None:
                result["valid_loss"] = self.validate()
            result["best"] = self.best
            self._log(result)
            self._plot()
        self.dist.barrier()
        self.dist.close()
        return result

    def _plot(self):
        from .plots import plot_run

        try:
            plot_run(self.out)
        except Exception as exc:  # noqa: BLE001  plots must never fail a finished run
            log.warning("could not draw plots: %s", exc)


def train(cfg: TrainConfig, resume: bool = False, progress=None) -> dict:
    return Trainer(cfg, resume=resume).run(progress=progress)
