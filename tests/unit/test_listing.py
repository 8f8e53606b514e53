"""When a sync must list a share's records again (catalog.plan_reread)."""

import pytest

from nfsvol.share.catalog import STAMP_TICK, Listing, plan_reread

A, B = (1, 4096, 100, 100), (1, 4096, 200, 200)  # (inode, size, ctime, mtime)


@pytest.mark.parametrize(
    ("last", "stamp", "at", "expected"),
    [
        # Never listed, or the folder is missing: list.
        (None, A, 50.0, Listing(A, 50.0, False)),
        (Listing(A, 10.0, True), None, 50.0, Listing(None, 50.0, False)),
        # Changed since the last listing: list, and the new stamp is not yet trusted.
        (Listing(A, 10.0, True), B, 50.0, Listing(B, 50.0, False)),
        (Listing(A, 10.0, False), B, 50.0, Listing(B, 50.0, False)),
        # Unchanged, within a tick of the first listing: list again, keep counting from it.
        (Listing(A, 10.0, False), A, 10.0 + STAMP_TICK / 2, Listing(A, 10.0, False)),
        # Unchanged a tick or more later: list once more, then trust it.
        (Listing(A, 10.0, False), A, 10.0 + STAMP_TICK, Listing(A, 10.0, True)),
        # Trusted and unchanged: nothing to list.
        (Listing(A, 10.0, True), A, 5000.0, None),
    ],
)
def test_plan_reread(last, stamp, at, expected):
    assert plan_reread(last, stamp, at) == expected
