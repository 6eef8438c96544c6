"""TeleopError: a device, mapping file or session option a user can fix (the CLI prints it as one
line and exits with code 2)."""
from takeover.errors import TakeoverError


class TeleopError(TakeoverError):
    """No controller, a bad mapping file, a bad option value, an unusable window."""
