"""`takeover data relabel`: actions that today's controller turns into the recorded motion.

For every step, the OSC action that from the recorded state lands closest to the next recorded state
(datasets/action_fit.py). The states (and so the observations) stay as recorded; `actions` is replaced
and the recorded actions are kept as `original_actions` (a second relabelling keeps the first
originals). The report says, per demo and for the original and the relabelled actions:
- one-step consistency (relative to the step's own change; see action_fit.action_consistency);
- open loop: the actions stepped in order from the first state, arm joint error to the recording
  (mean and final, rad) and success at the end, next to the recording's own success.

Work is split into chunks of CHUNK steps over worker processes (each builds its own simulator).
"""
from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np

from .errors import DatasetError
from .storage import clean_temp_files, temp_name

CHUNK = 100
_ENVS: dict = {}


def _env_for(spec_json: str, model_file: str, state, where: str):
    from takeover.sim import EnvSpec, make_env

    from .model_loading import load_model

    env = _ENVS.get(spec_json)
    if env is None:
        env = _ENVS[spec_json] = make_env(EnvSpec.from_json(spec_json), seed=0)
    load_model(env, model_file, state, where)
    return env


def _relabel_chunk(spec_json, model_file, states, actions, t0, t1, where):
    from .action_fit import SIMULATED, relabel_steps

    env = _env_for(spec_json, model_file, states[0], where)
    start, simulated = time.process_time(), SIMULATED[0]
    new, res = relabel_steps(env, states, actions, t0, t1)
    return new, res, time.process_time() - start, SIMULATED[0] - simulated


def _measure(spec_json, model_file, states, original, relabelled, where):
    from .action_fit import action_consistency, align_controller, open_loop

    env = _env_for(spec_json, model_file, states[0], where)
    # one controller convention for both action sets, chosen as relabelling chose it
    c = align_controller(env, states, original, trust_actions=False)
    return {"before": action_consistency(env, states, original, c), "after": action_consistency(env, states, relabelled, c),
            "open_loop_before": open_loop(env, states, original, c), "open_loop_after": open_loop(env, states, relabelled, c)}


def _pool(workers: int):
    import multiprocessing as mp

    from takeover.sim.lifeline import bind_to_parent, parent_here

    if workers <= 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=bind_to_parent,
                               initargs=(parent_here(),))


def _run(pool, fn, *args):
    return pool.submit(fn, *args) if pool is not None else _Done(fn(*args))


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def relabel(src, out, *, workers: int = 1, progress=None) -> dict:
    """Relabel every demo of `src` into the new file `out`. Returns {"demos": [per-demo report], ...}."""
    from .reader import DemoReader

    src, out = Path(src), Path(out)
    if out.exists():
        raise DatasetError(f"{out}: already exists; choose a new output file")
    with DemoReader(src) as reader:
        if reader.pending:
            raise DatasetError(f"{src}: {reader.pending} episode(s) are still in the journal; "
                               f"run `takeover data recover {src}` first")
        if reader.spec is None:
            raise DatasetError(f"{src}: has no environment metadata (takeover_spec) to relabel with")
        if reader.spec.controller != "OSC_POSE" or reader.action_dim != 7:
            raise DatasetError(f"{src}: relabelling needs OSC_POSE actions with 7 values; the file has "
                               f"{reader.spec.controller} with {reader.action_dim}")
        spec_json = reader.spec.to_json()
        demos = {}
        for name in reader.demos:
            ep = reader.episode(name, check=False)
            if "executed_actions" in ep.extras:
                raise DatasetError(f"{src}, {name}: holds executed_actions (noise was injected, the label is the clean "
                                   f"command); relabelling fits what was executed and would make the noise the label")
            original = ep.extras.get("original_actions", ep.actions)
            demos[name] = (ep.states, np.asarray(original, np.float64), ep.model_file, bool(ep.attrs.get("success", False)))
    wall = time.time()
    pool = _pool(workers)
    try:
        jobs = {name: [(t0, _run(pool, _relabel_chunk, spec_json, mf, st, act, t0, min(t0 + CHUNK, len(st)), f"{src}, {name}"))
                       for t0 in range(0, len(st), CHUNK)]
                for name, (st, act, mf, _) in demos.items()}
        relabelled, report, cpu, simulated = {}, [], 0.0, 0
        for name, chunks in jobs.items():
            st, act, mf, success = demos[name]
            parts = [job.result() for _, job in chunks]
            new = np.concatenate([p[0] for p in parts])
            residual = np.concatenate([p[1] for p in parts])
            cpu += sum(p[2] for p in parts)
            simulated += sum(p[3] for p in parts)
            relabelled[name] = new.astype(np.float32)
            relabelled_name = _run(pool, _measure, spec_json, mf, st, act, new, f"{src}, {name}")
            report.append({"demo": name, "steps": len(st), "residual_max": float(residual.max(initial=0.0)),
                           "recorded_success": success, "_job": relabelled_name})
            if progress is not None:
                progress(name)
        for row in report:
            row.update(row.pop("_job").result())
    finally:
        if pool is not None:
            pool.shutdown()
    steps = sum(r["steps"] for r in report)
    tmp = temp_name(out, "relabel")
    try:
        shutil.copyfile(src, tmp)
        with h5py.File(tmp, "r+") as f:
            for name, new in relabelled.items():
                group = f["data"][name]
                if "original_actions" not in group:
                    group.create_dataset("original_actions", data=group["actions"][()])
                group["actions"][...] = new
                group.attrs["relabelled"] = True
        os.replace(tmp, out)
    finally:
        clean_temp_files(out)
    return {"output": str(out), "demos": report, "steps": steps, "workers": workers,
            "seconds_wall": round(time.time() - wall, 1), "cpu_seconds_per_step": cpu / max(1, steps),
            "simulated_steps_per_step": simulated / max(1, steps)}
