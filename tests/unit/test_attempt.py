"""bounded(): work that may block forever, and the race between commit and deadline."""

import threading

import pytest

from nfsvol.host.attempt import Abandoned, bounded


def test_work_that_finishes_in_time_returns_its_result():
    """Work done before the deadline hands its return value to the caller."""
    assert bounded(lambda attempt: 42, 1, "quick") == 42


def test_an_error_in_the_work_reaches_the_caller():
    """An exception in the work is raised on the caller's thread."""

    def fail(attempt):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        bounded(fail, 1, "failing")


def late(step, match: str | None = None) -> list[str]:
    """Run step(attempt) only after bounded() gave up on the work; what the step met."""
    release, outcome = threading.Event(), []

    def slow(attempt):
        release.wait(5)
        try:
            step(attempt)
            outcome.append("went ahead")
        except Abandoned:
            outcome.append("refused")

    with pytest.raises(Abandoned, match=match):
        bounded(slow, 0.2, "slow")
    release.set()
    for _ in range(50):
        if outcome:
            break
        threading.Event().wait(0.1)
    return outcome


def test_work_that_has_not_committed_by_the_deadline_never_commits():
    """The caller gets Abandoned at the deadline, and a later commit() is refused."""
    assert late(lambda attempt: attempt.commit(), "slow: no answer within 0.2s") == ["refused"]


def test_work_that_begins_after_the_deadline_starts_nothing():
    """Work still waiting (for a lock) when the caller gives up is refused before it starts."""
    assert bounded(lambda attempt: attempt.wanted() or "started", 1, "in time") == "started"
    assert late(lambda attempt: attempt.wanted()) == ["refused"]


def test_work_that_committed_before_the_deadline_is_waited_for():
    """Work past its commit point is waited for beyond the deadline; its result returns."""

    def committed_then_slow(attempt):
        attempt.commit()
        threading.Event().wait(0.5)  # local writes after the commit point
        return "done"

    assert bounded(committed_then_slow, 0.1, "committed") == "done"
