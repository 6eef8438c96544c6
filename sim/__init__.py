"""takeover.sim: robosuite tasks behind one small interface (EnvSpec, Env, experts, rollouts)."""
from .env import Env, make_env, object_layout
from .errors import SimError, TakeoverError
from .observations import ObsLayout
from .spec import EnvSpec
from .tasks import TASKS

__all__ = ["Env", "EnvSpec", "ObsLayout", "SimError", "TakeoverError", "TASKS", "make_env", "object_layout"]
