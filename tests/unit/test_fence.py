"""The fencer on real mount namespaces: it finds and kills exactly a volume's users."""

from pathlib import Path

import pytest

from nfsvol.host.fence import Fencer
from tests.support.namespaces import user_of


def test_finds_and_kills_only_the_processes_with_the_volume_mounted(tmp_path):
    """Like a container: its own mount namespace with the volume bind-mounted."""
    share = tmp_path / "share"
    (share / "db").mkdir(parents=True)
    (share / "other").mkdir()
    with (
        user_of(share / "db", tmp_path / "c1") as user,
        user_of(share / "other", tmp_path / "c2") as bystander,
    ):
        fencer = Fencer()
        assert fencer.pids_using(str(share / "db")) == [user.pid]
        assert fencer.stop(str(share / "db")) == [user.pid]
        assert user.wait(timeout=10) == -9
        assert bystander.poll() is None
        assert fencer.pids_using(str(share / "db")) == []


def test_a_volume_nobody_mounted_has_no_users(tmp_path):
    """The plugin's own namespace (where the share is mounted) is never a user."""
    (tmp_path / "db").mkdir()
    assert Fencer().pids_using(str(tmp_path / "db")) == []


HOST_MOUNTINFO = """\
38 33 0:35 / /var/lib/nfsvol rw,relatime shared:8 - 9p hoststate rw,sync
65 38 0:58 / /var/lib/nfsvol/mnt/main rw,nosuid,nodev,relatime shared:34 - nfs4 10.0.2.101:/export/main rw,vers=4.1
"""
# What a container of a guest in the test bed showed: NFS puts the volume in the source.
CONTAINER_MOUNTINFO = """\
123 101 0:58 / /data rw,nosuid,nodev,relatime master:34 - nfs4 10.0.2.101:/export/main/db rw,vers=4.1
"""
OTHER_MOUNTINFO = """\
124 101 0:58 / /data rw,nosuid,nodev,relatime master:34 - nfs4 10.0.2.101:/export/main/dbx rw,vers=4.1
"""


def _fake_proc(root, tables):
    """A /proc with `self` and one directory per pid: its mount table and namespace."""
    for pid, (table, ns) in tables.items():
        (root / pid / "ns").mkdir(parents=True)
        (root / pid / "mountinfo").write_text(table)
        (root / pid / "ns" / "mnt").symlink_to(f"mnt:[{ns}]")
    return root


def test_nfs_volumes_are_found_by_their_mount_source(tmp_path):
    """On NFS the bind mount's root reads "/": the source names the volume instead."""
    proc = _fake_proc(
        tmp_path,
        {
            "self": (HOST_MOUNTINFO, 1),
            "345": (CONTAINER_MOUNTINFO, 2),
            "346": (CONTAINER_MOUNTINFO, 2),  # a second process of the same container
            "400": (OTHER_MOUNTINFO, 3),  # another volume whose name starts the same
            "401": (HOST_MOUNTINFO, 1),  # a process of the plugin's own namespace
        },
    )
    killed = []
    fencer = Fencer(proc=str(proc), kill=lambda pid, sig: killed.append((pid, sig)))
    assert fencer.stop("/var/lib/nfsvol/mnt/main/db") == [345, 346]
    assert killed == [(345, 9), (346, 9)]


def test_stop_waits_until_the_killed_have_exited(tmp_path):
    """A dying NFS writer flushes as it closes its files: the abort must come after."""
    share = tmp_path / "share"
    (share / "db").mkdir(parents=True)
    with user_of(share / "db", tmp_path / "c1") as user:
        assert Fencer().stop(str(share / "db"), wait=10) == [user.pid]
        # Not reaped yet (this test is its parent), but dead: its files are closed.
        state = (Path("/proc") / str(user.pid) / "stat").read_text().rpartition(")")[2].split()[0]
        assert state == "Z"


STUCK_STACK = """\
[<0>] folio_wait_bit_common+0x13d/0x380
[<0>] folio_wait_writeback+0x28/0x80
[<0>] __x64_sys_fsync+0x37/0x60
"""


def _stat(pid: str, state: str) -> str:
    return f"{pid} (dd) {state} 1 2 3 4\n"


@pytest.mark.parametrize(
    "files, alive, described",
    [
        ({"stat": _stat("7", "R")}, True, "pid 7 state R wchan ? stack ?"),
        ({"stat": _stat("7", "Z")}, False, "pid 7 state Z wchan ? stack ?"),  # its files are closed
        ({}, False, "pid 7 gone"),
        (
            {"stat": _stat("7", "D"), "wchan": "folio_wait_bit_common", "stack": STUCK_STACK},
            True,
            "pid 7 state D wchan folio_wait_bit_common stack folio_wait_bit_common+0x13d/0x380 "
            "< folio_wait_writeback+0x28/0x80 < __x64_sys_fsync+0x37/0x60",
        ),
    ],
)
def test_a_killed_process_is_alive_until_it_exits_and_says_where_it_waits(
    tmp_path, files, alive, described
):
    """A zombie or a vanished pid is done; a D-state one names its kernel wait."""
    (tmp_path / "7").mkdir()
    for name, text in files.items():
        (tmp_path / "7" / name).write_text(text)
    fencer = Fencer(proc=str(tmp_path))
    assert fencer.alive([7]) == ([7] if alive else [])
    assert fencer.describe(7) == described


def test_reset_host_asks_the_kernel_for_an_immediate_reboot(tmp_path):
    """'b' to sysrq-trigger: reboot now, with no sync that would wait on a dead server."""
    trigger = tmp_path / "sysrq-trigger"
    Fencer(sysrq=str(trigger)).reset_host()
    assert trigger.read_text() == "b"
