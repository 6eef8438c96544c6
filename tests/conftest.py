"""Shared fixtures. Expensive artefacts (collected demos) are made once per test session."""
import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture(scope="session", autouse=True)
def frame_cache(tmp_path_factory):
    """Camera frames decoded by training runs go to a session folder, not the user's ~/.cache."""
    os.environ["TAKEOVER_FRAME_CACHE"] = str(tmp_path_factory.mktemp("frame_cache"))


def pytest_collection_modifyitems(config, items):
    """Slow tests first (a stable sort keeps each module's order): under xdist the minutes-long ones
    then run side by side at the start instead of one of them trailing at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def lift_demos(tmp_path_factory):
    """12 scripted Lift demonstrations (seeds 0..), with a train/valid split when `split` exists."""
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    path = tmp_path_factory.mktemp("lift") / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift"), str(path), 12, workers=2)
    return path
