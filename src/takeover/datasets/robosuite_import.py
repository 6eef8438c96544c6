"""robosuite's raw demonstrations -> our format.

robosuite's `collect_human_demonstrations.py` writes `data` (attrs date, time, repository_version, env,
env_info = JSON of env_name/robots/controller_configs) with `data/demo_<i>/states (T,S)`,
`actions (T,A)` and attr `model_file` (the MuJoCo XML). It stores no observations: we regenerate them
by putting each recorded state into the simulator (`Env.set_state`), and we check that the replay is
faithful:

- round trip: `get_state()` after `set_state(s)` must equal `s` (max abs error <= ROUNDTRIP_TOL);
- action consistency: from state t, stepping the recorded action t under today's controller should land
  on state t+1. Data from other robosuite versions (or other controller gains) does not: the states
  still replay exactly, but the actions label other motions. The import measures it per demo in units
  that mean something (action_fit.action_consistency: arm joint error relative to the step's own
  change, positions and velocities apart) and reports it; it refuses only with `strict=True` (max abs
  error over qpos/qvel > STEP_TOL). `takeover data relabel` (or `relabel=True`) fits actions that today's
  controller turns into the recorded motion. `check_steps=False` skips the measurement.

Older layouts: robosuite 1.0 files name joints differently (`gripper0_finger_joint1`,
`cube_jnt0`, ...). When the recorded XML uses such names they are mapped to today's
(OLD_JOINT_NAMES) and the states replay on today's model if the joint sequence then matches it;
otherwise the demo is refused naming the first joint that differs.

The recorded XML is used when it loads (asset paths from another robosuite install are rewritten by
robosuite's own `edit_model_xml`). When it does not (a file name, or meshes that moved), the states are
replayed on today's model of the same task, provided the state size matches; otherwise the demo is
refused with the reason.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from .episode import Episode
from .errors import DatasetError
from .model_loading import load_model
from .storage import clean_temp_files, open_h5, temp_name

ROUNDTRIP_TOL = 1e-9
STEP_TOL = 1e-3  # measured: Lift, OSC_POSE, random actions: max deviation 2e-7 (each step starts from a recorded state, so no drift accumulates)
# --strict: refuse when the recorded actions move the arm this far (relative to each step's own motion)
# from the recorded motion. Today's own demos replay to ~1e-8 (with the controller state action_fit
# restores); a demo that did not start at a reset (other OSC nullspace posture) measured ~0.3%.
STRICT_REL = 0.01


def count_raw_demos(raw) -> int:
    with open_h5(raw) as f:
        return len([k for k in f.get("data", {}).keys()]) if "data" in f else 0


def _task_for(name: str) -> str | None:
    from takeover.sim.tasks import TASKS

    if name in TASKS:
        return name
    for task, info in TASKS.items():
        if info.robosuite_env == name and not info.env_kwargs:
            return task
    return None


def spec_from_env_info(raw, env_name: str, env_info: dict, cameras=()):
    """Our EnvSpec for robosuite's env_info (the collect script uses control_freq 20 and reward shaping)."""
    from takeover.sim.spec import ARM_CONTROLLERS, EnvSpec
    from takeover.sim.errors import SimError

    name = env_info.get("env_name", env_name)
    task = _task_for(str(name))
    if task is None:
        from takeover.sim.tasks import TASKS
        raise DatasetError(f"{raw}: environment {name!r} is not a supported task ({', '.join(TASKS)})")
    robots = env_info.get("robots", ["Panda"])
    robots = (robots,) if isinstance(robots, str) else tuple(robots)
    cc = env_info.get("controller_configs") or {}
    arm = cc.get("body_parts", {}).get("right") or next(iter(cc.get("body_parts", {}).values()), None) if "body_parts" in cc else cc
    controller = (arm or {}).get("type", "OSC_POSE")
    if controller not in ARM_CONTROLLERS:
        raise DatasetError(f"{raw}: arm controller {controller!r} is not supported (expected one of {', '.join(ARM_CONTROLLERS)})")
    try:
        base = EnvSpec(task=task, robots=robots, controller=controller, control_freq=20, reward_shaping=True,
                       camera_names=tuple(cameras))
        default = base.controller_config()["body_parts"].get("right", {})
        overrides = {k: v for k, v in (arm or {}).items() if k not in ("gripper", "type") and default.get(k) != v}
        if overrides:
            from dataclasses import replace
            base = replace(base, controller_overrides=overrides)
    except SimError as exc:
        raise DatasetError(f"{raw}: env_info does not make a valid environment ({exc})") from None
    return base


