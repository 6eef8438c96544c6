"""Imports pygame quietly (no support banner) with the SDL hints teleoperation needs:

- joystick events arrive even when the window lacks keyboard focus (a gamepad drives the robot while
  the terminal has focus; SDL drops such events by default);
- the window surface stays a plain software framebuffer: SDL would otherwise back it with an OpenGL
  renderer whose context, current on our thread, makes MuJoCo's EGL offscreen context fail
  (eglMakeCurrent -> EGL_BAD_ACCESS, or an X BadAccess) on an X display.
"""
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")

import pygame  # noqa: E402

__all__ = ["pygame"]
