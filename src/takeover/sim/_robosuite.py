"""The one place that imports robosuite.

It sets the rendering backend before robosuite (and PyOpenGL) load, silences robosuite's import-time
warnings (no private macro file, optional robot models, mink IK) and makes camera images upright.
Never import robosuite.devices: it needs an X display (pynput).
"""
import logging
import os
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


class _DropRobosuiteNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def _import_quietly():
    # robosuite logs through "robosuite_logs" with its own console handler, from import time on;
    # a logger-level filter set before the import catches those records too.
    for name in ("robosuite", "robosuite_logs"):
        logging.getLogger(name).addFilter(_DropRobosuiteNoise())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import robosuite  # noqa: F401
        import robosuite.macros as macros
    macros.IMAGE_CONVENTION = "opencv"  # camera observations upright
    return robosuite


robosuite = _import_quietly()
