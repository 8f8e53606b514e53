"""deadline.start(): a call on its own daemon thread, waited for under a deadline."""

import threading

import pytest

from nfsvol.host import deadline


def test_a_call_that_returns_in_time_gives_its_result():
    """The caller gets the call's return value once it has returned."""
    running = deadline.start(lambda: 42, "quick")
    assert running.wait(1) is True
    assert running.outcome() == 42


def test_the_calls_error_is_raised_on_the_callers_thread():
    """An exception in the call is re-raised by outcome(), not lost on the helper thread."""

    def fail():
        raise ValueError("boom")

    running = deadline.start(fail, "failing")
    assert running.wait(1) is True
    with pytest.raises(ValueError, match="boom"):
        running.outcome()


def test_the_wait_ends_at_the_deadline_while_the_call_is_blocked():
    """A blocked call costs the caller the deadline only; it finishes later on its own thread."""
    release = threading.Event()
    running = deadline.start(lambda: release.wait(5) and "late", "blocked")
    try:
        assert running.wait(0.2) is False
        assert running.returned() is False
        with pytest.raises(RuntimeError, match="not returned yet"):
            running.outcome()
    finally:
        release.set()
    assert running.wait(1) is True
    assert running.outcome() == "late"


def test_the_call_runs_on_a_named_daemon_thread():
    """The helper thread never keeps the process alive, and says what it is doing."""
    seen = {}

    def look():
        seen["thread"] = threading.current_thread()

    deadline.start(look, "stat /srv").wait(1)
    assert seen["thread"].daemon is True
    assert seen["thread"].name == "stat /srv"
