"""SimError: a bad environment spec, unknown task, bad action, or a state that does not fit the model."""
from takeover.errors import TakeoverError


class SimError(TakeoverError):
    """Bad environment spec, unknown task, bad action, state that does not fit the model."""


__all__ = ["SimError", "TakeoverError"]
