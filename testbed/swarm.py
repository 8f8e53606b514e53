"""A Swarm over the bed's hosts: one manager that runs no tasks, the other hosts as workers.

Swarm's control plane runs on the hosts' LAN (testbed.cluster.LAN_PREFIX),
not through QEMU's user networking, as it would between real machines.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from testbed._proc import wait_for
from testbed.artifacts import IMAGE_TAG
from testbed.cluster import Cluster
from testbed.dockerhost import DockerHost

SWARM_PORT = 2377


@dataclass(frozen=True)
class Task:
    """One row of `docker service ps`."""

    name: str
    node: str
    state: str  # e.g. "running", "preparing"
    desired: str
    error: str


class Swarm:
    """Swarm mode on `manager` and `workers` of a started Cluster (the manager needs no nfsvol)."""

    def __init__(
        self, cluster: Cluster, manager: str, workers: Sequence[str], driver: str = "nfsvol"
    ) -> None:
        self.cluster = cluster
        self.manager_name = manager
        self.workers = list(workers)
        self.driver = driver  # the volume driver's name on every worker
        self._token = ""

    @property
    def manager(self) -> DockerHost:
        """The manager's DockerHost."""
        return self.cluster.hosts[self.manager_name]

    def _address(self, name: str) -> str:
        lan = self.cluster.hosts[name].lan
        if lan is None:
            raise ValueError(f"host {name} has no LAN to take part in a swarm")
        return lan.address

    def init(self) -> None:
        """Create the swarm, join the workers; the manager takes no tasks."""
        addr = self._address(self.manager_name)
        self.manager.docker(
            "swarm", "init", "--advertise-addr", addr, "--listen-addr", f"{addr}:{SWARM_PORT}"
        )
        self._token = self.manager.docker("swarm", "join-token", "-q", "worker").stdout.strip()
        for name in self.workers:
            self.join(name)
        self.manager.docker("node", "update", "--availability", "drain", self.manager_name)

    def join(self, name: str) -> None:
        """Join host `name` as a worker, and wait until Swarm may place nfsvol tasks on it.

        dockerd reports a plugin that is not managed (a socket in
        /run/docker/plugins) to Swarm only once it has loaded it; a volume
        listing loads it. Until then Swarm says "missing plugin".
        """
        host = self.cluster.hosts[name]
        host.docker("volume", "ls", "-q")  # before joining: reported from the start
        addr = self._address(self.manager_name)
        host.docker(
            "swarm", "join", "--token", self._token,
            "--advertise-addr", self._address(name), f"{addr}:{SWARM_PORT}",
        )  # fmt: skip
        wait_for(lambda: self._ready(name), 90, f"swarm node {name} with {self.driver}", 1)

    def _ready(self, name: str) -> bool:
        node = self._node(name)
        if node is None or node["Status"]["State"] != "ready":
            return False
        plugins = node["Description"]["Engine"].get("Plugins") or []
        # A managed plugin is reported as NAME:latest.
        names = {p["Name"] for p in plugins if p["Type"] == "Volume"}
        return bool(names & {self.driver, f"{self.driver}:latest"})

    def _node(self, name: str) -> dict[str, Any] | None:
        # Several entries can carry one hostname: a host that was powered off and joined again.
        out = self.manager.docker("node", "ls", "-q").stdout.split()
        nodes = json.loads(self.manager.docker("node", "inspect", *out).stdout)
        live = [n for n in nodes if n["Description"]["Hostname"] == name]
        live.sort(key=lambda n: n["CreatedAt"])
        return live[-1] if live else None

    def forget_down_nodes(self) -> None:
        """Remove the entries of hosts that died (a host that boots again joins afresh)."""
        for node_id in self.manager.docker("node", "ls", "-q").stdout.split():
            state = self.manager.docker(
                "node", "inspect", "--format", "{{.Status.State}}", node_id
            ).stdout.strip()
            if state == "down":
                self.manager.docker("node", "rm", "--force", node_id)

    def set_availability(self, name: str, availability: str) -> None:
        """`docker node update --availability` (active, pause or drain) of host `name`."""
        node = self._node(name)
        if node is None:
            raise LookupError(f"no swarm node is host {name}")
        self.manager.docker("node", "update", "--availability", availability, node["ID"])

    def service(self, *args: str) -> str:
        """`docker service ARGS` on the manager; its stdout."""
        return self.manager.docker("service", *args, timeout=300).stdout

    @contextlib.contextmanager
    def deployed(
        self,
        name: str,
        volume: str,
        cmd: str,
        *opts: str,
        volume_opts: Sequence[str] = (),
        nocopy: bool = False,
        named_only: bool = False,
    ) -> Iterator[str]:
        """Service `name` of the bed's image on the workers, `volume` at /data; removed after.

        Each task runs `sh -c cmd` with NODE set to its node's hostname. With
        `nocopy`, Docker does not copy the image's /data (and its owner and
        mode) into the volume when it is empty. With `named_only` the mount
        names no driver: each node's dockerd asks its drivers who has `volume`.
        """
        driver = [] if named_only else [f"volume-driver={self.driver}"]
        mount = ",".join(
            [f"type=volume,source={volume},destination=/data", *driver]
            + [f"volume-opt={opt}" for opt in volume_opts]
            + (["volume-nocopy=true"] if nocopy else [])
        )
        self.service(
            "create", "--detach", "--no-resolve-image", "--name", name,
            "--constraint", "node.role==worker", "--env", "NODE={{.Node.Hostname}}",
            "--mount", mount, *opts, IMAGE_TAG, "sh", "-c", cmd,
        )  # fmt: skip
        try:
            yield name
        finally:
            self.service("rm", name)
            for worker in self.workers:  # its containers gone: their volumes unmounted
                gone = functools.partial(self._gone, worker, name)
                wait_for(gone, 180, f"{name} on {worker} to go", 1)

    def _gone(self, worker: str, service: str) -> bool:
        host = self.cluster.hosts[worker]
        return not host.docker("ps", "-aq", "--filter", f"name={service}.").stdout

    def tasks(self, service: str) -> list[Task]:
        """The service's tasks, newest first in each slot."""
        out = self.service("ps", service, "--no-trunc", "--format", "{{json .}}")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return [
            Task(
                r["Name"],
                r["Node"],
                r["CurrentState"].split()[0].lower(),
                r["DesiredState"].lower(),
                r["Error"],
            )
            for r in rows
        ]

    def running(self, service: str, count: int, timeout: float = 300) -> list[Task]:
        """Wait until `count` tasks of service run; return them."""
        found: list[Task] = []

        def enough() -> bool:
            nonlocal found
            tasks = self.tasks(service)
            found = [t for t in tasks if t.state == "running" and t.desired == "running"]
            return len(found) >= count

        try:
            wait_for(enough, timeout, f"{count} running task(s) of {service}", 1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; tasks: {self.tasks(service)}") from None
        return found

    def leave(self) -> None:
        """Every running host leaves the swarm (the manager last)."""
        for name in [*self.workers, self.manager_name]:
            host = self.cluster.hosts.get(name)
            if host is not None and host.running():
                host.docker("swarm", "leave", "--force", check=False, timeout=120)
