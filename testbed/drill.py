"""The failover drill: host A dies, the same container starts on host B with every byte.

Shared by the host tier's test (which asserts on the report) and by
`python -m testbed demo` (which narrates each step).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from testbed.artifacts import IMAGE_TAG
from testbed.cluster import Cluster
from testbed.dockerhost import DockerHost
from testbed.knfsd import GuestPath

# Writes files of random data, fsyncs each, and prints their SHA-256 manifest.
WRITER = (
    "set -e; for i in $(seq 1 12); do "
    "dd if=/dev/urandom of=/data/blob$i bs=64k count=4 conv=fsync 2>/dev/null; done; "
    "echo '<h1>served from nfsvol</h1>' > /data/index.html; sync; "
    "cd /data && sha256sum blob* index.html"
)
READER = "cd /data && sha256sum blob* index.html"
IDLE_RELEASE_S = 60  # idle_unmount (30 s by default) plus the janitor's ticks
TAKEOVER_LIMIT_S = 300  # how long b retries a single-host volume whose lease is live
Say = Callable[[str], None]


@dataclass
class DrillReport:
    """What each host saw, and how long the failover took."""

    volume: str
    manifest_a: dict[str, str] = field(default_factory=dict)
    manifest_b: dict[str, str] = field(default_factory=dict)
    manifest_a_after: dict[str, str] = field(default_factory=dict)
    on_server: dict[str, str] = field(default_factory=dict)
    listed_on_b: bool = False
    page_a: str = ""
    page_b: str = ""
    a_users_after_boot: str = ""
    a_mounts_after_boot: list[str] = field(default_factory=list)
    failover_s: float = 0.0
    plain_start_b_s: float = 0.0
    a_boot_s: float = 0.0
    access: str = "shared"
    refusals_on_b: list[str] = field(default_factory=list)  # single-host: a's lease still live
    lease_wait_s: float = 0.0  # power-off to the start of b's first accepted run
    start_s: float = 0.0  # that run, from docker run to the manifest read
    refusal_on_a: str = ""  # single-host: a, back, is refused while b holds the volume


def parse_manifest(text: str) -> dict[str, str]:
    """`sha256sum` output as {file name: digest}."""
    pairs = (line.split(maxsplit=1) for line in text.splitlines() if line.strip())
    return {name.strip(): digest for digest, name in pairs}


def server_manifest(directory: Path | GuestPath) -> dict[str, str]:
    """Digests computed on the NFS server's own disk, with no NFS in between."""
    entries: list[Path | GuestPath] = list(directory.iterdir())
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(entries, key=lambda entry: entry.name)
        if p.is_file()
    }


def wait_listed(host: DockerHost, volume: str, timeout: float = 30.0) -> bool:
    """Whether `docker volume ls` on host lists volume within timeout.

    List answers from the host's cache after waiting briefly for a sync, so on a
    host whose share is not mounted yet the first answer can predate the volume.
    """
    deadline = time.monotonic() + timeout
    while volume not in host.docker("volume", "ls", "-q").stdout.split():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)  # the drill's failover time counts this wait: keep its grain fine
    return True


def run_on_volume(host: DockerHost, volume: str, script: str) -> str:
    """`sh -c script` in the bed's image on `host` with `volume` at /data; its stdout."""
    return host.docker(
        "run", "--rm", "--network", "none", "-v", f"{volume}:/data", IMAGE_TAG, "sh", "-c", script
    ).stdout


def _serve(host: DockerHost, volume: str, name: str) -> str:
    """Start busybox httpd on the volume and fetch its index page from inside."""
    host.docker(
        "run", "-d", "--name", name, "--network", "none", "-v", f"{volume}:/www:ro",
        IMAGE_TAG, "httpd", "-f", "-p", "127.0.0.1:80", "-h", "/www",
    )  # fmt: skip
    return host.docker("exec", name, "wget", "-qO-", "http://127.0.0.1/index.html").stdout


def _read_when_free(host: DockerHost, report: DrillReport, cut: float) -> str:
    """READER on `host`, retried while another host's single-host lease is live."""
    while True:
        began = time.monotonic()
        try:
            manifest = run_on_volume(host, report.volume, READER)
        except RuntimeError as exc:
            held = report.access == "single-host" and "is held by host" in str(exc)
            if not held or time.monotonic() - cut > TAKEOVER_LIMIT_S:
                raise
            report.refusals_on_b.append(str(exc))
            continue
        report.lease_wait_s = began - cut
        report.start_s = time.monotonic() - began
        return manifest


