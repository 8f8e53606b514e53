"""Dropping a server's connections, on real loopback TCP sockets.

The kernel's NFS client keeps its connection to the server in the same
socket tables that sock_diag reads, so a loopback connection whose peer
does not read is a faithful stand-in for one to a partitioned server.
"""

import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from nfsvol.host import sockdiag
from nfsvol.host.mounter import SubprocessMounter


@contextmanager
def _connected(host: str = "127.0.0.1") -> Iterator[tuple[socket.socket, socket.socket, int]]:
    """(client, server side, port) of one established loopback connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as listener:
        listener.bind((host, 0))
        listener.listen()
        port = listener.getsockname()[1]
        with socket.create_connection((host, port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                yield client, accepted, port


def _fill(client: socket.socket) -> int:
    """Write until the unread peer's window is full, like requests to a dead server."""
    client.setblocking(False)
    sent = 0
    with pytest.raises(BlockingIOError):
        while True:
            sent += client.send(b"x" * 65536)
    return sent


def test_finds_the_connections_to_a_server_with_their_unsent_bytes():
    """Only sockets whose peer is address:port, not the server's side nor other ports."""
    with _connected() as (client, _, port), _connected() as (_, _, other):
        sent = _fill(client)
        found = sockdiag.connections_to("127.0.0.1", port)
        assert len(found) == 1, found
        assert 0 < found[0].queued <= sent
        assert [c.queued for c in sockdiag.connections_to("127.0.0.1", other)] == [0]


def test_destroying_a_connection_drops_it_and_spares_the_others():
    """The socket is aborted (what the NFS client sees as a reset); others keep working."""
    with _connected() as (client, _, port), _connected() as (bystander, peer, _):
        _fill(client)
        (conn,) = sockdiag.connections_to("127.0.0.1", port)
        assert sockdiag.destroy(conn) is True
        with pytest.raises(ConnectionAbortedError):
            client.send(b"more")
        assert sockdiag.connections_to("127.0.0.1", port) == []
        assert sockdiag.destroy(conn) is False  # already gone: not an error
        bystander.sendall(b"still here")
        assert peer.recv(64) == b"still here"


def test_ipv6_servers_are_matched_by_their_full_address():
    with _connected("::1") as (client, _, port):
        assert len(sockdiag.connections_to("::1", port)) == 1
        assert sockdiag.connections_to("127.0.0.1", port) == []
        client.sendall(b"x")


def test_abort_cuts_the_connections_of_the_mount_it_aborts(tmp_path):
    """umount -f, then the mount's own server (addr= and port= in its super options)."""
    with ExitStack() as stack:
        client, _, port = stack.enter_context(_connected())
        bystander, peer, other = stack.enter_context(_connected())
        _fill(client)
        table = tmp_path / "mountinfo"
        table.write_text(
            "36 22 0:35 / /mnt/main rw,relatime shared:7 - nfs4 127.0.0.1:/srv rw,vers=4.1,"
            f"hard,proto=tcp,port={port},addr=127.0.0.1\n"
            f"37 22 0:36 / /mnt/other rw - nfs4 127.0.0.1:/o rw,port={other},addr=127.0.0.1\n"
        )
        mounter = SubprocessMounter("/bin/false", "/bin/true", 5, mountinfo_path=str(table))
        mounter.abort("/mnt/main")
        with pytest.raises(ConnectionAbortedError):
            client.send(b"more")
        bystander.sendall(b"ok")
        assert peer.recv(8) == b"ok"
        mounter.abort("/mnt/absent")  # nothing mounted there: nothing to cut, no error


def test_abort_never_detaches_the_mount_it_forces(tmp_path):
    """Held busy while forced: umount -f fails its requests but leaves it mounted,
    so the next umount -f of a fence still reaches the same mount."""
    source, target = tmp_path / "export", tmp_path / "mnt"
    source.mkdir()
    target.mkdir()
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True)
    try:
        mounter = SubprocessMounter("/bin/false", "/usr/bin/umount", 5)
        mounter.abort(str(target))
        assert str(target) in mounter.mount_points()
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
