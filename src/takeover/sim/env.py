"""Env: one robosuite task behind a small interface (docs/architecture.md).

    env = make_env(EnvSpec(task="Lift"), seed=0)
    obs = env.reset(seed=3)                      # dict, robomimic key names
    obs, reward, success, truncated, info = env.step(action)

Success is robosuite's `_check_success()` and does not end the episode; `truncated` turns true at the
spec's horizon. Resets are soft (`hard_reset=False`, ~100x cheaper); a seed re-seeds robosuite's own
generator in place, so object placement and robot init noise follow the seed exactly.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from .errors import SimError
from .observations import ObsLayout, default_low_dim_keys, is_image_key, robosuite_key
from .spec import EnvSpec
from .tasks import get_task

RENDER_MAX_SIZE = 1024


class Env:
    def __init__(self, spec: EnvSpec, seed: int | None = None):
        from ._robosuite import robosuite  # here, not at import: reading data and checkpoints needs no simulator

        self.spec = spec
        kwargs = spec.robosuite_kwargs()
        kwargs.update(has_renderer=False, has_offscreen_renderer=bool(spec.camera_names), ignore_done=True,
                      hard_reset=False, seed=seed)
        try:
            self.raw = robosuite.make(get_task(spec.task).robosuite_env, **kwargs)
        except (TypeError, ValueError, AssertionError) as exc:
            raise SimError(f"robosuite rejected the spec for {spec.task}: {exc}") from None
        self._order_observables_by_dependency()
        raw_obs = self.raw.reset()
        if spec.camera_names and self.raw.sim._render_context_offscreen is not None:
            # camera observations get the look of every other render: without shadows and reflections a
            # software-rendered 84x84 frame costs less than half (images differ by ~0.5/255 on average)
            set_render_look(self.raw.sim._render_context_offscreen.scn)
        self._model_xml = None
        self._refresh_object_parts()
        self.obs_keys = self._resolve_obs_keys(raw_obs)
        self._raw_keys = [(k, robosuite_key(k)) for k in self.obs_keys]
        low_dim = [k for k in self.obs_keys if not is_image_key(k)]
        self.layout = ObsLayout(tuple(low_dim), tuple(np.shape(raw_obs[robosuite_key(k)]) for k in low_dim))
        self.action_dim = int(self.raw.action_dim)
        low, high = self.raw.action_spec
        self.action_low, self.action_high = np.asarray(low, np.float32), np.asarray(high, np.float32)
        self.t = 0
        _SEEN_LAYOUTS.setdefault(_layout_key(spec), self.object_layout())

    def _order_observables_by_dependency(self):
        """Evaluate relative sensors (`cube_to_eef_pos`, `world_pose_in_gripper` users) after the
        absolute poses they read from robosuite's observation cache. In robosuite's own order some
        read the previous substep's (or, right after reset, an empty) cache, so an observation
        recomputed from a saved state would not match the one recorded during the step. The `object`
        vector keeps robosuite's original order (`_object_parts`)."""
        observables = self.raw._observables
        self._object_order = [n for n, o in observables.items() if o.modality == "object"]
        ordered = sorted(observables.items(), key=lambda item: "_to_" in item[0])
        observables.clear()
        observables.update(ordered)

    def _refresh_object_parts(self):
        live = self.raw._observables
        self._object_parts = [n for n in self._object_order if live[n].is_enabled() and live[n].is_active()]

    def _resolve_obs_keys(self, raw_obs: dict) -> tuple[str, ...]:
        images = tuple(f"{cam}_image" for cam in self.spec.camera_names)
        if self.spec.obs_keys is None:
            return default_low_dim_keys(raw_obs) + images
        available = set(default_low_dim_keys(raw_obs)) | {k for k in raw_obs if k != "object-state"} | {"object"}
        missing = [k for k in self.spec.obs_keys if robosuite_key(k) not in raw_obs]
        if missing:
            raise SimError(f"{self.spec.task} has no observation key(s) {missing}; available: {sorted(available)}")
        return tuple(self.spec.obs_keys) + tuple(k for k in images if k not in self.spec.obs_keys)

    @property
    def max_steps(self) -> int:
        return self.spec.max_steps

    def _observe(self, raw_obs: dict) -> dict:
        obs = {key: raw_obs[src] for key, src in self._raw_keys}
        if "object" in obs:
            obs["object"] = np.concatenate([np.atleast_1d(raw_obs[n]) for n in self._object_parts])
        return obs

    def reset(self, seed: int | None = None) -> dict:
        if seed is not None:
            # placement samplers and robot init noise hold a reference to this generator
            self.raw.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        self.t = 0
        raw_obs = self.raw.reset()
        self._refresh_object_parts()
        return self._observe(raw_obs)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.action_dim,):
            raise SimError(f"action has shape {action.shape}; {self.spec.task} expects ({self.action_dim},)")
        if not np.isfinite(action).all():
            raise SimError(f"action contains NaN or inf: {action.tolist()}")
        _, _, _, info = self.raw.step(action)
        self.t += 1
        # robosuite's step reads site poses computed before the last substep's integration; one
        # mj_forward (~20 us) makes the observation a function of the saved state, so replaying
        # `states` reproduces `obs` exactly. The reward is recomputed on that state too: robosuite's
        # own lags a step behind `success` (a sparse Lift episode stopped at success scored 0).
        self.raw.sim.forward()
        self.raw._update_observables(force=True)
        raw_obs = self.raw._get_observations()
        reward = self.raw.reward(action)
        success = bool(self.raw._check_success())
        return self._observe(raw_obs), float(reward), success, self.t >= self.max_steps, info

    def warm_up(self) -> None:
        """One reset and one step, for interactive use before the first frame: the first step in a
        fresh install compiles robosuite's numba controller functions (~8 s, then cached on disk),
        which would otherwise freeze the arm under a person's hands. Call reset(seed) afterwards."""
        self.reset()
        self.step(np.zeros(self.action_dim))

    def object_layout(self) -> ObsLayout:
        """The named parts of the `object` vector (robosuite observable names, e.g. `SquareNut_quat`)."""
        raw = self.raw._get_observations()
        return ObsLayout(tuple(self._object_parts), tuple(np.shape(np.atleast_1d(raw[n])) for n in self._object_parts))

    def check_success(self) -> bool:
        return bool(self.raw._check_success())

    # --- state save / restore ------------------------------------------------------------------
    def get_state(self) -> np.ndarray:
        """Flattened MuJoCo state (time, qpos, qvel), robomimic's `states` layout."""
        return np.array(self.raw.sim.get_state().flatten(), dtype=np.float64)

    def model_xml(self) -> str:
        if self._model_xml is None:
            self._model_xml = self.raw.sim.model.get_xml()
        return self._model_xml

    @property
    def state_dim(self) -> int:
        return 1 + self.raw.sim.model.nq + self.raw.sim.model.nv

    def set_state(self, state: np.ndarray, model_xml: str | None = None) -> dict:
        """Put the simulator in `state` (after loading `model_xml` if it differs) and return the
        observation there."""
        if model_xml is not None and model_xml != self.model_xml():
            self.raw.reset()
            self.raw.reset_from_xml_string(model_xml)
            self.raw.sim.reset()
            self._model_xml = None
            self._refresh_object_parts()
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.state_dim,):
            raise SimError(f"state has {state.shape[-1] if state.ndim else 0} values; this {self.spec.task} "
                           f"model needs {self.state_dim} (1 + nq {self.raw.sim.model.nq} + nv {self.raw.sim.model.nv})")
        self.raw.sim.set_state_from_flattened(state)
        self.raw.sim.forward()
        # robosuite's controllers cache the robot pose and re-read it only when flagged; without this the
        # first step after a set_state aims from the pose before it (measured: 0.4-0.7% of a step's motion)
        for robot in self.raw.robots:
            for controller in robot.composite_controller.part_controllers.values():
                controller.new_update = True
        self.raw._update_observables(force=True)
        return self._observe(self.raw._get_observations(force_update=True))

    # --- rendering --------------------------------------------------------------------------------
    def render(self, width: int = 256, height: int = 256, camera: str = "agentview") -> np.ndarray:
        """Upright uint8 HxWx3 image from a named camera: the geometry robosuite's camera observations
        show (`render_option`)."""
        sim = self.raw.sim
        if sim._render_context_offscreen is None:
            self._make_render_context()
        # the context may be robosuite's own (an env with cameras): its geom groups are set for this
        # render only, so the camera observations keep robosuite's look whatever the debug option says
        groups = sim._render_context_offscreen.vopt.geomgroup
        kept = groups.copy()
        groups[:] = render_option().geomgroup
        try:
            frame = sim.render(width=width, height=height, camera_name=camera)
        except ValueError:
            cameras = [sim.model.camera_id2name(i) for i in range(sim.model.ncam)]
            raise SimError(f"no camera {camera!r}; cameras: {cameras}") from None
        finally:
            groups[:] = kept
        return np.ascontiguousarray(frame[::-1])

    def _make_render_context(self):
        from robosuite.utils.binding_utils import MjRenderContextOffscreen

        ctx = MjRenderContextOffscreen(self.raw.sim, device_id=-1, max_width=RENDER_MAX_SIZE, max_height=RENDER_MAX_SIZE)
        set_render_look(ctx.scn)

    def close(self):
        self.raw.close()


