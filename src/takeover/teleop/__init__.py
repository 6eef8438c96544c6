"""takeover.teleop: input devices (keyboard, gamepad, a recorded input log, the scripted operator) -> typed DeviceState ->
OSC action; the pygame window; the recording session; the demo viewer (`demo_viewer.py`). DART noise
is `takeover.sim.noise`, scripted collection `takeover.datasets.scripted_collection`.

Importing this package starts no threads and opens no window; pygame loads with the first device.
"""
from .action import DEFAULT_GAINS, ActionGains, GripperLatch, to_action
from .errors import TeleopError
from .state import EVENTS, DeviceState, InputDevice

__all__ = ["ActionGains", "DEFAULT_GAINS", "DeviceState", "EVENTS", "GripperLatch", "InputDevice",
           "TeleopError", "to_action", "GamepadDevice", "KeyboardDevice", "InputLogDevice", "ScriptedDevice",
           "RecordingSession", "SessionConfig", "run_session"]

_LAZY = {"GamepadDevice": "gamepad", "KeyboardDevice": "keyboard", "InputLogDevice": "input_log",
         "ScriptedDevice": "scripted_device", "RecordingSession": "session", "SessionConfig": "session",
         "run_session": "session"}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