def run_drill(
    cluster: Cluster,
    say: Say = print,
    driver: str = "nfsvol",
    share: str = "main",
    access: str = "shared",
    restore: bool = True,
) -> DrillReport:
    """Play the drill on hosts a and b of `cluster`; host a is running again at the end.

    `driver` names the volume plugin on both hosts; `share` is the bed's export it uses;
    `access` is the volume's access mode (single-host: b waits out a's lease).
    restore=False leaves a powered off (a benchmark that tears the bed down next).
    """
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    report = DrillReport(volume=f"drill-{uuid.uuid4().hex[:6]}", access=access)
    vol = report.volume
    say(f"[a] docker volume create -d {driver} -o access={access} {vol}")
    a.docker("volume", "create", "-d", driver, "-o", f"access={access}", vol)
    say("[a] a container writes 12 files, fsyncs them and records their SHA-256 manifest")
    report.manifest_a = parse_manifest(run_on_volume(a, vol, WRITER))
    say(f"[a] busybox httpd serves the volume: {_serve(a, vol, 'web-a').strip()}")
    report.page_a = a.docker("exec", "web-a", "wget", "-qO-", "http://127.0.0.1/").stdout
    say("[a] power off: no shutdown, no unmount, the web server still holds the volume")
    cut = time.monotonic()
    cluster.power_off("a")
    report.listed_on_b = wait_listed(b, vol)
    say(f"[b] docker volume ls lists {vol}: {report.listed_on_b}")
    report.manifest_b = parse_manifest(_read_when_free(b, report, cut))
    report.failover_s = time.monotonic() - cut
    same = report.manifest_b == report.manifest_a
    say(f"[b] the same container read the volume: manifest identical = {same}")
    if report.refusals_on_b:
        say(f"[b] refused {len(report.refusals_on_b)}x while a's lease was live")
    say(
        f"[b] power-off to verified data: {report.failover_s:.1f}s = waiting for the volume "
        f"{report.lease_wait_s:.1f}s + the container's run {report.start_s:.1f}s"
    )
    started = time.monotonic()
    b.docker("run", "--rm", "--network", "none", IMAGE_TAG, "true")
    report.plain_start_b_s = time.monotonic() - started
    report.page_b = _serve(b, vol, "web-b")
    say(f"[b] busybox httpd serves the same page: {report.page_b.strip()}")
    if restore:
        _restore_a(cluster, report, say, share)
    report.on_server = server_manifest(cluster.export_dir(share) / vol)
    say(f"[server] digests on {cluster.kind}'s disk match: {report.on_server == report.manifest_a}")
    b.docker("rm", "-f", "web-b", check=False)  # single-host: already gone
    if restore:  # else a's dead web server still holds the volume
        b.docker("volume", "rm", vol)
    return report


def _restore_a(cluster: Cluster, report: DrillReport, say: Say, share: str) -> None:
    say("[a] boot again; nfsvol reconciles: the dead web server's hold is dropped")
    report.a_boot_s = cluster.boot("a")
    a = cluster.hosts["a"]
    wait_listed(a, report.volume)  # a fresh dockerd learns its volumes from the plugin
    report.a_users_after_boot = a.docker(
        "volume", "inspect", "-f", "{{.Status.users}}", report.volume
    ).stdout.strip()
    # Nothing may stay mounted for the dead holder; a share parked by a's
    # first catalog sync is released after idle_unmount, so wait that long.
    deadline = time.monotonic() + IDLE_RELEASE_S
    while cluster.nfs_mounts("a", share) and time.monotonic() < deadline:
        time.sleep(2)
    report.a_mounts_after_boot = cluster.nfs_mounts("a", share)
    users = report.a_users_after_boot
    say(f"[a] back in {report.a_boot_s:.0f}s; users of {report.volume} on a: {users}")
    if report.access == "single-host":
        refused = a.docker("run", "--rm", "--network", "none", "-v", f"{report.volume}:/data",
                           IMAGE_TAG, "true", check=False)  # fmt: skip
        report.refusal_on_a = refused.stderr.strip() if refused.returncode else ""
        say(f"[a] refused while b holds the volume: {bool(report.refusal_on_a)}")
        cluster.hosts["b"].docker("rm", "-f", "web-b")  # b lets go: a may mount again
    report.manifest_a_after = parse_manifest(run_on_volume(a, report.volume, READER))
    say(f"[a] data untouched: {report.manifest_a_after == report.manifest_a}")
