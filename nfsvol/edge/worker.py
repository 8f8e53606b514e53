"""gunicorn's gthread worker, with each request's headers read off its threads, under a deadline.

gthread hands a connection to a thread as soon as a byte arrives, and the
thread then blocks reading the headers with no limit. Clients that trickle
header bytes without ever finishing would hold every thread, and Docker's
Capabilities, Mount and Get would wait behind them for as long as they
trickle. Here the worker's event loop collects the header block itself, a
thread sees a connection only once its header block is complete, and a
connection whose headers take longer than HEADER_TIMEOUT (or grow past
HEAD_MAX) gets a short error reply and is closed.
"""

import contextlib
import json
import logging
import selectors
import time
from dataclasses import dataclass, field
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

# dockerd writes a request at once: headers still arriving after this are hostile.
HEADER_TIMEOUT = 10.0
# dockerd's headers are a few hundred bytes.
HEAD_MAX = 64 * 1024
_END = b"\r\n\r\n"  # gunicorn rejects any other end of a header block
_HEAD = "nfsvol_head"  # the TConn attribute carrying the block to its thread
log = logging.getLogger("nfsvol.edge.worker")


@dataclass
class _Head:
    deadline: float
    data: bytearray = field(default_factory=bytearray)


def _reply(status: str, message: str) -> bytes:
    body = json.dumps({"Err": message}).encode()
    head = f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


TIMED_OUT = _reply("408 Request Timeout", f"request headers not complete in {HEADER_TIMEOUT:g}s")
TOO_LARGE = _reply("431 Request Header Fields Too Large", f"request headers over {HEAD_MAX} bytes")


def _ended(head: _Head) -> bool:
    """Whether the block is complete, or too large to wait for."""
    return _END in head.data or len(head.data) > HEAD_MAX


class HeaderDeadlineWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """A gthread worker whose threads only ever see complete header blocks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[TConn, _Head] = {}  # main thread only, oldest first

    def enqueue_req(self, conn: TConn) -> None:
        """Collect `conn`'s header block in the event loop before a thread takes it."""
        # A pipelined request may already sit in the parser's buffer, in part.
        buffered = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        head = self._heads[conn] = _Head(time.monotonic() + HEADER_TIMEOUT, bytearray(buffered))
        conn.sock.setblocking(False)
        if _ended(head):
            self._advance(conn, head)
        else:
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _s: self._readable(conn))

    def _readable(self, conn: TConn) -> None:
        head = self._heads[conn]
        try:
            data = conn.sock.recv(HEAD_MAX)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        head.data += data
        if not data or _ended(head):
            self.poller.unregister(conn.sock)
            if data:
                self._advance(conn, head)
            else:
                self._drop(conn)  # the client left

    def _advance(self, conn: TConn, head: _Head) -> None:
        """Hand a complete block to a thread, or refuse an oversized one."""
        if _END not in head.data:
            self._drop(conn, TOO_LARGE)
            return
        del self._heads[conn]
        setattr(conn, _HEAD, bytes(head.data))
        conn.data_ready = True  # gthread need not wait for a first byte
        super().enqueue_req(conn)

    def handle(self, conn: TConn) -> Any:
        """Serve one request, its header block put back where gunicorn's parser reads."""
        head = getattr(conn, _HEAD, b"")
        if head:
            setattr(conn, _HEAD, b"")
            conn.init()  # makes the parser; gthread's own call is then a no-op
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def murder_pending(self) -> None:
        """gthread's clean-up of idle connections, and of headers past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        late = [conn for conn, head in self._heads.items() if head.deadline <= now]
        for conn in late:
            log.warning(
                "dropped a client whose request headers were not complete in %gs "
                "(%d bytes received)", HEADER_TIMEOUT, len(self._heads[conn].data),
            )  # fmt: skip
            self.poller.unregister(conn.sock)
            self._drop(conn, TIMED_OUT)

    def _drop(self, conn: TConn, reply: bytes = b"") -> None:
        """Close a connection no thread has, out of the poller, after `reply` if it fits."""
        del self._heads[conn]
        with contextlib.suppress(OSError):
            conn.sock.send(reply)  # non-blocking: a client not reading goes without
        self.nr_conns -= 1
        conn.close()
