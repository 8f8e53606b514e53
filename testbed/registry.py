"""Loopback servers for building and shipping the managed plugin.

- Registry: Debian's docker-registry on 127.0.0.1, for `docker plugin push`
  here and `docker plugin install` in the guests (which reach it as 10.0.2.2).
- PackageIndex: the wheels nfsvol needs, fetched by this machine's pip as it is
  configured, served as a PEP 503 index to `pip` inside `docker build`.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
import threading
import tomllib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testbed._proc import free_port, port_open, run, stop_process, wait_for
from testbed.nfs import GUEST_HOST_ADDR

REGISTRY = "/usr/bin/docker-registry"

_REGISTRY_CONFIG = """\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http:
  addr: 127.0.0.1:{port}
"""


class Registry:
    """One docker-registry process serving a directory of its own on loopback."""

    def __init__(self, workdir: str | Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nfsvol-registry-"))
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def local(self) -> str:
        """host:port as this machine names it (loopback is insecure-allowed by dockerd)."""
        return f"127.0.0.1:{self.port}"

    @property
    def guest(self) -> str:
        """host:port as a QEMU guest names it."""
        return f"{GUEST_HOST_ADDR}:{self.port}"

    def start(self, timeout: float = 30) -> float:
        """Start the registry and wait until it accepts; return seconds taken."""
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "config.yml"
        conf.write_text(_REGISTRY_CONFIG.format(root=self.workdir / "data", port=self.port))
        with open(self.workdir / "registry.log", "ab") as log:
            self._proc = subprocess.Popen(
                [REGISTRY, "serve", str(conf)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        return wait_for(self._ready, timeout, f"docker-registry on {self.local}")

    def _ready(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            log = (self.workdir / "registry.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"docker-registry exited {self._proc.returncode}: {log}")
        return port_open(self.port)

    def stop(self) -> None:
        """Stop the registry and delete what it stored."""
        if self._proc is not None:
            stop_process(self._proc)
            self._proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Registry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _project_name(wheel: str) -> str:
    """PEP 503 normalised project name of a wheel file name."""
    return re.sub(r"[-_.]+", "-", wheel.split("-", 1)[0]).lower()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep pip's requests out of the test output."""


class PackageIndex:
    """Wheels for `project` (a directory with setup.cfg) and its build backend, on loopback."""

    def __init__(self, project: str | Path, python: str, workdir: str | Path | None = None) -> None:
        self.project = Path(project)
        self.python = python
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nfsvol-index-"))
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        """The index URL, for PIP_INDEX_URL (reachable from builds on the host network)."""
        if self._server is None:
            raise RuntimeError("package index not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> None:
        """Download the wheels with this machine's pip, then serve them in a thread."""
        wheels = self.workdir / "wheels"
        pyproject = tomllib.loads((self.project / "pyproject.toml").read_text())
        backend = pyproject["build-system"]["requires"]
        argv = [self.python, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d"]
        run([*argv, str(wheels), str(self.project), *backend], timeout=600)
        root = self.workdir / "simple"
        for wheel in wheels.glob("*.whl"):
            (root / _project_name(wheel.name)).mkdir(parents=True, exist_ok=True)
            shutil.copy2(wheel, root / _project_name(wheel.name) / wheel.name)
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop serving and delete the wheels."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        shutil.rmtree(self.workdir, ignore_errors=True)
