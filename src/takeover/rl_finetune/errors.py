"""FinetuneError: an RL fine-tuning request that cannot run as asked (a head that cannot be fine-tuned,
demonstrations of another task or observation layout, an empty budget, an existing run folder)."""
from takeover.errors import TakeoverError


class FinetuneError(TakeoverError):
    """A fine-tuning run that cannot start or continue; the message says what to change."""
