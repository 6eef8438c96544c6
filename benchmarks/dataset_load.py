"""Dataset I/O figures: DemoWriter save+fold cost per episode (fold_every 1 and 25), DemoDataset load
time for a 100k-step low-dim file, get_batch throughput. Writes benchmarks/results/dataset_load.json.

    OMP_NUM_THREADS=1 python benchmarks/dataset_load.py [--steps 100000]
"""
import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from takeover.datasets import DemoDataset, DemoWriter, Episode
from takeover.sim import EnvSpec

# Lift's low-dim layout (robomimic names) and a 200-step episode, like an expert demo
OBS = {"robot0_eef_pos": 3, "robot0_eef_quat": 4, "robot0_gripper_qpos": 2, "robot0_joint_pos_cos": 7,
       "robot0_joint_pos_sin": 7, "robot0_joint_vel": 7, "robot0_gripper_qvel": 2, "object": 10}


def synthetic_episode(T, rng):
    obs = {k: rng.normal(size=(T, d)).astype(np.float32) for k, d in OBS.items()}
    return Episode(actions=rng.uniform(-1, 1, (T, 7)).astype(np.float32), states=rng.normal(size=(T, 32)),
                   obs=obs, next_obs=obs, rewards=np.zeros(T, np.float32), dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
                   attrs={"source": "expert", "success": True, "seed": 0}, model_file="<mujoco/>" * 2000)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--episode-len", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    spec = EnvSpec(task="Lift")
    n_eps = args.steps // args.episode_len
    ep = synthetic_episode(args.episode_len, rng)
    out = {"machine": platform.node(), "cpu": platform.processor() or platform.machine(),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "steps": n_eps * args.episode_len, "episodes": n_eps, "episode_len": args.episode_len}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.hdf5"
        t0 = time.perf_counter()
        with DemoWriter(path, spec, fold_every=25) as w:
            for i in range(n_eps):
                ep.attrs["seed"] = i
                w.save(ep)
        out["write_fold_every_25_s_per_episode"] = (time.perf_counter() - t0) / n_eps
        out["file_mb"] = path.stat().st_size / 1e6
        # fold_every=1 appended to the full 100k-step file: each save copies the whole file
        t0 = time.perf_counter()
        with DemoWriter(path, spec, append=True, fold_every=1) as w:
            for i in range(5):
                w.save(ep)
        out["save_fold_every_1_on_full_file_s_per_episode"] = (time.perf_counter() - t0) / 5
        small = Path(d) / "small.hdf5"
        t0 = time.perf_counter()
        with DemoWriter(small, spec, fold_every=1) as w:
            for i in range(20):
                w.save(ep)
        out["save_fold_every_1_small_file_s_per_episode"] = (time.perf_counter() - t0) / 20

        t0 = time.perf_counter()
        ds = DemoDataset(path, obs_horizon=2, action_horizon=16)
        out["load_s"] = time.perf_counter() - t0
        out["windows"] = len(ds)
        for B in (256, 1024):
            idx = torch.randint(len(ds), (200, B))
            ds.get_batch(idx[0])
            t0 = time.perf_counter()
            for row in idx:
                ds.get_batch(row)
            out[f"get_batch_{B}_samples_per_s"] = 200 * B / (time.perf_counter() - t0)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    from common import dump_json  # benchmarks/ is sys.path[0] when run as a script

    dump_json(results / "dataset_load.json", out)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
