"""Work on a share that may block forever, bounded by a deadline.

A hard NFS mount blocks every call on it until its server answers, and only
SIGKILL interrupts the blocked thread. So the work runs on a helper thread
(nfsvol.host.deadline) and the caller stops waiting at the deadline; the helper
may stay blocked.
"""

import threading
from collections.abc import Callable
from typing import TypeVar

from nfsvol.host import deadline

T = TypeVar("T")


class Abandoned(Exception):
    """The deadline passed before the work committed; it never will."""


class Attempt:
    """One piece of bounded share work, and the race between its commit and its deadline.

    Work calls commit() just before its first lasting change on this host;
    the caller calls abandon() when the deadline passes. Whichever comes
    first wins, so a Mount Docker was told had failed never takes effect.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._state = "running"

    def wanted(self) -> None:
        """Raise if the caller already gave up: start nothing on its behalf."""
        with self._guard:
            if self._state == "abandoned":
                raise Abandoned("the caller gave up before this work began")

    def commit(self) -> None:
        """Claim the right to change state; raise if the caller already gave up."""
        with self._guard:
            if self._state == "abandoned":
                raise Abandoned("the caller gave up before this change was made")
            self._state = "committed"

    def abandon(self) -> bool:
        """The deadline passed: True if the work may no longer commit."""
        with self._guard:
            if self._state == "running":
                self._state = "abandoned"
            return self._state == "abandoned"


def bounded(work: Callable[[Attempt], T], seconds: float, name: str) -> T:
    """Run work(attempt) on a helper thread; raise Abandoned after `seconds`.

    Work that already committed is waited for: what is left of it is local.
    """
    attempt = Attempt()
    running = deadline.start(lambda: work(attempt), name)
    if not running.wait(seconds) and attempt.abandon():
        raise Abandoned(f"{name}: no answer within {seconds:g}s")
    running.wait(None)
    return running.outcome()
