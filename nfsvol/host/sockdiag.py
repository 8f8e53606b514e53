"""Destroy this host's TCP connections to one server (netlink sock_diag).

`umount -f` fails the NFS requests in flight, but a request the kernel
already handed to TCP stays in the socket's send queue: when a partition
heals, TCP delivers it, after another host may have taken the volume over.
Destroying the connection (SOCK_DESTROY, what `ss -K` does) drops that
queue; the NFS client reconnects and resends only the requests still alive.

Needs CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY (Debian's
has it; the tcp_diag module is loaded on first use).
"""

import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
SOCK_DESTROY = 21
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
ALL_STATES = 0xFFFFFFFF

_NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_REQ = struct.Struct("=BBBxI")  # family, protocol, ext, pad, states; then the socket id
_PORTS = struct.Struct(">HH")  # sport, dport (network order); then src[16], dst[16]
_SOCKID_TAIL = struct.Struct("=III")  # interface, cookie[2]
_SOCKID_LEN = _PORTS.size + 32 + _SOCKID_TAIL.size
_MSG_HEAD = 4  # family, state, timer, retrans; then the socket id
_QUEUES = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode


@dataclass(frozen=True)
class Connection:
    """One TCP socket as sock_diag reports it."""

    family: int
    sockid: bytes  # the kernel's own inet_diag_sockid, cookie included
    queued: int  # bytes written but not yet acknowledged


def connections_to(address: str, port: int) -> list[Connection]:
    """This network namespace's TCP sockets whose peer is address:port."""
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    with _netlink() as nl:
        replies = _ask(nl, SOCK_DIAG_BY_FAMILY, NLM_F_DUMP, _request(family, bytes(_SOCKID_LEN)))
    found = []
    for payload in replies:
        sockid = payload[_MSG_HEAD : _MSG_HEAD + _SOCKID_LEN]
        _, dport = _PORTS.unpack_from(sockid)
        dst = sockid[_PORTS.size + 16 : _PORTS.size + 16 + len(ip.packed)]
        if dport == port and dst == ip.packed:
            queued = _QUEUES.unpack_from(payload, _MSG_HEAD + _SOCKID_LEN)[2]
            found.append(Connection(family, sockid, queued))
    return found


def destroy(conn: Connection) -> bool:
    """Abort one connection, dropping its queue; False if it was already gone."""
    with _netlink() as nl:
        try:
            _ask(nl, SOCK_DESTROY, NLM_F_ACK, _request(conn.family, conn.sockid))
        except FileNotFoundError:
            return False
    return True


def _request(family: int, sockid: bytes) -> bytes:
    return _REQ.pack(family, socket.IPPROTO_TCP, 0, ALL_STATES) + sockid


def _netlink() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)


def _ask(nl: socket.socket, kind: int, flags: int, body: bytes) -> list[bytes]:
    """Send one request; return the payloads of its replies until done or acked."""
    nl.sendall(_NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | flags, 1, 0) + body)
    payloads: list[bytes] = []
    while True:
        data = nl.recv(65536)
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, reply, _, _, _ = _NLMSG.unpack_from(data, offset)
            payload = data[offset + _NLMSG.size : offset + length]
            offset += (length + 3) & ~3
            if reply == NLMSG_DONE:
                return payloads
            if reply == NLMSG_ERROR:
                code = -struct.unpack_from("=i", payload)[0]
                if code:
                    raise OSError(code, f"sock_diag: {errno.errorcode.get(code, code)}")
                return payloads  # the ack
            payloads.append(payload)
        if not data:
            return payloads
