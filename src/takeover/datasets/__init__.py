"""takeover.datasets: the HDF5 demonstration format (docs/reference/formats.md), a crash-safe writer, the reader,
torch datasets, and tools to inspect, split, merge, import and replay demonstration files."""
from .episode import Episode, EpisodeRecorder
from .errors import DatasetError
from .journal import recover
from .reader import DemoReader
from .writer import DemoWriter

__all__ = ["DemoWriter", "DemoReader", "Episode", "EpisodeRecorder", "DemoDataset", "Windows", "feature_stats",
           "DatasetError", "info", "split", "merge", "import_robosuite", "replay_video", "replay_states", "load_demo",
           "recover"]


def __getattr__(name):
    # torch and the simulator load only when these are used
    if name in ("DemoDataset", "Windows", "feature_stats"):
        from . import torch_dataset
        return getattr(torch_dataset, name)
    if name in ("info", "split", "merge"):
        from . import tools
        return getattr(tools, name)
    if name == "import_robosuite":
        from .robosuite_import import import_robosuite
        return import_robosuite
    if name in ("replay_video", "replay_states", "load_demo"):
        from . import playback
        return getattr(playback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
