"""Window: the pygame window of a session: the camera view on the left (with an optional inset of a
second camera in its lower right corner), a HUD panel on the right, and an optional banner across the
view (paused, horizon reached, ...).

Every HUD line fits the panel: a line wider than the panel is wrapped at spaces (continuation lines
indented), a word wider than the panel is shortened with "..." (`fit_lines`, measured with the font).
"""
from __future__ import annotations

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

    def fit_lines(self, hud) -> list[tuple[str, tuple]]:
        """The HUD lines as drawn: each at most `text_width` pixels wide (wrapped, then shortened)."""
        width = self.text_width
        out = []
        for text, color in hud:
            if not text or self.font.size(text)[0] <= width:
                out.append((text, color))
                continue
            line = ""
            for word in text.split(" "):
                trial = f"{line} {word}" if line else word
                if self.font.size(trial)[0] <= width or not line.strip():
                    line = trial
                else:
                    out.append((self._shorten(line, width), color))
                    line = "  " + word
            out.append((self._shorten(line, width), color))
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
             banner_color=YELLOW, inset: np.ndarray | None = None, inset_label: str = ""):
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
            for text, color in self.fit_lines(hud):
                if y + LINE_HEIGHT > self.view_size[1] + 4:
                    break  # below the window: the help lines come last and can be toggled off
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
