"""takeover.errors: the one exception base of the project.

Every user-facing failure in takeover is a `TakeoverError` subclass whose message says what to fix
(which file, which key, what was expected); the CLI prints it as one line and exits with code 2.
Each package has its own family beside its code: `SimError` (sim/errors.py), `DatasetError`
(datasets/errors.py), `TeleopError` (teleop/errors.py), `PolicyError` (policies/errors.py),
`CorrectionError` (correction/errors.py).
"""


class TakeoverError(Exception):
    """Base class for errors a user can act on (bad input, bad file, bad option)."""


__all__ = ["TakeoverError"]