# debugging contacts: TAKEOVER_RENDER_COLLISION=1 draws the collision geometry (geom group 0) over the
# visual meshes in every window and video frame (robosuite's render_collision_mesh=True)
COLLISION_ENV_VAR = "TAKEOVER_RENDER_COLLISION"


def render_option(collision: bool | None = None):
    """The geometry every window and video frame shows: robosuite's camera observations' (visual meshes,
    geom group 1, with the sites and objects of group 2; the robot's collision meshes, group 0, hidden:
    drawn, they speckle the arm green and blue where they z-fight with the visual meshes). `collision`
    None: the TAKEOVER_RENDER_COLLISION environment variable decides."""
    import mujoco

    if collision is None:
        collision = os.environ.get(COLLISION_ENV_VAR, "0") not in ("", "0", "false", "no")
    option = mujoco.MjvOption()
    option.geomgroup[0] = 1 if collision else 0
    option.geomgroup[1] = 1
    return option


def rendering_problem() -> str | None:
    """Why this process cannot render offscreen (camera observations), or None when it can: one
    1x1 GL context of the configured backend (MUJOCO_GL, egl by default) is made and freed, ~50 ms."""
    import sys

    from ._robosuite import robosuite  # noqa: F401  (sets MUJOCO_GL's default before mujoco loads)

    backend = os.environ.get("MUJOCO_GL", "")
    if backend.lower() in ("", "disable", "disabled", "off", "false", "0"):
        return f"MUJOCO_GL={backend!r} gives no headless rendering (use egl or osmesa)"
    import mujoco

    hook = sys.unraisablehook
    sys.unraisablehook = lambda *_: None  # a failed context's __del__ complains on stderr; the error says it
    try:
        context = mujoco.GLContext(1, 1)
        context.make_current()
        context.free()
        return None
    except Exception as exc:  # noqa: BLE001  (any failure to make a context is the answer)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"MUJOCO_GL={backend}: {first[:160]}"
    finally:
        import gc

        gc.collect()
        sys.unraisablehook = hook


