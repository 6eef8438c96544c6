from takeover.sim.errors import TakeoverError


class PolicyError(TakeoverError):
    """Bad head config, checkpoint that does not fit, data that a head cannot learn from."""
