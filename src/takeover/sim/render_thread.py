"""BackgroundRenderer: window frames rendered on a worker thread while the caller steps on.

A window frame is step + render + display, and on a CPU (software GL) the render is most of it: at
256 px about 25 ms of a 50 ms control period, against 8 ms for the step. `submit` snapshots the
simulator state (mj_copyData, ~25 us) and returns at once; the thread renders the snapshot while the
caller handles input, steps the next action and sleeps to the next period; `result` takes the images.
What is shown is one frame old, and the loop keeps up as long as a render fits in a period instead of
step + render having to fit together.

The thread owns its own GL context (`mujoco.Renderer`, made and used only on that thread), separate from
robosuite's, so camera observations rendered inside `env.step` on the caller's thread never share a
context across threads. Same look as `Env.render` (`env.set_render_look`, `env.render_option`). `prepare`
builds the renderers of every size a window will ask for before its first frame: building one mid-session
froze the window for up to 1.8 s.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from .env import render_option, set_render_look
from .errors import SimError


class BackgroundRenderer:
    def __init__(self, env):
        self.env = env
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._renderers: dict[tuple[int, int], object] = {}  # (height, width) -> mujoco.Renderer, thread-only
        self._sizes: set[tuple[int, int]] = set()  # every (width, height) prepared or asked for
        self._option = render_option()
        self._model = None
        self._snapshot = None
        self._pending: Future | None = None

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def prepare(self, sizes) -> None:
        """Build the renderers for these (width, height) sizes now, and wait for them. Building one takes
        0.6-1.8 s under software GL and holds the GIL, so a size first met mid-session (the first switch
        to a layout with an inset) would freeze the window for that long."""
        self.result()
        self._sizes.update((int(w), int(h)) for w, h in sizes)
        self._follow_model()
        self._pool.submit(self._build, sorted(self._sizes)).result()

    @property
    def sizes(self) -> set[tuple[int, int]]:
        """The (width, height) sizes a renderer exists for (read on the thread, after a pending render)."""
        return self._pool.submit(lambda: {(w, h) for h, w in self._renderers}).result()

    def _follow_model(self):
        import mujoco

        model = self.env.raw.sim.model._model
        if model is not self._model:  # first use, or the simulator was rebuilt: the renderers are the model's
            self._pool.submit(self._close_renderers).result()
            self._model, self._snapshot = model, mujoco.MjData(model)
            if self._sizes:
                self._pool.submit(self._build, sorted(self._sizes)).result()

    def submit(self, requests: list[tuple[str, int, int]]) -> None:
        """Render the simulator as it is now, from each (camera, width, height), on the thread. A
        submission still running is waited for first (its images are dropped)."""
        import mujoco

        self.result()
        self._follow_model()
        self._sizes.update((w, h) for _, w, h in requests)
        mujoco.mj_copyData(self._snapshot, self._model, self.env.raw.sim.data._data)
        self._pending = self._pool.submit(self._render, list(requests))

    def result(self) -> list[np.ndarray] | None:
        """The images of the last submission (waiting for them), or None if nothing is pending."""
        pending, self._pending = self._pending, None
        return None if pending is None else pending.result()

    def done(self) -> bool:
        return self._pending is not None and self._pending.done()

    # --- on the thread ----------------------------------------------------------------------------
    def _render(self, requests) -> list[np.ndarray]:
        images = []
        for camera, width, height in requests:
            renderer = self._renderer(width, height)
            try:
                renderer.update_scene(self._snapshot, camera=camera, scene_option=self._option)
            except ValueError:
                raise SimError(f"no camera {camera!r}") from None
            images.append(np.ascontiguousarray(renderer.render()))
        return images

    def _build(self, sizes):
        for width, height in sizes:
            self._renderer(width, height)

    def _renderer(self, width: int, height: int):
        import mujoco

        key = (height, width)
        if key not in self._renderers:
            vis = self._model.vis.global_
            vis.offwidth, vis.offheight = max(vis.offwidth, width), max(vis.offheight, height)
            renderer = mujoco.Renderer(self._model, height=height, width=width)
            set_render_look(renderer.scene)
            self._renderers[key] = renderer
        return self._renderers[key]

    def _close_renderers(self):
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def close(self):
        try:
            self.result()
        except Exception:  # noqa: BLE001  (closing: a failed last frame does not matter)
            pass
        self._pool.submit(self._close_renderers).result()
        self._pool.shutdown(wait=True)