def set_render_look(scene) -> None:
    """The look of every window and video frame (Env.render, the window's render thread): no shadows or
    reflections, which cost most of a software-rendered frame."""
    import mujoco

    scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0


MODEL_SEED = 0


# `object` part layouts of the specs whose environment this process has built (the layout does not
# depend on cameras or the model seed): a recorder asks for it without building another environment
_SEEN_LAYOUTS: dict[str, ObsLayout] = {}


def _layout_key(spec: EnvSpec) -> str:
    return dataclasses.replace(spec, camera_names=()).to_json()


def known_object_layout(spec: EnvSpec) -> ObsLayout | None:
    """The parts of a task's `object` vector if this process has built its environment; never builds one."""
    return _SEEN_LAYOUTS.get(_layout_key(spec))


def object_layout(spec: EnvSpec) -> ObsLayout:
    """The parts of a task's `object` vector, from a camera-less build of the task (about a second)
    unless this process has built its environment already."""
    return known_object_layout(spec) or _object_layout(_layout_key(spec))


@functools.lru_cache(maxsize=8)
def _object_layout(spec_json: str) -> ObsLayout:
    env = make_env(EnvSpec.from_json(spec_json))
    try:
        return env.object_layout()
    finally:
        env.close()


def make_env(spec: EnvSpec, seed: int | None = None) -> Env:
    """`seed` fixes what robosuite randomises while building the model (e.g. Lift's cube size); it
    defaults to MODEL_SEED so that two processes build the same world. Episodes are seeded by
    `reset(seed)`."""
    return Env(spec, seed=MODEL_SEED if seed is None else seed)
