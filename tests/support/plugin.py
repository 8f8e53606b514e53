"""Run `nfsvol serve` as a real process and speak to it as dockerd does."""

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

# What dockerd sends: POST, this Accept header, no Content-Type.
ACCEPT = "application/vnd.docker.plugins.v1.2+json"


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, as dockerd's plugin client uses it."""

    def __init__(self, path: str, timeout: float = 30) -> None:
        super().__init__("plugin.moby.localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class PluginClient:
    """Calls one endpoint per request, exactly like dockerd.

    With keep_alive the connection is reused, as dockerd's Go HTTP client
    does; otherwise each call opens its own.
    """

    def __init__(self, socket_path: str, keep_alive: bool = False) -> None:
        self.socket_path = socket_path
        self._conn = UnixHTTPConnection(socket_path) if keep_alive else None

    def close(self) -> None:
        """Close the kept-alive connection, if any."""
        if self._conn is not None:
            self._conn.close()

    def raw(self, endpoint: str, body: bytes | None, timeout: float = 30) -> tuple[int, Any]:
        """POST raw bytes; return (HTTP status, decoded JSON)."""
        if self._conn is None:
            return self._send(UnixHTTPConnection(self.socket_path, timeout), endpoint, body)
        try:
            return self._send(self._conn, endpoint, body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the idle connection: open a new one, as Go's client does.
            self._conn.close()
            return self._send(self._conn, endpoint, body)

    def _send(self, conn: UnixHTTPConnection, endpoint: str, body: bytes | None) -> tuple[int, Any]:
        try:
            conn.putrequest("POST", endpoint)
            conn.putheader("Accept", ACCEPT)
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body or b"")
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            if self._conn is None:
                conn.close()

    def call(self, endpoint: str, timeout: float = 30, **fields: Any) -> tuple[int, Any]:
        """POST `fields` as the JSON body of /VolumeDriver.<endpoint>."""
        path = endpoint if endpoint.startswith("/") else f"/VolumeDriver.{endpoint}"
        return self.raw(path, json.dumps(fields).encode(), timeout)

    def ok(self, endpoint: str, **fields: Any) -> Any:
        """Call and insist on success."""
        status, body = self.call(endpoint, **fields)
        assert status == 200 and not body.get("Err"), (endpoint, fields, status, body)
        return body

    def err(self, endpoint: str, **fields: Any) -> str:
        """Call and insist on a failure with a non-empty Err; return it."""
        status, body = self.call(endpoint, **fields)
        assert status != 200 and body.get("Err"), (endpoint, fields, status, body)
        return str(body["Err"])


class PluginProcess:
    """`python -m nfsvol serve` under real gunicorn on a unix socket."""

    def __init__(
        self, config: dict[str, Any], workdir: Path, env: dict[str, str], host: str | None = None
    ) -> None:
        self.config_path = workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.socket_path = str(workdir / "plugin.sock")
        self.log_path = workdir / "plugin.log"
        # TMPDIR: a killed plugin's metrics directory is left in the test's tree.
        self._env = {**os.environ, "TMPDIR": str(workdir), **env}
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = host  # a host name of its own (a UTS namespace), as on another machine

    def start(self, timeout: float = 20) -> PluginClient:
        """Start serving and wait until Activate answers."""
        argv = [sys.executable, "-m", "nfsvol", "serve", "--config", str(self.config_path)]
        argv += ["--socket", self.socket_path]
        if self.host is not None:  # unshare and sh exec: the pid stays the plugin's
            argv = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', self.host, *argv]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, env=self._env)
        client = PluginClient(self.socket_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"nfsvol exited: {self.log_path.read_text()}"
            try:
                if client.raw("/Plugin.Activate", None, timeout=2)[0] == 200:
                    return client
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nfsvol did not answer in {timeout}s: {self.log_path.read_text()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the gunicorn master and all its workers, then reap it."""
        if self.proc is None:
            return
        pids = [self.proc.pid, *children(self.proc.pid)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        self.proc.wait(timeout=40)
        self.proc = None

    def stop(self) -> None:
        """Graceful shutdown, as a service manager does."""
        self.kill(signal.SIGTERM)


def children(pid: int) -> list[int]:
    """PIDs whose parent is pid (a gunicorn master's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
