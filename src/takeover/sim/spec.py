"""EnvSpec: everything needed to rebuild an environment exactly. It travels inside every HDF5 file
and every checkpoint (docs/architecture.md), so it is plain data with a JSON round trip."""
from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields

from .errors import SimError
from .tasks import get_task

ARM_CONTROLLERS = ("OSC_POSE", "OSC_POSITION", "JOINT_POSITION", "JOINT_VELOCITY")


@dataclass(frozen=True)
class EnvSpec:
    task: str = "Lift"
    robots: tuple[str, ...] = ("Panda",)
    controller: str = "OSC_POSE"
    controller_overrides: dict = field(default_factory=dict)  # merged into the arm's controller config
    control_freq: int = 20
    horizon: int | None = None  # None: the task's default
    obs_keys: tuple[str, ...] | None = None  # None: every low-dim key (robomimic names)
    camera_names: tuple[str, ...] = ()  # cameras delivered as image observations
    camera_height: int = 84
    camera_width: int = 84
    reward_shaping: bool = False
    env_kwargs: dict = field(default_factory=dict)  # extra robosuite kwargs

    def __post_init__(self):
        get_task(self.task)  # unknown task -> SimError naming the known ones
        if self.controller not in ARM_CONTROLLERS:
            raise SimError(f"unknown controller {self.controller!r}; expected one of {', '.join(ARM_CONTROLLERS)}")
        for name in ("robots", "camera_names", "obs_keys"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            if value is not None:
                object.__setattr__(self, name, tuple(value))

    @property
    def max_steps(self) -> int:
        return self.horizon if self.horizon is not None else get_task(self.task).horizon

    def controller_config(self) -> dict:
        """robosuite's composite controller config with our arm controller in every arm slot."""
        from ._robosuite import robosuite

        config = robosuite.load_composite_controller_config(controller="BASIC", robot=self.robots[0])
        config = copy.deepcopy(config)
        for part in ("right", "left"):
            if part in config["body_parts"]:
                arm = config["body_parts"][part]
                if arm["type"] != self.controller:
                    arm = _default_part_config(self.controller) | {"gripper": arm.get("gripper", {"type": "GRIP"})}
                arm.update(self.controller_overrides)
                config["body_parts"][part] = arm
        return config

    def robosuite_kwargs(self) -> dict:
        """Keyword arguments for robosuite.make (without the env name)."""
        task = get_task(self.task)
        kwargs = dict(task.env_kwargs)
        kwargs.update(
            robots=list(self.robots),
            controller_configs=self.controller_config(),
            control_freq=self.control_freq,
            horizon=self.max_steps,
            reward_shaping=self.reward_shaping,
            use_object_obs=True,
            use_camera_obs=bool(self.camera_names),
            camera_names=list(self.camera_names) or "agentview",
            camera_heights=self.camera_height,
            camera_widths=self.camera_width,
        )
        kwargs.update(self.env_kwargs)
        return kwargs

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> EnvSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SimError(f"EnvSpec has no field(s) {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> EnvSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SimError(f"EnvSpec JSON does not parse: {exc}") from None
        if not isinstance(data, dict):
            raise SimError("EnvSpec JSON must be an object")
        return cls.from_dict(data)

    def robomimic_env_args(self) -> dict:
        """robomimic's `env_args` attribute (type 1 = robosuite)."""
        kwargs = self.robosuite_kwargs()
        kwargs.update(has_renderer=False, has_offscreen_renderer=bool(self.camera_names), ignore_done=True)
        return {"env_name": get_task(self.task).robosuite_env, "type": 1, "env_version": "1.5.2", "env_kwargs": kwargs}


def _default_part_config(controller: str) -> dict:
    import json as _json
    from pathlib import Path

    from ._robosuite import robosuite

    path = Path(robosuite.__file__).parent / "controllers" / "config" / "default" / "parts" / f"{controller.lower()}.json"
    return _json.loads(path.read_text())
