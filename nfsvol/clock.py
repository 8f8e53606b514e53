"""Time as the driver's parts see it: a clock passed in (tests move a fake one)."""

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def rfc3339(when: datetime) -> str:
    """A timestamp as Docker prints CreatedAt."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
