"""Window: the pygame window of a session: the camera view on the left (with an optional inset of a
second camera in its lower right corner), a HUD panel on the right, and an optional banner across the
view (paused, horizon reached, ...).

Every HUD line fits the panel: a line wider than the panel is wrapped at spaces (continuation lines
indented), a word wider than the panel is shortened with "..." (`fit_lines`, measured with the font).
The controls' help comes below the status lines and keeps its rows: a status line (a long error) wraps
only into rows the help leaves free, and is shortened to one row otherwise (`panel_lines`).
"""
from __future__ import annotations

import os
import sys

import numpy as np

from ._pygame import pygame
from .errors import TeleopError

PANEL_WIDTH = 330
PANEL_MARGIN = 10
LINE_HEIGHT = 20
INSET_FRACTION = 0.34  # of the view's width
BG = (24, 26, 30)
FG = (225, 228, 232)
DIM = (140, 146, 156)
RED = (235, 70, 60)
GREEN = (90, 210, 110)
YELLOW = (240, 200, 70)


HEADLESS_DRIVERS = ("dummy", "offscreen")


def require_display(device: str) -> None:
    """Refuse, before anything is created, a window a person must see and type or steer in where none
    can open: with no X or Wayland display SDL falls back to its offscreen driver, and the session would
    wait invisibly for input that never comes. An SDL_VIDEODRIVER chosen explicitly (dummy for headless
    runs and tests) is left to SDL."""
    driver = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in HEADLESS_DRIVERS or not sys.platform.startswith("linux"):
        return
    if driver not in ("", "x11", "wayland"):
        return
    if os.environ.get("DISPLAY") or (driver != "x11" and os.environ.get("WAYLAND_DISPLAY")):
        return
    raise TeleopError(f"--input {device}: no window can open here (DISPLAY is not set); run it in a desktop "
                      "session, or set DISPLAY to an X display (e.g. ssh -X, or DISPLAY=:0)")


class Window:
    def __init__(self, view_size: tuple[int, int] = (512, 512), title: str = "takeover", panel: bool = True):
        try:
            pygame.display.init()
            pygame.font.init()
        except pygame.error as exc:
            raise TeleopError(f"cannot open a window ({exc}); set SDL_VIDEODRIVER=dummy to run headless") from None
        self.view_size = (int(view_size[0]), int(view_size[1]))
        self.panel_width = PANEL_WIDTH if panel else 0
        size = (self.view_size[0] + self.panel_width, self.view_size[1])
        try:
            self.surface = pygame.display.set_mode(size)
        except pygame.error as exc:
            raise TeleopError(f"cannot open a {size[0]}x{size[1]} window: {exc}") from None
        pygame.display.set_caption(title)
        self.font = pygame.font.Font(None, 22)
        self.big = pygame.font.Font(None, 34)
        self._text_cache: dict[tuple, pygame.Surface] = {}

    def _text(self, text: str, color, big: bool = False) -> pygame.Surface:
        key = (text, color, big)
        surf = self._text_cache.get(key)
        if surf is None:
            if len(self._text_cache) > 512:
                self._text_cache.clear()
            surf = (self.big if big else self.font).render(text, True, color)
            self._text_cache[key] = surf
        return surf

    @property
    def text_width(self) -> int:
        """Pixels a HUD line may take."""
        return self.panel_width - 2 * PANEL_MARGIN

    @property
    def panel_rows(self) -> int:
        """HUD lines the panel shows."""
        return (self.view_size[1] + 4 - PANEL_MARGIN) // LINE_HEIGHT

    def fit_lines(self, hud) -> list[tuple[str, tuple]]:
        """The HUD lines as drawn: each at most `text_width` pixels wide (wrapped, then shortened)."""
        return [(line, color) for text, color in hud for line in self._wrap(text)]

    def panel_lines(self, status, help=()) -> list[tuple[str, tuple]]:
        """What the panel shows: the status lines, a blank row and the help lines, in at most
        `panel_rows` rows. The help is wrapped whole; a status line wraps while the rows left allow and
        is cut to one row ("...") when they do not, so a long message never pushes the help off."""
        help_rows = self.fit_lines(help)
        if help_rows:
            help_rows = [("", FG)] + help_rows
        spare = self.panel_rows - len(help_rows) - len(status)
        rows = []
        for text, color in status:
            wrapped = self._wrap(text)
            if len(wrapped) - 1 <= spare:
                spare -= len(wrapped) - 1
                rows += [(line, color) for line in wrapped]
            else:
                rows.append((self._shorten(text, self.text_width), color))
        return (rows + help_rows)[:self.panel_rows]  # a window too short for status and help: the help's end goes

    def _wrap(self, text: str) -> list[str]:
        width = self.text_width
        if not text or self.font.size(text)[0] <= width:
            return [text]
        out, line = [], ""
        for word in text.split(" "):
            trial = f"{line} {word}" if line else word
            if self.font.size(trial)[0] <= width or not line.strip():
                line = trial
            else:
                out.append(self._shorten(line, width))
                line = "  " + word
        out.append(self._shorten(line, width))
        return out

    def _shorten(self, text: str, width: int) -> str:
        if self.font.size(text)[0] <= width:
            return text
        while text and self.font.size(text + "...")[0] > width:
            text = text[:-1]
        return text + "..."

    @staticmethod
    def _image(frame: np.ndarray, size: tuple[int, int]) -> pygame.Surface:
        h, w = frame.shape[:2]
        img = pygame.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (w, h), "RGB")
        return img if (w, h) == tuple(size) else pygame.transform.scale(img, size)

    def draw(self, frame: np.ndarray, hud: list[tuple[str, tuple]] = (), banner: str | None = None,
             banner_color=YELLOW, inset: np.ndarray | None = None, inset_label: str = "",
             help: list[tuple[str, tuple]] = ()):
        self.surface.blit(self._image(frame, self.view_size), (0, 0))
        if inset is not None:
            side = max(16, int(self.view_size[0] * INSET_FRACTION))
            x, y = self.view_size[0] - side - 4, self.view_size[1] - side - 4
            pygame.draw.rect(self.surface, FG, (x - 2, y - 2, side + 4, side + 4))
            self.surface.blit(self._image(inset, (side, side)), (x, y))
            if inset_label:
                self.surface.blit(self._text(inset_label, FG), (x + 3, y + 2))
        if self.panel_width:
            pygame.draw.rect(self.surface, BG, (self.view_size[0], 0, self.panel_width, self.view_size[1]))
            y = PANEL_MARGIN
            for text, color in self.panel_lines(hud, help):
                if text:
                    self.surface.blit(self._text(text, color), (self.view_size[0] + PANEL_MARGIN, y))
                y += LINE_HEIGHT
        if banner:
            surf = self._text(banner, banner_color, big=True)
            if surf.get_width() > self.view_size[0] - 8:
                surf = self._text(banner, banner_color)
            x = max(4, (self.view_size[0] - surf.get_width()) // 2)
            y = self.view_size[1] // 2 - surf.get_height() // 2
            pygame.draw.rect(self.surface, (0, 0, 0), (0, y - 8, self.view_size[0], surf.get_height() + 16))
            self.surface.blit(surf, (x, y))
        pygame.display.flip()

    def close(self):
        pygame.display.quit()
