"""Prometheus metrics, opt-in, correct across gunicorn's worker processes.

prometheus_client chooses between in-process and multiprocess values when
it is imported, from PROMETHEUS_MULTIPROC_DIR. So this module imports it
only inside `PrometheusMetrics` and `start_exporter`, which server.py calls
after pointing that variable at a fresh directory. Recording is a counter
increment: nothing on the request path waits for a scrape.
"""

import contextlib
import os
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol

from nfsvol.config import Metrics
from nfsvol.errors import MountFailed, OperationTimeout
from nfsvol.host.health import HealthState
from nfsvol.host.mounter import Mounter, NfsSource
from nfsvol.state import HostState

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENDPOINTS = (
    "Activate", "Capabilities", "Create", "Remove", "Mount", "Unmount", "Path", "Get", "List",
)  # fmt: skip
LATENCY_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Recorder(Protocol):
    """What the HTTP edge and the mounter report."""

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """One request finished with `outcome` ("ok" or an error type)."""

    def mount_failure(self, server: str) -> None:
        """Mounting from `server` failed or timed out."""

    def timeout(self, operation: str) -> None:
        """`operation` (mount, umount or a request endpoint) ran out of time."""

    def share_file_skipped(self, share: str) -> None:
        """A file on `share` was ignored as unsafe or malformed (see nfsvol.share.sharefs)."""


class NoMetrics:
    """The recorder when metrics are off."""

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Record nothing."""

    def mount_failure(self, server: str) -> None:
        """Record nothing."""

    def timeout(self, operation: str) -> None:
        """Record nothing."""

    def share_file_skipped(self, share: str) -> None:
        """Record nothing."""


class PrometheusMetrics:
    """Counters and a histogram whose values every worker writes to ENV_DIR."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram  # late: see the module doc

        # registry=None: the exporter reads ENV_DIR, not this process's registry.
        self._requests = Counter(
            "nfsvol_requests", "Plugin requests", ["endpoint", "outcome"], registry=None
        )
        self._latency = Histogram(
            "nfsvol_request_seconds",
            "Plugin request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        self._failures = Counter(
            "nfsvol_mount_failures", "Failed mounts by server", ["server"], registry=None
        )
        self._timeouts = Counter(
            "nfsvol_timeouts", "Operations that ran out of time", ["operation"], registry=None
        )
        self._skipped = Counter(
            "nfsvol_share_files_skipped",
            "Files on a share ignored as unsafe or malformed (each read counts)",
            ["share"],
            registry=None,
        )

    def request(self, endpoint: str, outcome: str, seconds: float) -> None:
        """Count the request and its latency (unknown endpoints share one label)."""
        endpoint = endpoint if endpoint in ENDPOINTS else "other"
        self._requests.labels(endpoint, outcome).inc()
        self._latency.labels(endpoint).observe(seconds)

    def mount_failure(self, server: str) -> None:
        """Count a failed mount from `server`."""
        self._failures.labels(server).inc()

    def timeout(self, operation: str) -> None:
        """Count a timeout."""
        self._timeouts.labels(operation).inc()

    def share_file_skipped(self, share: str) -> None:
        """Count a skipped share file."""
        self._skipped.labels(share).inc()


class CountingMounter:
    """A Mounter that reports failures and timeouts, then re-raises them."""

    def __init__(self, inner: Mounter, recorder: Recorder) -> None:
        self._inner = inner
        self._recorder = recorder

    def mount(self, source: NfsSource, target: str) -> None:
        """Mount through the inner mounter."""
        try:
            self._inner.mount(source, target)
        except OperationTimeout:
            self._recorder.timeout("mount")
            self._recorder.mount_failure(source.server)
            raise
        except MountFailed:
            self._recorder.mount_failure(source.server)
            raise

    def unmount(self, target: str) -> None:
        """Unmount through the inner mounter."""
        try:
            self._inner.unmount(target)
        except OperationTimeout:
            self._recorder.timeout("umount")
            raise

    def abort(
        self, target: str, done: Callable[[], bool] | None = None, seconds: float = 0
    ) -> None:
        """Abort through the inner mounter."""
        self._inner.abort(target, done, seconds)

    def mount_points(self) -> dict[str, str]:
        """The inner mounter's view of the mount table."""
        return self._inner.mount_points()

    def pin(self, fd: int, target: str, over: bool = False) -> None:
        """Pin through the inner mounter."""
        self._inner.pin(fd, target, over)

    def unpin(self, target: str) -> None:
        """Unpin through the inner mounter."""
        self._inner.unpin(target)


class HeldCollector:
    """Mounts held on this host, read from the shared state at scrape time."""

    def __init__(self, state: HostState, shares: tuple[str, ...]) -> None:
        self._state = state
        self._shares = shares

    def collect(self) -> Iterator[Any]:
        """Gauges per share: mount IDs and volumes held, mounted from which server, health."""
        from prometheus_client.core import GaugeMetricFamily

        holds = GaugeMetricFamily(
            "nfsvol_mounts_held", "Mount IDs holding volumes", labels=["share"]
        )
        volumes = GaugeMetricFamily("nfsvol_volumes_held", "Volumes held here", labels=["share"])
        mounted = GaugeMetricFamily("nfsvol_share_mounted", "Share mounted here", labels=["share"])
        healthy = GaugeMetricFamily(
            "nfsvol_share_healthy",
            "1 if the last probe of the share's mount here was ok, 0 if not",
            labels=["share", "state"],
        )
        server = GaugeMetricFamily(
            "nfsvol_share_server",
            "1 for the server the share is mounted from here (one of its listed servers)",
            labels=["share", "server"],
        )
        for share in self._shares:
            names = self._state.held_volumes(share)
            holds.add_metric([share], sum(len(self._state.users(share, n)) for n in names))
            volumes.add_metric([share], len(names))
            record = self._state.mount_records.get(share)
            mounted.add_metric([share], int(record is not None))
            if record is not None and record.get("server"):
                server.add_metric([share, record["server"]], 1)
            health = self._state.health.get(share)
            if health is not None:
                healthy.add_metric([share, health.state], int(health.state == HealthState.OK))
        yield from (holds, volumes, mounted, server, healthy)


def prepare_dir(directory: Path) -> None:
    """Empty the multiprocess directory (values of an earlier run) and point ENV_DIR at it."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[ENV_DIR] = str(directory)


def registry(state: HostState, shares: tuple[str, ...]) -> Any:
    """What a scrape shows: every worker's values plus the held-mount gauges."""
    from prometheus_client import CollectorRegistry, multiprocess

    reg = CollectorRegistry()
    multiprocess.MultiProcessCollector(reg)  # type: ignore[no-untyped-call]  # untyped library
    reg.register(HeldCollector(state, shares))
    return reg


def start_exporter(where: Metrics, reg: Any) -> None:
    """Serve /metrics on 127.0.0.1:port or on a unix socket, from a daemon thread."""
    from prometheus_client import start_http_server

    if where.port:
        start_http_server(where.port, addr="127.0.0.1", registry=reg)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(where.socket)
    os.makedirs(os.path.dirname(where.socket), exist_ok=True)
    handler = type("Handler", (_MetricsHandler,), {"registry": reg})
    server = socketserver.ThreadingUnixStreamServer(where.socket, handler)
    os.chmod(where.socket, 0o600)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def worker_exited(pid: int) -> None:
    """Tell prometheus_client a worker is gone (gunicorn's child_exit hook)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped library


class _MetricsHandler(BaseHTTPRequestHandler):
    registry: Any = None

    def do_GET(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line."""
