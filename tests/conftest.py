"""Shared fixtures. Expensive artefacts (collected demos) are made once per test session."""
import os

import pytest

from demo_split import with_split

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

# pytest-timeout: every test gets pyproject's `timeout` (a hang fails that test instead of blocking CI);
# the minutes-long end-to-end ones marked slow get this, unless they carry their own timeout mark
SLOW_TIMEOUT_S = 1200


@pytest.fixture(scope="session", autouse=True)
def frame_cache(tmp_path_factory):
    """Camera frames decoded by training runs go to a session folder, not the user's ~/.cache."""
    os.environ["TAKEOVER_FRAME_CACHE"] = str(tmp_path_factory.mktemp("frame_cache"))


def pytest_collection_modifyitems(config, items):
    """Slow tests first (a stable sort keeps each module's order): under xdist the minutes-long ones
    then run side by side at the start instead of one of them trailing at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(scope="session")
def lift_demos(tmp_path_factory):
    """12 scripted Lift demonstrations (seeds 0..), with a train/valid split (11 / 1)."""
    from takeover.sim import EnvSpec
    from takeover.datasets.scripted_collection import collect_scripted

    path = tmp_path_factory.mktemp("lift") / "demos.hdf5"
    collect_scripted(EnvSpec(task="Lift"), str(path), 12, workers=2)
    with_split(path)
    return path
