"""takeover.sim: robosuite tasks behind one small interface (EnvSpec, Env, experts, rollouts)."""
from .env import Env, known_object_layout, make_env, object_layout
from .errors import SimError, TakeoverError
from .observations import ObsLayout
from .spec import EnvSpec
from .tasks import TASKS

__all__ = ["Env", "EnvSpec", "ObsLayout", "SimError", "TakeoverError", "TASKS", "known_object_layout", "make_env",
           "object_layout"]
