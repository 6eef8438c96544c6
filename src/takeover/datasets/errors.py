"""DatasetError: a demonstration file that cannot be read, written or combined as asked. The message
names the file, the demo and the key where it can, and what was expected (the CLI prints it as one
line and exits with code 2)."""
from takeover.errors import TakeoverError


class DatasetError(TakeoverError):
    """Bad, missing, truncated or incompatible demonstration file, or a bad request against one."""
