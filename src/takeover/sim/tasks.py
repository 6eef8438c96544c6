"""The tasks takeover supports: our name -> robosuite environment and its fixed arguments."""
from dataclasses import dataclass, field

from .errors import SimError


@dataclass(frozen=True)
class Task:
    robosuite_env: str
    horizon: int  # default episode length in control steps (20 Hz)
    env_kwargs: dict = field(default_factory=dict)


TASKS: dict[str, Task] = {
    "Lift": Task("Lift", horizon=300),
    "Stack": Task("Stack", horizon=400),
    "PickPlaceCan": Task("PickPlace", horizon=400, env_kwargs={"single_object_mode": 2, "object_type": "can"}),
    "NutAssemblySquare": Task("NutAssembly", horizon=500, env_kwargs={"single_object_mode": 2, "nut_type": "square"}),
    "Door": Task("Door", horizon=300),
    # all-objects variants, for robosuite's own human demonstrations (no scripted expert). robomimic
    # ships no data for them and so names no horizon; 1000 is robosuite's default and what its v1.0
    # benchmark ran them at.
    "PickPlace": Task("PickPlace", horizon=1000),
    "NutAssembly": Task("NutAssembly", horizon=1000),
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise SimError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
