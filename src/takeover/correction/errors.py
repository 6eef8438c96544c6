"""CorrectionError: a DAgger / DART / CCIL request that cannot run as asked (bad schedule, a policy of
another task than the data, a task without a scripted expert, an existing run folder)."""
from takeover.errors import TakeoverError


class CorrectionError(TakeoverError):
    """A correction run that cannot start or continue; the message says what to change."""
