"""Clients that trickle header bytes stall nobody and are dropped at the bound (issue 21, item 9)."""

import contextlib
import socket
import statistics
import threading
import time

from nfsvol.edge.worker import HEADER_TIMEOUT

TRICKLERS = 100
PACE = 0.5  # seconds between two bytes from one trickler
CALLS = 10  # each on its own connection: one lands on each worker, whichever trickled most
HEAD = b"POST /VolumeDriver.Capabilities HTTP/1.1\r\nHost: plugin\r\nX-Slow: "


class Trickle:
    """Clients that each send one header byte at a time, never finishing."""

    def __init__(self, socket_path: str, count: int) -> None:
        self.socks = []
        for _ in range(count):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(socket_path)
            self.socks.append(sock)
        self.started = time.monotonic()
        self.dropped: dict[int, float] = {}  # index: seconds after the start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        sent = 0
        while not self._stop.is_set() and len(self.dropped) < len(self.socks):
            byte = HEAD[sent : sent + 1] or b"a"
            for i, sock in enumerate(self.socks):
                if i not in self.dropped:
                    try:
                        sock.send(byte)
                    except OSError:  # EPIPE, ECONNRESET: the plugin hung up
                        self.dropped[i] = time.monotonic() - self.started
            sent += 1
            self._stop.wait(PACE)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            with contextlib.suppress(OSError):
                sock.close()


def capabilities_latency(client) -> float:
    """Seconds one Capabilities call takes; a call held up past 3 s fails."""
    started = time.monotonic()
    status, body = client.call("Capabilities", timeout=3)
    assert status == 200 and body == {"Capabilities": {"Scope": "global"}}
    return time.monotonic() - started


def test_trickled_headers_stall_nobody_and_are_dropped_after_the_bound(served):
    """100 trickling clients: Capabilities still answers within 1 s; each is cut off at the bound."""
    trickle = Trickle(served.process.socket_path, TRICKLERS)
    try:
        time.sleep(3 * PACE)  # every trickler has sent a few bytes: old gthread threads block here
        latencies = [capabilities_latency(served.client) for _ in range(CALLS)]
        print(
            f"Capabilities under {TRICKLERS} tricklers, {CALLS} calls: "
            f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
        )
        assert max(latencies) < 1.0, latencies
        deadline = time.monotonic() + HEADER_TIMEOUT + 10
        while len(trickle.dropped) < TRICKLERS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        trickle.close()
    times = sorted(trickle.dropped.values())
    print(f"tricklers dropped {times[0]:.1f}-{times[-1]:.1f} s after connecting" if times else "")
    assert len(times) == TRICKLERS, f"{len(times)} of {TRICKLERS} dropped"
    assert times[0] > HEADER_TIMEOUT - 1 and times[-1] < HEADER_TIMEOUT + 5, times
