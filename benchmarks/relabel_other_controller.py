"""Relabelling data recorded under another controller: scripted Lift demos recorded with twice the OSC
position gain (kp 300), written in robosuite's raw layout with today's default controller claimed,
then imported with and without relabelling. Reports one-step consistency, open-loop drift and success
of the original vs relabelled actions, and the relabelling cost per step.

    python benchmarks/relabel_other_controller.py --demos 2 --workers 2
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from takeover.datasets import import_robosuite  # noqa: E402
from takeover.sim import EnvSpec, make_env  # noqa: E402
from takeover.sim.experts import make_expert  # noqa: E402


def record(spec, seed):
    env = make_env(spec, seed=0)
    expert = make_expert(spec.task, seed=seed)
    obs = env.reset(seed=seed)
    expert.reset(env)
    states, actions, success, held = [], [], False, 0
    for _ in range(spec.max_steps):
        a = np.asarray(expert.act(obs, env), dtype=np.float64)
        states.append(env.get_state())
        actions.append(a)
        obs, _, success, _, _ = env.step(a)
        held = held + 1 if success else 0
        if held >= 15:  # keep lifting a little: success at the end is then not a matter of millimetres
            break
    xml = env.model_xml()
    env.close()
    return np.array(states), np.array(actions), xml, success


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--demos", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--kp", type=float, default=300.0)
    args = p.parse_args()
    spec = EnvSpec(task="Lift", controller_overrides={"kp": args.kp})
    tmp = Path(tempfile.mkdtemp())
    raw = tmp / "raw.hdf5"
    demos = [record(spec, seed) for seed in range(args.demos)]
    with h5py.File(raw, "w") as f:
        data = f.create_group("data")
        for i, (s, a, x, _) in enumerate(demos, start=1):
            g = data.create_group(f"demo_{i}")
            g.attrs["model_file"] = x
            g["states"], g["actions"] = s, a
        data.attrs.update(env="Lift", repository_version="other", env_info=json.dumps({"env_name": "Lift", "robots": ["Panda"]}))
    t0 = time.time()
    report = import_robosuite(raw, tmp / "relabelled.hdf5", relabel=True, workers=args.workers)
    result = {"kp_recorded": args.kp, "kp_today": 150, "demos": args.demos, "recorded_success": [d[3] for d in demos],
              "lengths": [len(d[0]) for d in demos], "seconds": round(time.time() - t0, 1),
              "consistency": report["consistency"], "relabel": report["relabel"]}
    print(json.dumps(result, indent=1, default=str))
    write_result("relabel_other_controller", result)


if __name__ == "__main__":
    main()
