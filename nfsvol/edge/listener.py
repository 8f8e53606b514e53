"""The plugin's socket, bound before anything heavy is imported.

dockerd gives a managed plugin about 12 s to listen (three dials, 3 s
apart), and a loaded or emulated host can need longer than that just to
import Flask. Bound first, the socket lets dockerd connect at once; its
requests wait in the backlog until gunicorn serves them. The socket reaches
gunicorn the way systemd socket activation hands one over.
"""

import atexit
import contextlib
import os
import socket

DEFAULT_SOCKET = "/run/docker/plugins/nfsvol.sock"
_FIRST_FD = 3  # where socket activation puts the first listening socket


def listen(path: str) -> None:
    """Listen on unix socket `path` (root only) and pass it on to gunicorn."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a crash; gunicorn would unlink it too
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o077)  # root only, from the moment it exists
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(2048)
    fd = sock.detach()
    if fd != _FIRST_FD:
        os.dup2(fd, _FIRST_FD)
        os.close(fd)
    os.environ["LISTEN_FDS"] = "1"
    os.environ["LISTEN_PID"] = str(os.getpid())
    atexit.register(_unlink_from, os.getpid(), path)


def _unlink_from(owner: int, path: str) -> None:
    # gunicorn leaves an inherited socket in place; only the master removes
    # it, never a worker that exits while the master still serves.
    if os.getpid() == owner:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
