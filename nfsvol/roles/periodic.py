"""The driver's background threads: each runs one task while it has work.

Two per process (see nfsvol.driver): the janitor (reclaim mounts a dead
dockerd left, release idle shares, probe the mounted ones, empty trash)
and the lease renewer (renew due leases, fence lost ones). The renewer
has its own thread so that a stuck unmount or probe can never delay a
renewal or a fence past a lease's deadline.
"""

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """A background thread that runs `tick` again and again while it has work.

    `tick` returns the seconds to sleep before it runs again, or None to
    stop, so no thread lingers once every share is released. Threads start
    lazily: gunicorn forks after the app is built, and a thread in the
    master would not survive the fork.
    """

    def __init__(
        self, tick: Callable[[], float | None], interval: float, enabled: bool = True
    ) -> None:
        self._tick = tick
        self._interval = interval  # before the first tick, and after one that failed
        self.name = "nfsvol-" + getattr(tick, "__name__", "tick").lstrip("_")  # py-spy shows it
        self._enabled = enabled
        self._thread: threading.Thread | None = None
        self._woken = False  # wake() came during the running tick
        self._guard = threading.Lock()

    def wake(self) -> None:
        """Make sure the thread runs, and runs `tick` again even if it was stopping."""
        with self._guard:
            self._woken = True
            if self._enabled and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        delay = self._interval
        while True:
            time.sleep(delay)
            with self._guard:
                self._woken = False
            try:
                next_delay = self._tick()
            except Exception:
                log.exception("background task %s failed", self.name)
                next_delay = self._interval
            with self._guard:
                # A wake() during the tick may bring work the tick did not see
                # (a lease taken as the last one went): run once more.
                if next_delay is None and not self._woken:
                    self._thread = None
                    return
            delay = self._interval if next_delay is None else next_delay
