"""Exception types. Every user-facing failure in takeover is a TakeoverError subclass whose message
says what to fix (which file, which key, what was expected); the CLI prints it as one line."""


class TakeoverError(Exception):
    """Base class for errors a user can act on (bad input, bad file, bad option)."""


class SimError(TakeoverError):
    """Bad environment spec, unknown task, bad action, state that does not fit the model."""
