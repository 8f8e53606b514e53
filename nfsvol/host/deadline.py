"""A call on a daemon thread of its own, waited for under a deadline.

A call into a hung NFS server blocks in the kernel until the server answers,
and only SIGKILL interrupts the blocked thread. So the call runs on a daemon
thread, and the caller waits for it no longer than it can afford; a call it
gives up on may stay blocked, costing one thread until the process exits.

This is the one place such threads are started. What giving up means (an
error, a verdict, a race with a commit) is the caller's: nfsvol.host.attempt,
nfsvol.host.health and nfsvol.ops.probe.
"""

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class Running(Generic[T]):
    """A call started on its own daemon thread, and its outcome once it returns."""

    def __init__(self) -> None:
        self._returned = threading.Event()
        self._result: T | None = None
        self._error: BaseException | None = None

    def run(self, call: Callable[[], T]) -> None:
        """Make the call (on the helper thread) and keep its result or error."""
        try:
            self._result = call()
        except BaseException as exc:  # re-raised on the caller's thread by outcome()
            self._error = exc
        self._returned.set()

    def wait(self, seconds: float | None) -> bool:
        """Wait up to `seconds` (None: for good); True once the call has returned."""
        return self._returned.wait(seconds)

    def returned(self) -> bool:
        """True once the call has returned or raised."""
        return self._returned.is_set()

    def outcome(self) -> T:
        """The call's result, or its exception raised here. Only once it returned."""
        if not self._returned.is_set():
            raise RuntimeError("outcome() of a call that has not returned yet")
        if self._error is not None:
            raise self._error
        return cast(T, self._result)


def start(call: Callable[[], T], name: str) -> Running[T]:
    """Start `call()` on a daemon thread called `name`; wait for it with Running.wait."""
    running: Running[T] = Running()
    threading.Thread(target=running.run, args=(call,), name=name, daemon=True).start()
    return running
