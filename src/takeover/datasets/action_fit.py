"""How well recorded actions explain recorded states under today's controller, and actions that do.

A recorded demo holds states s_0..s_T-1 and actions a_0..a_T-1. Data recorded with another robosuite
version (or other controller gains) has actions that today's controller turns into other motions:
the states still replay exactly, but the actions no longer label them.

- `action_consistency`: from each recorded state, step the recorded action and compare the robot's arm
  joints with the next recorded state. Units that mean something: the error relative to the recorded
  step's own change (positions: sum_t |q_sim - q_t+1| / sum_t |q_t+1 - q_t|; velocities the same with
  qvel), so 0 is a perfect label and 1 is as wrong as standing still.
- `relabel_demo`: per step, the OSC action that from s_t lands closest to s_t+1 (arm joint positions and
  velocities x dt, least squares): the gripper sign from the recorded finger motion (both signs tried),
  then Gauss-Newton on the 6 arm dimensions with a finite-difference Jacobian from the simulator
  itself, reused for up to `iters` chord steps (each costs one simulator step, the Jacobian six).
- `open_loop`: step a demo's actions one after another from its first state (no resets), the way a
  policy that output exactly these actions would move; compare with the recorded trajectory.

Stepping here skips robosuite's observation and reward computation (the substep loop of
`robosuite.environments.base.MujocoEnv.step` only), which makes it ~2x cheaper than `Env.step`
and gives the identical next state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FD_STEP = 0.02  # action units; the OSC map is close to linear over this range
ARM_DIMS = 6


@dataclass(frozen=True)
class Joints:
    """Indices into the flattened state (time, qpos, qvel) of the arm's joints and the fingers."""

    arm_q: np.ndarray
    arm_v: np.ndarray
    finger_q: np.ndarray
    dt: float

    @classmethod
    def of(cls, env) -> "Joints":
        robot = env.raw.robots[0]
        nq = env.raw.sim.model.nq
        fingers = [i for part in robot._ref_gripper_joint_pos_indexes.values() for i in part]
        return cls(arm_q=1 + np.asarray(robot._ref_joint_pos_indexes), arm_v=1 + nq + np.asarray(robot._ref_joint_vel_indexes),
                   finger_q=1 + np.asarray(fingers, dtype=int), dt=float(env.raw.control_timestep))


def _gripper(env):
    grippers = env.raw.robots[0].gripper
    g = next(iter(grippers.values())) if isinstance(grippers, dict) else grippers
    return g if hasattr(g, "current_action") else None


def gripper_after(env, before, action) -> np.ndarray | None:
    """The gripper's ramped command after `action`, from `before`.

    robosuite's Panda gripper moves a command kept in Python (not in the MuJoCo state) toward the
    action's sign by 0.2 per control step (in 1.5: once per step; older versions ramped every substep,
    so a press there closed the fingers 10x faster). Replaying from a recorded state therefore needs
    this command too: it follows from the demo's gripper actions since its reset (command 0)."""
    g = _gripper(env)
    if g is None or before is None:
        return None
    g.current_action = np.array(before, dtype=np.float64)
    return np.array(g.format_action(np.asarray(action, dtype=np.float64)[-g.dof:]), dtype=np.float64)


def gripper_commands(env, actions) -> list:
    """The gripper command before each step of a demo that starts at a reset."""
    g = _gripper(env)
    if g is None:
        return [None] * len(actions)
    out, c = [], np.zeros(g.dof)
    for a in actions:
        out.append(c)
        c = gripper_after(env, c, a)
    return out