def import_robosuite(raw, out, *, check_steps: bool = True, strict: bool = False, relabel: bool = False,
                     workers: int = 1, cameras=(), progress=None) -> dict:
    """Convert robosuite's raw demo file `raw` into our format at `out` (a new file). Returns a report:
    demos, steps, model ("recorded"/"today"/mixed), roundtrip_max_error, step_max_error, tolerances,
    consistency (per demo: action_fit.action_consistency) and, with `relabel`, the relabelling report."""
    if relabel:
        from .relabel import relabel as relabel_file

        out = Path(out)
        if out.exists():
            raise DatasetError(f"{out}: already exists; choose a new output file")
        staged = temp_name(out, "unrelabelled")
        try:
            report = import_robosuite(raw, staged, check_steps=check_steps, strict=strict, cameras=cameras,
                                      progress=progress)
            report["relabel"] = relabel_file(staged, out, workers=workers)
            report["output"] = str(out)
        finally:
            staged.unlink(missing_ok=True)
        return report
    from takeover.sim import make_env

    from .writer import DemoWriter

    raw, out = Path(raw), Path(out)
    if out.exists():
        raise DatasetError(f"{out}: already exists; choose a new output file")
    with open_h5(raw) as f:
        if "data" not in f:
            raise DatasetError(f"{raw}: no 'data' group; expected robosuite's demo.hdf5")
        data = f["data"]
        if "takeover_spec" in data.attrs:
            raise DatasetError(f"{raw}: is already a takeover demonstration file (nothing to import); use it "
                               f"directly, or `takeover data relabel` to relabel its actions")
        try:
            env_info = json.loads(data.attrs.get("env_info", "{}"))
        except (json.JSONDecodeError, TypeError):
            raise DatasetError(f"{raw}: data attribute env_info is not JSON") from None
        env_name = data.attrs.get("env", env_info.get("env_name", ""))
        env_name = env_name.decode() if isinstance(env_name, bytes) else str(env_name)
        spec = spec_from_env_info(raw, env_name, env_info, cameras)
        names = sorted((k for k in data.keys() if isinstance(data[k], h5py.Group)),
                       key=lambda n: (int(n.split("_")[-1]) if n.split("_")[-1].isdigit() else 1 << 30, n))
        if not names:
            raise DatasetError(f"{raw}: has no demos under data/")
        env = make_env(spec, seed=0)
        tmp = temp_name(out, "import")
        models, roundtrip_err, step_err, steps, consistency = set(), 0.0, 0.0, 0, []
        try:
            with DemoWriter(tmp, spec, fold_every=25) as writer:
                for name in names:
                    where = f"{raw}, {name}"
                    group = data[name]
                    for key in ("states", "actions"):
                        if key not in group:
                            raise DatasetError(f"{where}: no {key!r} dataset (robosuite's demos hold states and actions)")
                    states, actions = group["states"][()], group["actions"][()].astype(np.float32)
                    if states.ndim != 2 or actions.ndim != 2 or len(states) != len(actions):
                        raise DatasetError(f"{where}: states {states.shape} and actions {actions.shape} do not pair up "
                                           f"(expected (T, S) and (T, A))")
                    if actions.shape[1] != env.action_dim:
                        raise DatasetError(f"{where}, key actions: {actions.shape[1]} values per step, the "
                                           f"{spec.task} {spec.controller} environment takes {env.action_dim}")
                    if not np.isfinite(actions).all() or not np.isfinite(states).all():
                        raise DatasetError(f"{where}: states or actions hold NaN or inf")
                    episode, model, rt, fit = _replay(env, states, actions, str(group.attrs.get("model_file", "")),
                                                      check_steps, strict, where)
                    se = fit["max_abs_error"] if fit else 0.0
                    if fit:
                        consistency.append({"demo": name, **fit})
                    episode.attrs.update(source="human", seed=-1, imported_from=f"{raw.name}:{name}", model=model)
                    writer.save(episode)
                    models.add(model)
                    roundtrip_err, step_err, steps = max(roundtrip_err, rt), max(step_err, se), steps + len(states)
                    if progress is not None:
                        progress(name)
            os.replace(tmp, out)
        finally:
            env.close()
            clean_temp_files(out)
    return {"output": str(out), "demos": len(names), "steps": steps, "model": "/".join(sorted(models)),
            "roundtrip_max_error": roundtrip_err, "roundtrip_tolerance": ROUNDTRIP_TOL,
            "step_max_error": step_err if check_steps else None, "step_tolerance": STEP_TOL,
            "consistency": consistency}


def _replay(env, states, actions, xml, check_steps, strict, where):
    from .action_fit import action_consistency

    T = len(states)
    obs_seq, reward_at = [], []
    rt_err = 0.0
    model = "recorded"
    for t in range(T):
        if t == 0:
            obs, model = load_model(env, xml, states[0], where)
        else:
            obs = env.set_state(states[t])
        rt_err = max(rt_err, float(np.abs(env.get_state() - states[t]).max()))
        obs_seq.append(obs)
        reward_at.append(float(env.raw.reward(None)))
    if rt_err > ROUNDTRIP_TOL:
        raise DatasetError(f"{where}: setting a recorded state and reading it back differs by {rt_err:.2e} "
                           f"(tolerance {ROUNDTRIP_TOL:.0e}); the model does not match the states")
    fit = action_consistency(env, states, actions) if check_steps else None
    if strict and fit and fit["qpos_rel"] > STRICT_REL:
        raise DatasetError(f"{where}: the recorded actions do not reproduce the recorded states under today's controller "
                           f"(arm joint error {fit['qpos_rel']:.0%} of each step's own motion, velocities {fit['qvel_rel']:.0%}; "
                           f"--strict allows {STRICT_REL:.0%}); other controller settings or robosuite version? "
                           f"(without --strict it imports; --relabel fits actions to today's controller)")
    env.set_state(states[-1])
    last_obs, last_reward, success, _, _ = env.step(actions[-1])  # robomimic's way to get the last next_obs
    keys = list(obs_seq[0])
    next_seq = obs_seq[1:] + [last_obs]
    episode = Episode(
        actions=actions, states=states.astype(np.float64),
        obs={k: np.stack([o[k] for o in obs_seq]) for k in keys},
        next_obs={k: np.stack([o[k] for o in next_seq]) for k in keys},
        rewards=np.asarray(reward_at[1:] + [last_reward], np.float32),
        dones=np.eye(1, T, T - 1, dtype=np.uint8)[0],
        attrs={"success": bool(success)}, model_file=env.model_xml() if model == "today" else xml)
    return episode, model, rt_err, fit
