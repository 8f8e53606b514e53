"""Looking names up on a share: one reader thread per share, any number of askers.

dockerd asks Get about every volume name it does not know, so a name this
host has not cached must be looked up on the share (see CatalogCache.find). The
askers of one share share a single thread: each pass of it reads every name
asked for since the last pass. A share whose server hangs then holds one
blocked thread, not one per `docker run`, and askers stop waiting at their
own deadline.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

log = logging.getLogger(__name__)

Reader = Callable[[str, Collection[str]], None]


class Lookups:
    """Runs `read(share, names)` for askers, one pass at a time per share."""

    def __init__(self, read: Reader) -> None:
        self._read = read
        self._cond = threading.Condition()
        self._wanted: dict[str, set[str]] = {}
        self._passes: dict[str, int] = {}  # share -> passes finished
        self._busy: set[str] = set()  # shares with a pass under way
        self._overdue: set[str] = set()  # shares whose pass under way outlived a wait

    def ask(self, share: str, name: str) -> int:
        """Have `name` read on `share`; the pass number to wait for."""
        with self._cond:
            self._wanted.setdefault(share, set()).add(name)
            done = self._passes.get(share, 0)
            if share in self._busy:
                return done + 2  # the pass under way took its names already
            self._busy.add(share)
            names = self._wanted.pop(share)
            threading.Thread(
                target=self._run, args=(share, names), name=f"nfsvol-lookup-{share}", daemon=True
            ).start()
            return done + 1

    def wait(self, tickets: dict[str, int], found: Callable[[], bool], timeout: float) -> list[str]:
        """Wait until every share ran its ticket's pass, or `found()`; the shares still due."""

        def due() -> list[str]:
            return [s for s, n in tickets.items() if self._passes.get(s, 0) < n]

        with self._cond:
            if self._cond.wait_for(lambda: found() or not due(), max(0.0, timeout)):
                return []
            late = due()
            self._overdue.update(late)
            return late

    def overdue(self, share: str) -> bool:
        """True if the share's pass under way already kept an asker its whole wait."""
        with self._cond:
            return share in self._overdue

    def _run(self, share: str, names: set[str]) -> None:
        while True:
            self._read_quietly(share, names)
            with self._cond:
                # Count the pass and take the next one's names in one step, so
                # that an asker's ticket always names a pass that will run.
                self._passes[share] = self._passes.get(share, 0) + 1
                self._overdue.discard(share)
                self._cond.notify_all()
                names = self._wanted.pop(share, set())
                if not names:
                    self._busy.discard(share)
                    return

    def _read_quietly(self, share: str, names: Collection[str]) -> None:
        try:
            self._read(share, names)
        except Exception as exc:  # any: a pass that dies would leave the share busy for good
            log.warning("share %s: cannot look up %s: %s", share, ", ".join(sorted(names)), exc)
