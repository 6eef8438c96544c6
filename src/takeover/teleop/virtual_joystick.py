"""VirtualJoystick: an SDL2 virtual game controller that pygame sees as a plugged-in device, for
testing gamepad code without hardware (docs/architecture.md, adding a device).

SDL's virtual-joystick API is not wrapped by pygame, so this calls it through ctypes on the very
libSDL2 that pygame loaded (the copy bundled in pygame's wheel, `pygame.libs/libSDL2-*.so`); a second
SDL instance would not share pygame's device list, which `attach()` checks.

    with VirtualJoystick(name="Xbox 360 Controller") as pad:   # attached
        pad.set_axis(1, 0.8); pad.set_button(0, True)
    # detached (an unplug) on exit
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os

from ._pygame import pygame
from .errors import TeleopError

JOYSTICK_TYPE_GAMECONTROLLER = 1
_DESC_VERSION = 1


class _Desc(ctypes.Structure):  # SDL_VirtualJoystickDesc (SDL 2.24+)
    _fields_ = [("version", ctypes.c_uint16), ("type", ctypes.c_uint16), ("naxes", ctypes.c_uint16),
                ("nbuttons", ctypes.c_uint16), ("nhats", ctypes.c_uint16), ("vendor_id", ctypes.c_uint16),
                ("product_id", ctypes.c_uint16), ("padding", ctypes.c_uint16), ("button_mask", ctypes.c_uint32),
                ("axis_mask", ctypes.c_uint32), ("name", ctypes.c_char_p), ("userdata", ctypes.c_void_p)] + \
               [(n, ctypes.c_void_p) for n in ("Update", "SetPlayerIndex", "Rumble", "RumbleTriggers", "SetLED", "SendEffect")]


_SDL = None


def pygame_sdl() -> ctypes.CDLL:
    """The libSDL2 pygame uses, opened with ctypes."""
    global _SDL
    if _SDL is not None:
        return _SDL
    base = os.path.dirname(pygame.__file__)
    candidates = sorted(glob.glob(os.path.join(base, os.pardir, "pygame.libs", "libSDL2-2*.so*")))
    candidates += sorted(glob.glob(os.path.join(base, ".dylibs", "libSDL2*.dylib")))
    if not candidates:

        found = ctypes.util.find_library("SDL2")
        candidates = [found] if found else []
    if not candidates:
        raise TeleopError("cannot find the libSDL2 pygame uses (no pygame.libs/libSDL2-*.so)")
    sdl = ctypes.CDLL(candidates[0])
    sdl.SDL_JoystickAttachVirtualEx.argtypes = [ctypes.POINTER(_Desc)]
    sdl.SDL_JoystickAttachVirtualEx.restype = ctypes.c_int
    sdl.SDL_JoystickDetachVirtual.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickGetDeviceInstanceID.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickGetDeviceInstanceID.restype = ctypes.c_int32
    sdl.SDL_JoystickFromInstanceID.argtypes = [ctypes.c_int32]
    sdl.SDL_JoystickFromInstanceID.restype = ctypes.c_void_p
    sdl.SDL_JoystickOpen.argtypes = [ctypes.c_int]
    sdl.SDL_JoystickOpen.restype = ctypes.c_void_p
    sdl.SDL_JoystickClose.argtypes = [ctypes.c_void_p]
    sdl.SDL_JoystickSetVirtualAxis.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int16]
    sdl.SDL_JoystickSetVirtualButton.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    sdl.SDL_JoystickSetVirtualHat.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint8]
    sdl.SDL_GetError.restype = ctypes.c_char_p
    _SDL = sdl
    return sdl


_HAT = {(0, 0): 0x00, (0, 1): 0x01, (1, 0): 0x02, (0, -1): 0x04, (-1, 0): 0x08,
        (1, 1): 0x03, (1, -1): 0x06, (-1, -1): 0x0C, (-1, 1): 0x09}


class VirtualJoystick:
    def __init__(self, name: str = "Virtual Controller", naxes: int = 6, nbuttons: int = 15, nhats: int = 1,
                 trigger_axes: tuple[int, ...] = (4, 5)):
        """`trigger_axes` rest at -1 after attach (SDL game-controller order: 4, 5; an xpad-style
        Xbox layout has them at 2, 5); every other axis rests at 0."""
        self.name, self.naxes, self.nbuttons, self.nhats = name, naxes, nbuttons, nhats
        self.trigger_axes = tuple(trigger_axes)
        self.device_index: int | None = None
        self.instance_id = -1
        self._handle = None

    def attach(self) -> VirtualJoystick:
        if not pygame.joystick.get_init():
            pygame.joystick.init()
        sdl = pygame_sdl()
        before = pygame.joystick.get_count()
        self._name_bytes = self.name.encode()
        desc = _Desc(version=_DESC_VERSION, type=JOYSTICK_TYPE_GAMECONTROLLER, naxes=self.naxes,
                     nbuttons=self.nbuttons, nhats=self.nhats, name=self._name_bytes)
        index = sdl.SDL_JoystickAttachVirtualEx(ctypes.byref(desc))
        if index < 0:
            raise TeleopError(f"SDL_JoystickAttachVirtualEx failed: {sdl.SDL_GetError().decode()}")
        if pygame.joystick.get_count() != before + 1:
            sdl.SDL_JoystickDetachVirtual(index)
            raise TeleopError("the virtual joystick is not visible to pygame (ctypes loaded another SDL instance)")
        self.device_index = index
        self.instance_id = int(sdl.SDL_JoystickGetDeviceInstanceID(index))
        # our own open reference: the set_* calls need an SDL_Joystick*, pygame's stays independent
        self._handle = ctypes.c_void_p(sdl.SDL_JoystickOpen(index))
        for axis in range(self.naxes):
            self.set_axis(axis, -1.0 if axis in self.trigger_axes else 0.0)
        return self

    def _check(self):
        if self._handle is None:
            raise TeleopError("virtual joystick is not attached")

    def set_axis(self, axis: int, value: float):
        self._check()
        raw = int(round(max(-1.0, min(1.0, value)) * 32767)) if value > -1.0 else -32768
        pygame_sdl().SDL_JoystickSetVirtualAxis(self._handle, axis, raw)

    def set_button(self, button: int, down: bool):
        self._check()
        pygame_sdl().SDL_JoystickSetVirtualButton(self._handle, button, 1 if down else 0)

    def set_hat(self, hat: int, x: int, y: int):
        self._check()
        pygame_sdl().SDL_JoystickSetVirtualHat(self._handle, hat, _HAT[(x, y)])

    def detach(self):
        if self._handle is None:
            return
        sdl = pygame_sdl()
        sdl.SDL_JoystickClose(self._handle)
        self._handle = None
        # detach by the device's current index (indices shift as others come and go)
        for i in range(sdl.SDL_NumJoysticks()):
            if sdl.SDL_JoystickGetDeviceInstanceID(i) == self.instance_id:
                sdl.SDL_JoystickDetachVirtual(i)
                break
        self.device_index = None

    def __enter__(self):
        return self.attach()

    def __exit__(self, *exc):
        self.detach()
