"""A local volume hiding an nfsvol volume: what doctor says, and when --fix may remove it."""

import os

import pytest

from nfsvol.ops.shadows import _entries, shadow_verdict

HIDES = "a local volume named data hides nfsvol's data on this host; "
SIX = [f"c{i}" for i in range(6)]


@pytest.mark.parametrize(
    ("entries", "users", "options", "detail", "fixable"),
    [
        (0, [], False, "it is empty; no container uses it: `nfsvol doctor --fix` removes it", True),
        (
            1, [], False,
            "it holds 1 entry; no container uses it: move its data into the nfsvol volume, "
            "then `docker volume rm data`",
            False,
        ),
        (
            0, ["web", "db"], False,
            "it is empty; used by container(s) web, db: remove those containers first, "
            "then `docker volume rm data`",
            False,
        ),
        (
            3, SIX, False,
            "it holds 3 entries; used by container(s) c0, c1, c2, c3, c4 and 1 more: remove "
            "those containers first, then move its data into the nfsvol volume, "
            "then `docker volume rm data`",
            False,
        ),
        (
            0, [], True,
            "it was made with mount options (on purpose?); it is empty; no container uses it: "
            "look at it by hand, then `docker volume rm data`",
            False,
        ),
        (
            "cannot list /x: EACCES", [], False,
            "what it holds is unknown (cannot list /x: EACCES); no container uses it: "
            "look at it by hand, then `docker volume rm data`",
            False,
        ),
        (
            0, "docker ps failed: boom", False,
            "it is empty; which containers use it is unknown (docker ps failed: boom): find the "
            "containers that use it and remove them, then `docker volume rm data`",
            False,
        ),
        (
            "not inspected: gone", "not inspected: gone", False,
            "it could not be examined (not inspected: gone): find the containers that use it "
            "and remove them, then look at it by hand, then `docker volume rm data`",
            False,
        ),
    ],
)  # fmt: skip
def test_only_an_empty_unused_plain_local_volume_is_removable(
    entries, users, options, detail, fixable
):
    """Anything that might hold data or be in use is explained, never marked fixable."""
    assert shadow_verdict("data", entries, users, options) == (HIDES + detail, fixable)


def test_entries_counts_without_following_a_link(tmp_path):
    """A directory is counted; a link to one, a file or a missing path is not a count."""
    full = tmp_path / "full"
    full.mkdir()
    (full / "a").write_text("x")
    (full / ".hidden").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "link").symlink_to(full)
    assert _entries(str(full), 5) == 2
    assert _entries(str(empty), 5) == 0
    for odd in ("link", "full/a", "absent"):
        assert isinstance(_entries(str(tmp_path / odd), 5), str)
    assert _entries("relative/path", 5).startswith("dockerd named no directory")
    assert _entries(None, 5).startswith("dockerd named no directory")
    assert os.path.islink(tmp_path / "link")
