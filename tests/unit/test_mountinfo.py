"""The /proc/self/mountinfo parser."""

import pytest

from nfsvol.host import mountinfo

SAMPLE = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
36 22 0:35 / /var/lib/nfsvol/mnt/main rw,nosuid,nodev,relatime shared:7 master:2 - nfs4 10.0.2.2:/srv/docker rw,vers=4.1
37 22 0:36 /sub /mnt/with\\040space rw - nfs server:/a\\134b rw
"""


def test_parses_fields():
    """Mount point, fstype, source and options come out of each line."""
    entries = mountinfo.parse(SAMPLE)
    assert [e.mount_point for e in entries] == [
        "/", "/var/lib/nfsvol/mnt/main", "/mnt/with space",
    ]  # fmt: skip
    nfs = entries[1]
    assert (nfs.fstype, nfs.source, nfs.mount_id) == ("nfs4", "10.0.2.2:/srv/docker", 36)
    assert "nosuid" in nfs.options
    assert nfs.super_options == ("rw", "vers=4.1")  # where NFS says which server it talks to


def test_unescapes_octal():
    """The kernel's \\040 and \\134 escapes are undone."""
    entry = mountinfo.parse(SAMPLE)[2]
    assert entry.root == "/sub"
    assert entry.source == "server:/a\\b"


@pytest.mark.parametrize(
    "line",
    ["36 22 0:35 / /x rw shared:7", "36 22 0:35 / /x rw - nfs4"],
)
def test_rejects_malformed_lines(line):
    """A line without the separator or its trailing fields is an error."""
    with pytest.raises(ValueError, match="mountinfo line"):
        mountinfo.parse_line(line)


def test_reads_own_mount_table():
    """The real table of this process has a root mount."""
    assert any(e.mount_point == "/" for e in mountinfo.read())


NESTED = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:40 / /srv/a rw,relatime - ext4 /dev/vdb rw
41 22 0:41 / /srv/ab rw,nosuid,nodev - ext4 /dev/vdc rw
42 40 0:42 / /srv/a rw,nosuid,nodev - tmpfs tmpfs rw
"""


@pytest.mark.parametrize(
    ("path", "mount_id"),
    [
        ("/srv/a", 42),  # mounted over: the last mount on a point is the one seen
        ("/srv/a/x/y", 42),
        ("/srv/ab/x", 41),  # a longer name is not a sub-directory
        ("/srv/abc", 22),
        ("/", 22),
    ],
)
def test_containing_picks_the_longest_mount_point_above(path, mount_id):
    """The mount a path lies on is the last-mounted one with the longest prefix at a `/`."""
    entry = mountinfo.containing(path, mountinfo.parse(NESTED))
    assert entry is not None and entry.mount_id == mount_id
