"""Train one head on a GPU machine without the simulator, inside a fixed wall-clock budget.

For one-shot runs on the lent GPU machine (.library/device), where robosuite and mujoco are absent
and only what the command leaves in $OUT comes back (at most 8 files, each under 16 MB):

    python3 benchmarks/device_train.py --data benchmarks/results/work/NutAssemblySquare_200.hdf5 \\
        --out $OUT --head diffusion --head-options '{"unet_size": "medium"}' --budget-s 420 \\
        --object-layout '{"keys": [...], "shapes": [...]}'

It trains with the project's own Trainer (same settings as the CPU runs: AdamW, warm-up then cosine,
EMA 0.995, quaternions as matrices, seed 0) and runs no rollout evaluation. Without --steps, a short
probe of real training steps measures the throughput, is thrown away, and the run gets
probe rate x remaining budget x --safety steps, so that its cosine schedule ends where the budget
does; the Trainer's `max_minutes` stays on as a safety net. Everything ends by itself about
--budget-s seconds after the script started (imports and data loading included).

--out receives, rewritten every --export-every-s seconds so that a killed run still returns something:
  policy.pt         EMA weights in the checkpoint format `takeover eval` reads (Trainer.save_policy);
                    above 15 MB it is split into policy.pt.part0, policy.pt.part1, ... Join them with
                    `cat policy.pt.part0 policy.pt.part1 > policy.pt` (all parts, in order) and compare
                    `sha256sum policy.pt` with summary.json's policy_sha256.
  metrics.jsonl     the Trainer's (kind = train | valid | done)
  config.json       the Trainer's run configuration
  summary.json      status (running | done | failed), steps, samples/s, wall seconds, device, torch,
                    final loss, the probe's rate
Training state (last.pt with the optimiser), step checkpoints and plots stay in --work.

The object vector's quaternions are found by the names of its parts, which files store when they
are recorded (DemoReader.object_layout). A file recorded before that derives them from the simulator;
where robosuite is missing, pass them with --object-layout (JSON or a file); get them on a machine
with the simulator:
    python -c "from takeover.datasets import DemoReader; import json; \\
               print(json.dumps(DemoReader('DATA.hdf5').object_layout.to_dict()))"
"""
from __future__ import annotations

import time

T0 = time.time()  # the budget counts from here: imports and data loading are part of it

import argparse  # noqa: E402
import gc  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402
import types  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PART_BYTES = 15_000_000  # returned files must stay under 16 MB
POLICY_NAME = "policy.pt"
log = logging.getLogger("device_train")


def _ensure_takeover_importable():
    """Without `pip install -e .`, import the checkout's src/takeover."""
    if importlib.util.find_spec("takeover") is None:
        pkg = types.ModuleType("takeover")
        pkg.__path__ = [str(ROOT / "src" / "takeover")]
        sys.modules["takeover"] = pkg


_ensure_takeover_importable()
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import takeover.datasets.reader as reader_module  # noqa: E402
from common import dump_json, machine  # noqa: E402
from takeover.datasets import DemoReader  # noqa: E402
from takeover.policies.checkpoint import load_checkpoint  # noqa: E402
from takeover.policies.train import TrainConfig, Trainer  # noqa: E402
from takeover.sim.observations import ObsLayout  # noqa: E402

NEVER = 10**12  # eval_every / checkpoint_every past any step count: no rollouts, last.pt only at the end


class _ProbeDone(Exception):
    pass


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="folder for the returned files ($OUT)")
    p.add_argument("--work", default=None, help="Trainer run folders (default: a new folder under /tmp)")
    p.add_argument("--head", default="diffusion")
    p.add_argument("--head-options", default="{}", help='JSON, e.g. {"unet_size": "medium"}')
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--ema-decay", type=float, default=0.995)
    p.add_argument("--quaternions", default="matrix", choices=("matrix", "raw"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=420.0, help="wall seconds from the script's start to its end")
    p.add_argument("--steps", type=int, default=None, help="fixed step count (default: from a throughput probe)")
    p.add_argument("--probe-s", type=float, default=15.0, help="seconds of probe training (the first third is warm-up)")
    p.add_argument("--safety", type=float, default=0.9, help="fraction of the probed rate x remaining time to plan")
    p.add_argument("--finish-reserve-s", type=float, default=25.0,
                   help="seconds kept after training for the Trainer's finish (last.pt, plots) and the export")
    p.add_argument("--export-every-s", type=float, default=60.0)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--object-layout", default=None, help="JSON or a JSON file: ObsLayout of the object vector")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--no-cudnn-benchmark", action="store_true")
    return p.parse_args(argv)


