from takeover.errors import TakeoverError


class PolicyError(TakeoverError):
    """Bad head config, checkpoint that does not fit, data that a head cannot learn from."""


class HeadImportError(PolicyError):
    """A module of takeover.policies.heads could not be imported (a broken install or a broken head file)."""
