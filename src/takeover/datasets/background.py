"""SerialWorker: one thread that runs the writer's slow jobs (compressing journal episodes, folding) in
the order they were given, so no two of them touch the same file at once and saves never wait for
them. The thread is a daemon: a process that exits without closing its writer stops it mid-job, which
the journal survives like any kill."""
from __future__ import annotations

import logging
import queue
import threading

log = logging.getLogger(__name__)


class SerialWorker:
    def __init__(self, name: str):
        self.name = name
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def submit(self, job, *args):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        self._jobs.put((job, args))

    def wait(self):
        """Return once every job submitted so far has run."""
        if self._thread is not None:
            self._jobs.join()

    def stop(self):
        """Run what is queued, then end the thread."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _run(self):
        while True:
            item = self._jobs.get()
            try:
                if item is None:
                    return
                job, args = item
                try:
                    job(*args)
                except Exception:  # jobs report their own failures; this only keeps the thread alive
                    log.exception("%s: %s failed", self.name, getattr(job, "__name__", job))
            finally:
                self._jobs.task_done()
