"""bounded(): work that may block forever, and the race between commit and deadline."""

import threading

import pytest

from nfsvol.attempt import Abandoned, bounded


def test_work_that_finishes_in_time_returns_its_result():
    assert bounded(lambda attempt: 42, 1, "quick") == 42


def test_an_error_in_the_work_reaches_the_caller():
    def fail(attempt):
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        bounded(fail, 1, "failing")


def test_work_that_has_not_committed_by_the_deadline_never_commits():
    release, outcome = threading.Event(), []

    def slow(attempt):
        release.wait(5)
        try:
            attempt.commit()
            outcome.append("committed")
        except Abandoned:
            outcome.append("refused")

    with pytest.raises(Abandoned, match="slow: no answer within 0.2s"):
        bounded(slow, 0.2, "slow")
    release.set()
    for _ in range(50):
        if outcome:
            break
        threading.Event().wait(0.1)
    assert outcome == ["refused"]


def test_work_that_begins_after_the_deadline_starts_nothing():
    """Work still waiting (for a lock) when the caller gives up is refused before it starts."""
    release, outcome = threading.Event(), []

    def queued(attempt):
        release.wait(5)
        try:
            attempt.wanted()
            outcome.append("started")
        except Abandoned:
            outcome.append("refused")

    assert bounded(lambda attempt: attempt.wanted() or "started", 1, "in time") == "started"
    with pytest.raises(Abandoned):
        bounded(queued, 0.2, "queued")
    release.set()
    for _ in range(50):
        if outcome:
            break
        threading.Event().wait(0.1)
    assert outcome == ["refused"]


def test_work_that_committed_before_the_deadline_is_waited_for():
    def committed_then_slow(attempt):
        attempt.commit()
        threading.Event().wait(0.5)  # local writes after the commit point
        return "done"

    assert bounded(committed_then_slow, 0.1, "committed") == "done"
