"""The `docker` CLI, asked about containers and local volumes for `nfsvol doctor`.

Doctor talks to dockerd through its command line rather than its API, so it
needs nothing but the binary and the socket. Every call is an argv under a
timeout; a call that fails leaves None and, in `why_not`, the reason.
"""

import json
import os
import shutil
from typing import Any

from nfsvol.errors import OperationTimeout
from nfsvol.host.mounter import run

DOCKER_HOST = "unix:///var/run/docker.sock"


class Docker:
    """Asks the local dockerd, through its CLI, about containers and volumes."""

    def __init__(self, cli: str = "docker", host: str = DOCKER_HOST, timeout: float = 10) -> None:
        self._cli = cli
        self._host = host
        self._timeout = timeout
        self.why_not = ""

    def _ask(self, *args: str) -> str | None:
        """The CLI's stdout for `args` (an argv, never a shell); None, and why_not, if it failed."""
        self.why_not = ""
        if shutil.which(self._cli) is None:
            self.why_not = f"no {self._cli} command on this host"
            return None
        socket = self._host.removeprefix("unix://")
        if self._host.startswith("unix://") and not os.path.exists(socket):
            self.why_not = f"dockerd is not running here (no {socket})"
            return None
        try:
            result = run([self._cli, "-H", self._host, *args], self._timeout)
        except OperationTimeout as exc:
            self.why_not = str(exc)
            return None
        if result.returncode != 0:
            verb = " ".join(args[:2]) if args[0] == "volume" else args[0]
            self.why_not = f"docker {verb} failed: {result.stderr.strip()}"
            return None
        return result.stdout

    def containers_using(self, volume: str, stopped: bool = False) -> list[str] | None:
        """Containers that use `volume` (running ones, or all with `stopped`); None if unknown."""
        every = ["-a", "--format", "{{.Names}}"] if stopped else ["-q", "--no-trunc"]
        out = self._ask("ps", *every, "--filter", f"volume={volume}")
        return None if out is None else out.split()

    def local_volumes(self) -> set[str] | None:
        """Names of the volumes dockerd keeps with its `local` driver; None if unknown."""
        out = self._ask("volume", "ls", "--quiet", "--filter", "driver=local")
        return None if out is None else set(out.split())

    def volume(self, name: str) -> dict[str, Any] | None:
        """`docker volume inspect NAME` as a dict; None if unknown or not exactly one answer."""
        out = self._ask("volume", "inspect", "--", name)
        try:
            found = json.loads(out) if out is not None else None
        except ValueError:
            self.why_not = "docker volume inspect printed no JSON"
            return None
        if isinstance(found, list) and len(found) == 1 and isinstance(found[0], dict):
            return found[0]
        self.why_not = "docker volume inspect did not answer with one volume"
        return None

    def remove_volume(self, name: str) -> bool:
        """`docker volume rm NAME` (never -f: dockerd refuses a volume a container uses)."""
        return self._ask("volume", "rm", "--", name) is not None