def step_from(env, state, action, gripper=None) -> np.ndarray:
    """The flattened state one control step after `state` under `action` (robosuite's substep loop,
    no observations), the gripper's ramped command set to `gripper` first (see gripper_after)."""
    raw = env.raw
    sim = raw.sim
    if state is not None:
        sim.set_state_from_flattened(state)
        sim.forward()
        # controllers cache the robot's pose and refresh it only when flagged: after a jump in state
        # the first set_goal would otherwise read the pose of wherever the simulator was before
        for controller in raw.robots[0].composite_controller.part_controllers.values():
            controller.new_update = True
    g = _gripper(env)
    if g is not None and gripper is not None:
        g.current_action = np.array(gripper, dtype=np.float64)
    return _substeps(env, action)


SIMULATED = [0]  # control steps simulated in this process (relabelling reports its cost in them)


def _substeps(env, action) -> np.ndarray:
    SIMULATED[0] += 1
    raw, sim = env.raw, env.raw.sim
    action = np.asarray(action, dtype=np.float64)
    policy_step = True
    for _ in range(int(round(raw.control_timestep / raw.model_timestep))):
        if raw.lite_physics:
            sim.step1()
        else:
            sim.forward()
        raw._pre_action(action, policy_step)
        if raw.lite_physics:
            sim.step2()
        else:
            sim.step()
        policy_step = False
    return np.array(sim.get_state().flatten(), dtype=np.float64)


def _set_posture(env, posture_of):
    robot = env.raw.robots[0]
    for name, controller in robot.composite_controller.part_controllers.items():
        if name in robot.arms and hasattr(controller, "initial_joint"):
            controller.initial_joint = np.array(posture_of(np.asarray(controller.qpos_index)), dtype=np.float64)


