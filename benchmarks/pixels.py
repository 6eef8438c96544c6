"""Policies from pixels: data throughput, training images/s, render cost per step, and the success
study (Lift from camera images + proprioception, no object state).

    OMP_NUM_THREADS=1 python benchmarks/pixels.py                         # the bar: 50 demos, 60 min, 50 episodes
    OMP_NUM_THREADS=1 python benchmarks/pixels.py --demos 2 --horizon 60 --minutes 1 --eval-every 1000 \
        --selection-episodes 2 --eval-episodes 2 --throughput-steps 6 --smoke        # minutes: checks the script

Parts (each one's figures land under its own key of the JSON):
  data:   decoding the gzip camera frames into memory vs building / reopening the mapped frame cache,
          and get_batch images/s;
  train:  the training loop's images/s (samples/s x cameras x observation history) per trunk at the
          study's batch size, from a short Trainer run's own metrics;
  render: env step time with the training cameras rendered vs without, i.e. the render cost per step
          of a pixel rollout (one process, one torch thread, as a rollout worker runs);
  study:  train for --minutes (checkpoints chosen by rollout success on selection seeds), then
          evaluate the best checkpoint on --eval-episodes fixed evaluation seeds (Wilson 95% CI);
          one entry per training seed.
Bar (issue 37): Lift >= 0.9 over 50 episodes after <= 60 minutes of training on the 2-core CPU from 50
scripted demos. Writes benchmarks/results/pixels.json (paths repo-relative); demos and runs go under
benchmarks/results/work/ (not committed).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, dump_json, machine  # noqa: E402

from takeover.datasets import DemoDataset  # noqa: E402
from takeover.policies.evaluate import evaluate  # noqa: E402
from takeover.policies.plots import read_metrics  # noqa: E402
from takeover.policies.train import TrainConfig, Trainer  # noqa: E402
from takeover.policies.vision import IMAGE_TRAIN_DEFAULTS, EncoderConfig  # noqa: E402
from takeover.sim import EnvSpec, make_env  # noqa: E402
from takeover.datasets.scripted_collection import collect_scripted  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PROPRIO = ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"]


def rel(path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def demos_file(args, work: Path) -> Path:
    horizon = f"_h{args.horizon}" if args.horizon else ""
    path = work / f"{args.task}_{args.demos}demos_{'+'.join(args.cameras)}_{args.camera_size}px{horizon}.hdf5"
    if not path.exists():
        spec = EnvSpec(task=args.task, camera_names=tuple(args.cameras), camera_height=args.camera_size,
                       camera_width=args.camera_size, horizon=args.horizon)
        t0 = time.perf_counter()
        collect_scripted(spec, str(path), args.demos, workers=args.workers)
        print(f"collected {args.demos} demos in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
    return path


def data_part(data: Path, keys: list[str], work: Path, batch: int) -> dict:
    t0 = time.perf_counter()
    in_memory = DemoDataset(data, obs_keys=keys)
    decode_s = time.perf_counter() - t0
    cache = work / "frame_cache"
    for p in cache.glob("*.u8"):
        p.unlink()
    t0 = time.perf_counter()
    DemoDataset(data, obs_keys=keys, frame_cache=cache)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    mapped = DemoDataset(data, obs_keys=keys, frame_cache=cache)
    reopen_s = time.perf_counter() - t0
    cameras = len(mapped.image_keys)
    g = torch.Generator().manual_seed(0)
    rates = {}
    for name, ds in (("in_memory", in_memory), ("mapped_cache", mapped)):
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < 2.0:
            ds.get_batch(torch.randint(len(ds), (batch,), generator=g))
            n += batch * cameras
        rates[name] = round(n / (time.perf_counter() - t0))
    return {"steps": len(mapped), "episodes": len(mapped.demos), "cameras": mapped.image_keys,
            "dataset_load_decoding_gzip_s": round(decode_s, 2), "dataset_load_building_cache_s": round(build_s, 2),
            "dataset_load_from_cache_s": round(reopen_s, 2),
            "gzip_decode_ms_per_episode": round(1000 * decode_s / len(mapped.demos), 1),
            "get_batch_images_per_s": rates}


def train_part(data: Path, keys: list[str], work: Path, args) -> dict:
    out = {}
    for trunk in args.trunks:
        run = work / f"throughput_{trunk}"
        if run.exists():
            import shutil

            shutil.rmtree(run)
        cfg = TrainConfig(data=str(data), out=str(run), head=args.head, obs_keys=keys, steps=args.throughput_steps,
                          batch_size=args.batch_size, eval_episodes=0, log_every=max(1, args.throughput_steps // 3),
                          threads=args.threads, image_encoder={"trunk": trunk, "crop": args.crop},
                          head_options=json.loads(args.head_options))
        trainer = Trainer(cfg)
        trainer.run()
        rows = [r for r in read_metrics(run) if r.get("kind") == "train"]
        samples = rows[-1]["samples_per_s"]  # the last interval: past the first steps' warm-up
        images = samples * len(trainer.shapes.image_keys) * trainer.head_config.obs_horizon
        out[trunk] = {"samples_per_s": samples, "images_per_s": round(images, 1), "batch_size": args.batch_size,
                      "params": sum(p.numel() for p in trainer.policy.parameters()),
                      "crop": list(next(iter(trainer.policy.encoder.images.values())).crop)}
        print(f"train {trunk}: {samples} samples/s, {images:.0f} images/s", flush=True)
    return out


def render_part(args, steps: int = 60) -> dict:
    torch.set_num_threads(1)
    timings = {}
    for label, cameras in (("without_cameras", ()), ("with_cameras", tuple(args.cameras))):
        env = make_env(EnvSpec(task=args.task, camera_names=cameras, camera_height=args.camera_size,
                               camera_width=args.camera_size))
        try:
            env.reset(seed=0)
            rng = np.random.default_rng(0)
            env.step(np.zeros(7))  # first step: controller compile and context creation
            t0 = time.perf_counter()
            for _ in range(steps):
                env.step(rng.uniform(-0.3, 0.3, 7))
            timings[label] = (time.perf_counter() - t0) / steps * 1000
        finally:
            env.close()
    return {"step_ms_without_cameras": round(timings["without_cameras"], 2),
            "step_ms_with_cameras": round(timings["with_cameras"], 2),
            "render_ms_per_step": round(timings["with_cameras"] - timings["without_cameras"], 2),
            "cameras": list(args.cameras), "size": args.camera_size}


def study_part(data: Path, keys: list[str], work: Path, args, seed: int) -> dict:
    run = work / (f"study_{args.trunks[0]}_seed{seed}" + ("_smoke" if args.smoke else ""))
    if run.exists():
        import shutil

        shutil.rmtree(run)
    encoder = {"trunk": args.trunks[0], "crop": args.crop}
    cfg = TrainConfig(data=str(data), out=str(run), head=args.head, obs_keys=keys, seed=seed,
                      steps=args.steps, max_minutes=args.minutes, batch_size=args.batch_size,
                      eval_every=args.eval_every, eval_episodes=args.selection_episodes, eval_workers=args.workers,
                      threads=args.threads, image_encoder=encoder, head_options=json.loads(args.head_options))
    t0 = time.perf_counter()
    result = Trainer(cfg).run()
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = evaluate(run, episodes=args.eval_episodes, workers=args.workers)
    eval_s = time.perf_counter() - t0
    entry = {"seed": seed, "success_rate": report.success_rate, "ci95": report.ci95, "episodes": report.episodes,
             "mean_length": report.mean_length, "train_steps": result["step"], "train_minutes": round(train_s / 60, 2),
             "eval_s": round(eval_s, 1), "eval_s_per_episode_step": round(eval_s / max(1, report.episodes * report.mean_length), 4),
             "best": result.get("best"), "run": rel(run), "encoder": EncoderConfig.from_dict(encoder).to_dict(),
             "selection": [{k: r[k] for k in ("step", "success_rate", "episodes")}
                           for r in read_metrics(run) if r.get("kind") == "eval"]}
    print(f"study seed {seed}: {report.successes}/{report.episodes} after {entry['train_minutes']} min", flush=True)
    return entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="Lift")
    ap.add_argument("--demos", type=int, default=50)
    ap.add_argument("--cameras", default="agentview,robot0_eye_in_hand")
    ap.add_argument("--camera-size", type=int, default=84)
    ap.add_argument("--horizon", type=int, default=None, help="episode step limit stored with the demos, so also "
                    "of every evaluation (default: the task's); smoke runs shorten it")
    ap.add_argument("--head", default="gaussian")
    ap.add_argument("--head-options", default="{}", help='JSON, e.g. \'{"obs_horizon": 2}\'')
    ap.add_argument("--trunks", default="small,resnet18", help="throughput per trunk; the study uses the first")
    ap.add_argument("--crop", type=float, default=0.9)
    ap.add_argument("--batch-size", type=int, default=IMAGE_TRAIN_DEFAULTS["batch_size"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--throughput-steps", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=60.0, help="training budget of the study")
    ap.add_argument("--steps", type=int, default=IMAGE_TRAIN_DEFAULTS["steps"],
                    help="steps of the study (its cosine schedule); --minutes stops it earlier")
    ap.add_argument("--eval-every", type=int, default=IMAGE_TRAIN_DEFAULTS["eval_every"])
    ap.add_argument("--selection-episodes", type=int, default=IMAGE_TRAIN_DEFAULTS["eval_episodes"])
    ap.add_argument("--eval-episodes", type=int, default=50)
    ap.add_argument("--seeds", default="0", help="training seeds of the study, e.g. 0,1,2")
    ap.add_argument("--parts", default="data,train,render,study")
    ap.add_argument("--smoke", action="store_true", help="a quick check of the script; marked in the JSON")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/pixels.json)")
    args = ap.parse_args()
    args.cameras = [c for c in args.cameras.split(",") if c]
    args.trunks = [t for t in args.trunks.split(",") if t]
    parts = set(args.parts.split(","))
    torch.set_num_threads(args.threads)
    work = RESULTS / "work" / "pixels"
    work.mkdir(parents=True, exist_ok=True)
    data = demos_file(args, work)
    keys = PROPRIO + [f"{c}_image" for c in args.cameras]
    out_path = Path(args.out) if args.out else RESULTS / "pixels.json"
    results = {"machine": machine(), "smoke": args.smoke, "data": rel(data), "obs_keys": keys,
               "settings": {k: v for k, v in vars(args).items() if k not in ("out",)}}

    def save():
        out_path.parent.mkdir(parents=True, exist_ok=True)
        dump_json(out_path, results)  # paths made repo-relative

    if "data" in parts:
        results["data_throughput"] = data_part(data, keys, work, args.batch_size)
        save()
    if "render" in parts:
        results["render"] = render_part(args)
        save()
    if "train" in parts:
        results["train_throughput"] = train_part(data, keys, work, args)
        save()
    if "study" in parts:
        results["study"] = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            results["study"].append(study_part(data, keys, work, args, seed))
            save()
    print(f"wrote {rel(out_path)}")


if __name__ == "__main__":
    main()
