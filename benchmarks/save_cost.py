"""What a DemoWriter save costs, before and after saves stopped folding, on a small file and on a 75 MB+
file of camera episodes; file size and read speed with and without image compression. The "before"
strategy is measured in the same run: fold_every=1 (every save copies the main file), camera frames
stored raw. Writes benchmarks/results/save_cost.json.

    MUJOCO_GL=egl OMP_NUM_THREADS=1 python benchmarks/save_cost.py [--camera-size 84] [--steps 150]

Frames are rendered once from a scripted Lift episode (agentview) and cycled through the synthetic
episodes, so compression sees real images; low-dim values are random.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from takeover.datasets import DemoReader, DemoWriter, Episode, schema
from takeover.sim import EnvSpec, make_env
from takeover.sim.experts import make_expert

from common import write_result

LOW_DIM = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "object": 10}
CODECS = {"none": {}, "gzip-1": {"compression": "gzip", "compression_opts": 1},
          "gzip-4": {"compression": "gzip", "compression_opts": 4}, "lzf": {"compression": "lzf"}}


def render_frames(size: int, steps: int) -> np.ndarray:
    spec = EnvSpec(task="Lift", camera_names=("agentview",), camera_height=size, camera_width=size)
    env, expert = make_env(spec, seed=0), make_expert("Lift", seed=0)
    obs = env.reset(seed=0)
    expert.reset(env)
    frames = [obs["agentview_image"]]
    for _ in range(steps):
        obs, *_ = env.step(expert.act(obs, env))
        frames.append(obs["agentview_image"])
    getattr(env, "close", lambda: None)()
    return np.stack(frames)


def make_episode(frames: np.ndarray, T: int, seed: int) -> Episode:
    rng = np.random.default_rng(seed)
    idx = (np.arange(T + 1) + seed * 7) % len(frames)
    obs = {k: rng.normal(size=(T + 1, d)).astype(np.float32) for k, d in LOW_DIM.items()}
    obs["agentview_image"] = frames[idx]
    return Episode(actions=rng.uniform(-1, 1, (T, 7)).astype(np.float32), states=rng.normal(size=(T, 71)),
                   obs={k: v[:-1] for k, v in obs.items()}, next_obs={k: v[1:] for k, v in obs.items()},
                   rewards=np.zeros(T, np.float32), dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                   attrs={"source": "expert", "success": True, "seed": seed}, model_file="<mujoco/>" * 4000)


@contextlib.contextmanager
def raw_images():
    """The file layout before compression: camera frames stored as one contiguous dataset."""
    saved = schema.IMAGE_STORAGE
    schema.IMAGE_STORAGE = {}
    try:
        yield
    finally:
        schema.IMAGE_STORAGE = saved


def fill(path, frames, T, episodes, spec):
    with DemoWriter(path, spec) as w:
        for i in range(episodes):
            w.save(make_episode(frames, T, i))


def time_saves(path, frames, T, spec, saves: int, fold_every) -> dict:
    """Each save is timed alone: the background work it queues (compressing the journal episode) runs to
    the end before the next save, as it does between the episodes of a session, and is timed apart."""
    times, background = [], []
    with DemoWriter(path, spec, append=True, fold_every=fold_every) as w:
        for i in range(saves):
            ep = make_episode(frames, T, 10_000 + i)
            t0 = time.perf_counter()
            w.save(ep)
            t1 = time.perf_counter()
            w._worker.wait()
            times.append(t1 - t0)
            background.append(time.perf_counter() - t1)
        t0 = time.perf_counter()
    close_s = time.perf_counter() - t0
    return {"save_s_median": statistics.median(times), "save_s_all": times,
            "background_s_median": statistics.median(background), "close_s": close_s}


def read_speed(path, T, reps: int = 3) -> dict:
    """Whole-file load (every demo, every key) and random single-frame reads (a training window)."""
    loads = []
    for _ in range(reps):
        t0 = time.perf_counter()
        with DemoReader(path) as r:
            for name in r.demos:
                r.episode(name, check=False)
        loads.append(time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    with h5py.File(path, "r", swmr=True, libver="latest") as f:
        images = [f[f"data/{n}/obs/agentview_image"] for n in f["data"]]
        picks = [(rng.integers(len(images)), rng.integers(T)) for _ in range(2000)]
        t0 = time.perf_counter()
        for d, t in picks:
            images[d][t]
        frame_s = (time.perf_counter() - t0) / len(picks)
    return {"load_all_s_median": statistics.median(loads), "load_s_per_episode": statistics.median(loads) / len(images),
            "random_frame_read_ms": frame_s * 1e3}


def codec_table(frames: np.ndarray, d: Path) -> dict:
    out = {}
    data = np.concatenate([frames] * max(1, 600 // len(frames)))
    for name, kw in CODECS.items():
        p = d / f"codec_{name}.h5"
        t0 = time.perf_counter()
        with h5py.File(p, "w") as f:
            f.create_dataset("x", data=data, chunks=(1,) + data.shape[1:] if kw else None, **kw)
        write_s = time.perf_counter() - t0
        reads = []
        for _ in range(3):
            t0 = time.perf_counter()
            with h5py.File(p, "r") as f:
                f["x"][()]
            reads.append(time.perf_counter() - t0)
        out[name] = {"bytes_per_frame": p.stat().st_size / len(data), "ratio": data.nbytes / p.stat().st_size,
                     "write_ms_per_frame": write_s / len(data) * 1e3,
                     "read_ms_per_frame": min(reads) / len(data) * 1e3}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--camera-size", type=int, default=84)
    ap.add_argument("--steps", type=int, default=150, help="steps per episode")
    ap.add_argument("--large-mb", type=float, default=75.0, help="on-disk size of the large file")
    ap.add_argument("--saves", type=int, default=7, help="timed saves per setting")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    T = args.steps
    frames = render_frames(args.camera_size, 120)
    spec = EnvSpec(task="Lift", camera_names=("agentview",), camera_height=args.camera_size,
                   camera_width=args.camera_size)
    settings = {"before (fold every save, raw images)": (1, True),
                "after (journal, background compression, fold at close)": (None, False)}
    result = {"camera": f"{args.camera_size}x{args.camera_size}", "steps_per_episode": T,
              "episode_raw_mb": make_episode(frames, T, 0).obs["agentview_image"].nbytes * 2 / 1e6,
              "settings": {}}
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        d = Path(tmp)
        result["codecs"] = codec_table(frames, d)
        for label, (fold_every, raw) in settings.items():
            with raw_images() if raw else contextlib.nullcontext():
                per = {}
                probe = d / "probe.hdf5"
                fill(probe, frames, T, 2, spec)
                mb_per_episode = probe.stat().st_size / 2 / 1e6
                probe.unlink()
                for size, episodes in (("small", 1), ("large", int(np.ceil(args.large_mb / mb_per_episode)))):
                    path = d / f"{size}.hdf5"
                    fill(path, frames, T, episodes, spec)
                    file_mb = path.stat().st_size / 1e6
                    timing = time_saves(path, frames, T, spec, args.saves, fold_every)
                    per[size] = {"episodes_before": episodes, "file_mb_before": file_mb, **timing}
                    if size == "large":
                        per["read"] = read_speed(path, T)
                        per["file_mb_per_episode"] = path.stat().st_size / (episodes + args.saves) / 1e6
                    path.unlink()
                result["settings"][label] = per
                print(f"{label}: save median small {per['small']['save_s_median'] * 1e3:.1f} ms, "
                      f"large ({per['large']['file_mb_before']:.0f} MB) {per['large']['save_s_median'] * 1e3:.1f} ms, "
                      f"background {per['large']['background_s_median'] * 1e3:.0f} ms, close {per['large']['close_s']:.2f} s, {per['file_mb_per_episode']:.2f} MB/episode, "
                      f"load {per['read']['load_s_per_episode'] * 1e3:.1f} ms/episode, frame {per['read']['random_frame_read_ms']:.3f} ms",
                      flush=True)
    print("written to", write_result("save_cost", result, args.out))


if __name__ == "__main__":
    main()