def use_object_layout(text: str) -> ObsLayout:
    """Make files recorded without their object layout use this one instead of building the simulator."""
    data = json.loads(Path(text).read_text() if not text.lstrip().startswith("{") else text)
    layout = ObsLayout.from_dict(data)
    reader_module.derive_object_layout = lambda spec: layout
    return layout


def export_file(src: Path, out: Path, name: str) -> list[str]:
    """Copy src to out/name, split into out/name.partN when larger than PART_BYTES; -> the names written."""
    size = src.stat().st_size
    names = [name] if size <= PART_BYTES else [f"{name}.part{i}" for i in range((size + PART_BYTES - 1) // PART_BYTES)]
    with open(src, "rb") as f:
        for part in names:
            tmp = out / f".{part}.tmp"
            with open(tmp, "wb") as g:
                g.write(f.read(PART_BYTES if len(names) > 1 else size))
            os.replace(tmp, out / part)
    stale = [p for p in out.glob(f"{name}.part*") if p.name not in names]
    stale += [out / name] if len(names) > 1 and (out / name).exists() else []
    for p in stale:
        p.unlink()
    return names


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json(path: Path, data: dict):
    tmp = path.with_name(f".{path.name}.tmp")
    dump_json(tmp, data)
    os.replace(tmp, path)


def train_config(args, out: Path, steps: int, max_minutes: float | None) -> TrainConfig:
    return TrainConfig(data=args.data, out=str(out), head=args.head, head_options=json.loads(args.head_options),
                       steps=steps, max_minutes=max_minutes, batch_size=args.batch_size, lr=args.lr,
                       warmup_steps=args.warmup_steps, ema_decay=args.ema_decay, log_every=args.log_every,
                       eval_every=NEVER, eval_episodes=0, checkpoint_every=NEVER, seed=args.seed,
                       device=args.device, threads=args.threads, quaternions=args.quaternions)


def probe(args, work: Path) -> dict:
    """Real training steps for --probe-s seconds on a throw-away Trainer -> steps/s after warm-up."""
    t_build = time.time()
    trainer = Trainer(train_config(args, work / "probe", NEVER, None))
    build_s = time.time() - t_build
    times: list[float] = []

    def tick(step, loss):
        times.append(time.time())
        if times[-1] - times[0] >= args.probe_s:
            raise _ProbeDone

    try:
        trainer.run(progress=tick)
    except _ProbeDone:
        pass
    # the first third is warm-up (CUDA initialisation, cuDNN autotuning) and is not timed
    first = next(i for i, t in enumerate(times) if t - times[0] >= args.probe_s / 3)
    if len(times) - 1 - first < 3:  # steps slower than the probe can time: use all of them
        first = 0
    rate = (len(times) - 1 - first) / (times[-1] - times[first])
    del trainer
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return {"steps_per_s": round(rate, 3), "steps": len(times), "seconds": round(times[-1] - times[0], 2),
            "build_s": round(build_s, 2)}


def self_check(path: Path, device: str, data: str, obs_keys) -> dict:
    """Load the exported checkpoint as `takeover eval` does and predict one chunk from a real observation."""
    policy, spec, info = load_checkpoint(path, device=device)
    with DemoReader(data) as reader:
        ep = reader.episode(reader.demos[0], check=False)
    obs = {k: ep.obs[k][0] for k in obs_keys}
    policy.reset()
    action = policy.act(obs)
    chunk = policy.predict_chunk(torch.stack([policy.flatten_obs(obs)] * policy.config.obs_horizon))
    return {"ok": bool(action.shape == (policy.action_dim,)), "task": spec.task, "step": info["step"],
            "chunk_shape": list(chunk.shape), "first_action": [round(float(a), 4) for a in action]}


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="device_train_"))
    work.mkdir(parents=True, exist_ok=True)
    end_by = T0 + args.budget_s
    train_until = end_by - args.finish_reserve_s
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not args.no_cudnn_benchmark:
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv algorithms once
    on_gpu = args.device.startswith("cuda") and torch.cuda.is_available()
    summary = {"status": "starting", "argv": sys.argv[1:], "machine": machine(), "torch": torch.__version__,
               "cuda": torch.version.cuda, "device": args.device,
               "device_name": torch.cuda.get_device_name(0) if on_gpu else "cpu",
               "budget_s": args.budget_s, "work": str(work), "import_s": round(time.time() - T0, 2)}
    write_json(out / "summary.json", summary)
    run_dir = work / "run"
    try:
        if args.object_layout:
            summary["object_layout"] = use_object_layout(args.object_layout).to_dict()
        elif args.quaternions == "matrix" and importlib.util.find_spec("robosuite") is None:
            raise SystemExit("no robosuite here to read the object layout from: pass --object-layout (see docstring)")
        if args.steps is None:
            summary["probe"] = probe(args, work)
            log.info("probe: %s", summary["probe"])
            rate, build_s = summary["probe"]["steps_per_s"], summary["probe"]["build_s"]
            steps = max(1, int(rate * (train_until - time.time() - build_s) * args.safety))
        else:
            steps = args.steps
        trainer = Trainer(train_config(args, run_dir, steps, None))
        # the Trainer's deadline counts from run(): set it now, from what the budget has left
        trainer.cfg.max_minutes = round(max(0.05, train_until - time.time()) / 60, 3)
        config = json.loads((run_dir / "config.json").read_text())
        config["train"] = trainer.cfg.to_dict()
        write_json(run_dir / "config.json", config)
        shutil.copyfile(run_dir / "config.json", out / "config.json")
        summary.update(status="running", steps_planned=steps, max_minutes=trainer.cfg.max_minutes,
                       quat_starts=list(trainer.shapes.quat_starts),
                       params=sum(p.numel() for p in trainer.policy.parameters()))
        losses: deque = deque(maxlen=100)
        state = {"t_run": time.time(), "t_export": time.time()}

        def export(name: str):
            path = run_dir / "checkpoints" / name
            parts = export_file(path, out, POLICY_NAME)
            if (run_dir / "metrics.jsonl").exists():
                shutil.copyfile(run_dir / "metrics.jsonl", out / "metrics.jsonl")
            elapsed = time.time() - state["t_run"]
            summary.update(steps_done=trainer.step, train_s=round(elapsed, 1), wall_s=round(time.time() - T0, 1),
                           samples_per_s=round(trainer.step * args.batch_size / max(elapsed, 1e-9), 1),
                           final_loss=round(sum(losses) / len(losses), 6) if losses else None,
                           last_loss=losses[-1] if losses else None, policy_step=trainer.step,
                           policy_bytes=path.stat().st_size, policy_sha256=sha256(path), policy_files=parts)
            write_json(out / "summary.json", summary)

        def tick(step, loss):
            losses.append(loss)
            if time.time() - state["t_export"] >= args.export_every_s:
                trainer.save_policy("latest.pt")
                export("latest.pt")
                state["t_export"] = time.time()
                log.info("step %d/%d, loss(100) %.5f, %.0f samples/s, %.0f s left", step, steps, summary["final_loss"],
                         summary["samples_per_s"], end_by - time.time())

        result = trainer.run(progress=tick)
        summary["valid_loss"] = result.get("valid_loss")
        summary["status"] = "done"
        export("best.pt")  # without rollouts best.pt is the EMA policy at the last step
        try:
            summary["self_check"] = self_check(run_dir / "checkpoints" / "best.pt", args.device, args.data,
                                               trainer.shapes.obs_keys)
        except Exception as exc:  # noqa: BLE001  the weights are out already; report, do not fail
            summary["self_check"] = {"ok": False, "error": repr(exc)[:300]}
        summary["wall_s"] = round(time.time() - T0, 1)
        write_json(out / "summary.json", summary)
        log.info("done: %s", {k: summary.get(k) for k in ("steps_done", "samples_per_s", "final_loss", "wall_s")})
        return 0
    except BaseException as exc:
        summary.update(status="failed", error=traceback.format_exc()[-2000:], wall_s=round(time.time() - T0, 1))
        write_json(out / "summary.json", summary)
        if (run_dir / "metrics.jsonl").exists():
            shutil.copyfile(run_dir / "metrics.jsonl", out / "metrics.jsonl")
        if isinstance(exc, Exception):
            traceback.print_exc()
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
