"""Imports pygame quietly (no support banner) with the SDL hints teleoperation needs: joystick
events arrive even when the window lacks keyboard focus (a gamepad drives the robot while the
terminal has focus; SDL drops such events by default)."""
import os

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")

import pygame  # noqa: E402

__all__ = ["pygame"]