def align_controller(env, states, actions, probe: int = 8, trust_actions: bool = True, convention: str | None = None):
    """Give the arm controllers the nullspace posture they had while the demo was recorded.

    OSC pulls the arm's redundant joint toward `initial_joint`, Python-side state set when the
    controller is built at a reset. Two conventions occur: a demo recorded from `env.reset()` (ours)
    starts in that posture, init noise included (its first state); robosuite's collection wrapper
    reloads the model at the first action (a deterministic reset), so its controllers hold the robot's
    nominal posture. Kept: the one under which the first `probe` steps replay closer with the recorded
    actions, or (`trust_actions=False`, for relabelling) are fitted closer by fitted actions. Without
    it one-step replays were off by 0.3-0.7% of each step's motion. Returns "reset" or "nominal"."""
    robot = env.raw.robots[0]
    nominal = np.asarray(robot.init_qpos, dtype=np.float64)
    candidates = [lambda idx: states[0][1 + idx], lambda idx: nominal[: len(idx)]]
    if convention is not None:
        _set_posture(env, candidates[("reset", "nominal").index(convention)])
        return convention
    if len(states) < 2:
        _set_posture(env, candidates[0])
        return "reset"
    j = Joints.of(env)
    n = min(probe if trust_actions else max(2, probe // 2), len(states) - 1)
    commands = gripper_commands(env, actions[:n])
    errors = []
    for posture in candidates:
        _set_posture(env, posture)
        if trust_actions:
            errors.append(sum(float(np.linalg.norm(step_from(env, states[t], actions[t], commands[t])[j.arm_q]
                                                   - states[t + 1][j.arm_q])) for t in range(n)))
        else:
            errors.append(sum(fit_action(env, j, states[t], states[t + 1], actions[t], commands[t])[1] for t in range(n)))
    best = int(np.argmin(errors))
    _set_posture(env, candidates[best])
    return ("reset", "nominal")[best]


def _stale_first_step(env, state, action, gripper):
    """Step 0 as robosuite's collection wrapper ran it: its model reload left the controllers holding
    the nominal reset pose, not yet refreshed when the first action set the goal."""
    raw, sim = env.raw, env.raw.sim
    robot = raw.robots[0]
    nominal = np.array(state, dtype=np.float64)
    j = Joints.of(env)
    nominal[j.arm_q] = np.asarray(robot.init_qpos, dtype=np.float64)[: len(j.arm_q)]
    sim.set_state_from_flattened(nominal)
    sim.forward()
    for controller in robot.composite_controller.part_controllers.values():
        controller.update(force=True)
    sim.set_state_from_flattened(state)
    sim.forward()
    g = _gripper(env)
    if g is not None and gripper is not None:
        g.current_action = np.array(gripper, dtype=np.float64)
    return _substeps(env, action)


def _residual(j: Joints, reached, target) -> np.ndarray:
    return np.concatenate([reached[j.arm_q] - target[j.arm_q], j.dt * (reached[j.arm_v] - target[j.arm_v])])


def action_consistency(env, states, actions, convention: str | None = None) -> dict:
    """Relative one-step errors of `actions` against `states` (see module doc); env holds the demo's model."""
    j = Joints.of(env)
    convention = align_controller(env, states, actions, convention=convention)
    err_q = err_v = disp_q = disp_v = 0.0
    max_abs = 0.0
    commands = gripper_commands(env, actions)
    for t in range(len(states) - 1):
        if t == 0 and convention == "nominal":
            nxt = _stale_first_step(env, states[0], actions[0], commands[0])
        else:
            nxt = step_from(env, states[t], actions[t], commands[t])
        err_q += float(np.linalg.norm(nxt[j.arm_q] - states[t + 1][j.arm_q]))
        err_v += float(np.linalg.norm(nxt[j.arm_v] - states[t + 1][j.arm_v]))
        disp_q += float(np.linalg.norm(states[t + 1][j.arm_q] - states[t][j.arm_q]))
        disp_v += float(np.linalg.norm(states[t + 1][j.arm_v] - states[t][j.arm_v]))
        max_abs = max(max_abs, float(np.abs(nxt[1:] - states[t + 1][1:]).max()))
    return {"steps": len(states), "qpos_rel": err_q / disp_q if disp_q > 0 else 0.0,
            "qvel_rel": err_v / disp_v if disp_v > 0 else 0.0, "max_abs_error": max_abs}


def _gripper_sign(env, j: Joints, state, target, action, before) -> float:
    """The gripper command (-1 open, +1 close) whose finger motion from `state` matches `target` best;
    a tie (e.g. fingers blocked on both sides) keeps the recorded command."""
    g = float(action[-1])
    signs = (-1.0, 1.0) if g == 0 else (np.sign(g), -np.sign(g))
    errs = []
    for s in signs:
        a = np.array(action, dtype=np.float64)
        a[-1] = s
        reached = step_from(env, state, a, before)
        errs.append(float(np.linalg.norm(reached[j.finger_q] - target[j.finger_q])))
    if g != 0 and errs[1] >= errs[0] - 1e-7:
        return g
    return float(signs[int(np.argmin(errs))])


def _jacobian(env, j: Joints, state, target, a, r, high, before) -> np.ndarray:
    J = np.empty((len(r), ARM_DIMS))
    for k in range(ARM_DIMS):
        h = FD_STEP if a[k] + FD_STEP <= high[k] else -FD_STEP
        b = a.copy()
        b[k] += h
        J[:, k] = (_residual(j, step_from(env, state, b, before), target) - r) / h
    return J


def fit_action(env, j: Joints, state, target, start, before=None, iters: int = 8, jacobian=None):
    """(action, residual norm, Jacobian): the action from `state` whose next state is closest to `target`.

    Gauss-Newton on the arm dimensions with a backtracking line search. The Jacobian of the previous
    step is the first guess (the dynamics change little between control steps), updated with Broyden's
    rank-one rule while steps make good progress and recomputed by finite differences (6 simulator
    steps) when they do not. The OSC map is close to linear for small changes but saturates (torque
    limits) for large ones, hence the line search. The gripper sign is chosen last, at the fitted arm
    action."""
    low, high = env.action_low.astype(np.float64), env.action_high.astype(np.float64)
    a = np.clip(np.asarray(start, dtype=np.float64), low, high)
    if a[-1] == 0:
        a[-1] = -1.0
    tol = max(1e-7, 1e-3 * float(np.linalg.norm(target[j.arm_q] - state[j.arm_q])))
    r = _residual(j, step_from(env, state, a, before), target)
    best = float(np.linalg.norm(r))
    J, fresh = jacobian, False
    for _ in range(iters):
        if best < tol:
            break
        if J is None:
            J, fresh = _jacobian(env, j, state, target, a, r, high, before), True
        normal = J.T @ J
        normal += (1e-6 * float(np.trace(normal)) + 1e-12) * np.eye(ARM_DIMS)
        step = np.linalg.solve(normal, -J.T @ r)
        for scale in (1.0, 0.5, 0.25):
            trial = a.copy()
            trial[:ARM_DIMS] = np.clip(a[:ARM_DIMS] + scale * step, low[:ARM_DIMS], high[:ARM_DIMS])
            r_trial = _residual(j, step_from(env, state, trial, before), target)
            norm = float(np.linalg.norm(r_trial))
            if norm < best:
                break
        if norm < best:
            da = trial[:ARM_DIMS] - a[:ARM_DIMS]
            good = scale == 1.0 and norm < 0.5 * best
            if good and da @ da > 0:
                J = J + np.outer(r_trial - r - J @ da, da) / (da @ da)
            a, r, best, fresh = trial, r_trial, norm, False
            if not good:
                J = None
        elif fresh:
            break  # a fresh linearisation cannot improve: the best reachable
        else:
            J = None
    a[-1] = _gripper_sign(env, j, state, target, a, before)
    return a, best, J


def relabel_steps(env, states, actions, t0: int, t1: int, iters: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Relabelled actions for steps t0..t1-1 of a demo (each needs state t+1; the demo's last step keeps
    the relabelled action of the step before it) and each step's residual norm."""
    j = Joints.of(env)
    align_controller(env, states, actions, trust_actions=False)
    T = len(states)
    out = np.array(actions[t0:t1], dtype=np.float64)
    res = np.zeros(t1 - t0)
    jacobian = None
    before = gripper_commands(env, actions)[t0]  # the relabelled gripper command follows from here on
    for t in range(t0, t1):
        if t == T - 1:
            if t > t0:
                out[t - t0] = out[t - t0 - 1]
            continue
        out[t - t0], res[t - t0], jacobian = fit_action(env, j, states[t], states[t + 1], actions[t], before, iters,
                                                        jacobian=jacobian)
        before = gripper_after(env, before, out[t - t0])
    return out, res


def open_loop(env, states, actions, convention: str | None = None) -> dict:
    """Step `actions` in order from states[0] (env already holds the demo's model); arm joint error to
    the recorded trajectory (rad, norm over the 7 joints: mean over steps and at the end), object
    position error at the end (m), and success at the end."""
    j = Joints.of(env)
    align_controller(env, states, actions, convention=convention)
    state = step_from(env, states[0], actions[0], gripper_commands(env, actions[:1])[0])
    errs = [float(np.linalg.norm(state[j.arm_q] - states[1][j.arm_q]))] if len(states) > 1 else []
    for t in range(1, len(states) - 1):
        state = step_from(env, None, actions[t])
        errs.append(float(np.linalg.norm(state[j.arm_q] - states[t + 1][j.arm_q])))
    env.raw.sim.forward()
    success = bool(env.raw._check_success())
    nq = env.raw.sim.model.nq
    arm_and_fingers = set(j.arm_q.tolist()) | set(j.finger_q.tolist())
    objects = [i for i in range(1, 1 + nq) if i not in arm_and_fingers]
    final_obj = float(np.abs(state[objects][:3] - states[-1][objects][:3]).max()) if objects and len(states) > 1 else 0.0
    return {"joint_error_mean": float(np.mean(errs)) if errs else 0.0, "joint_error_final": errs[-1] if errs else 0.0,
            "object_error_final": final_obj, "success": success}
