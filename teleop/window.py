"""Window: the pygame window of a session: the camera view on the left, a HUD panel on the right,
and an optional banner across the view (paused, horizon reached, ...)."""
from __future__ import annotations

import numpy as np

from ._pygame import pygame
from .errors import TeleopError

PANEL_WIDTH = 330
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

    def draw(self, frame: np.ndarray, hud: list[tuple[str, tuple]] = (), banner: str | None = None,
             banner_color=YELLOW):
        h, w = frame.shape[:2]
        img = pygame.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (w, h), "RGB")
        if (w, h) != self.view_size:
            img = pygame.transform.scale(img, self.view_size)
        self.surface.blit(img, (0, 0))
        if self.panel_width:
            pygame.draw.rect(self.surface, BG, (self.view_size[0], 0, self.panel_width, self.view_size[1]))
            y = 10
            for text, color in hud:
                if text:
                    self.surface.blit(self._text(text, color), (self.view_size[0] + 10, y))
                y += 20
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
