"""End-to-end smoke run: ganesha, two Docker hosts, NFS v4.1 and v3, containers, power-off."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from testbed.artifacts import DEFAULT_CACHE, IMAGE_TAG, prepare
from testbed.dockerhost import DEFAULT_PYTHON, DockerHost, Forward, boot_all
from testbed.nfs import PSEUDO, NfsServer, ensure_rpcbind

MOUNT_NFS = "/usr/sbin/mount.nfs"
SECOND_SERVER_IP = "10.0.2.100"  # guest-side alias relayed to the second ganesha
T = TypeVar("T")


def _step(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    start = time.monotonic()
    result = fn()
    timings[name] = time.monotonic() - start
    print(f"  {name}: {timings[name]:.1f}s", flush=True)
    return result


def _mount(host: DockerHost, source: str, target: str, options: str) -> None:
    host.run(["mkdir", "-p", target]).check()
    host.run([MOUNT_NFS, source, target, "-o", options], timeout=60).check()


def _cat(host: DockerHost, path: str) -> str:
    return host.run(["cat", path], timeout=30).check().stdout


def _expect(actual: str, wanted: str, what: str) -> None:
    if actual != wanted:
        raise AssertionError(f"{what}: wanted {wanted!r}, got {actual!r}")
    print(f"  ok: {what}", flush=True)


def _both(a: DockerHost, b: DockerHost, fn: Callable[[DockerHost], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(fn, (a, b)))


def smoke(cache_dir: str | Path = DEFAULT_CACHE, python: str = DEFAULT_PYTHON) -> dict[str, float]:
    """Run the smoke scenario; return the timings, raise on any failure."""
    timings: dict[str, float] = {}
    total = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="nfsvol-smoke-"))
    art = _step(timings, "artifact prep", lambda: prepare(cache_dir))
    rpcbind = ensure_rpcbind()
    one, two = NfsServer(work / "export1"), NfsServer(work / "export2")
    fwd = Forward(SECOND_SERVER_IP, 2049, two.nfs_port)
    hosts = [
        DockerHost(n, art, state_dir=work / f"state-{n}", python=python, forwards=[fwd])
        for n in ("host-a", "host-b")
    ]
    a, b = hosts
    try:
        _step(timings, "ganesha start x2", lambda: (one.start(), two.start()))
        boots = _step(timings, "boot 2 hosts in parallel", lambda: boot_all(hosts))
        for host, secs in zip(hosts, boots, strict=True):
            timings[f"boot-to-dockerd {host.name}"] = secs
            print(f"  {host.name}: dockerd ready {secs:.1f}s after qemu start", flush=True)
        _nfs_checks(timings, a, b, one, two)
        _container_checks(timings, a, b)
        _power_off_checks(timings, a, b)
    finally:
        for host in hosts:
            host.close()
        one.cleanup()
        two.cleanup()
        if rpcbind is not None:
            rpcbind.terminate()
            rpcbind.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    timings["total"] = time.monotonic() - total
    return timings


def _nfs_checks(
    timings: dict[str, float], a: DockerHost, b: DockerHost, one: NfsServer, two: NfsServer
) -> None:
    _step(
        timings,
        "mount v4.1 on both",
        lambda: _both(a, b, lambda h: _mount(h, one.source(), "/mnt/v4", one.mount_options("4.1"))),
    )
    a.run(["sh", "-c", "echo from-a > /mnt/v4/hello && chown 1234:5678 /mnt/v4/hello"]).check()
    _expect(_cat(b, "/mnt/v4/hello"), "from-a\n", "B reads over v4.1 what A wrote")
    owner = b.run(["stat", "-c", "%u:%g", "/mnt/v4/hello"]).check().stdout.strip()
    _expect(owner, "1234:5678", "numeric owners pass through v4.1")
    _expect((one.export_dir / "hello").read_text(), "from-a\n", "file is in the host export")
    _step(
        timings,
        "mount v3 on both",
        lambda: _both(a, b, lambda h: _mount(h, one.source(), "/mnt/v3", one.mount_options("3"))),
    )
    _expect(_cat(b, "/mnt/v3/hello"), "from-a\n", "B reads over v3 what A wrote")
    (two.export_dir / "who").write_text("server-two\n")
    _mount(b, f"{SECOND_SERVER_IP}:{PSEUDO}", "/mnt/two", "vers=4.1")
    _expect(_cat(b, "/mnt/two/who"), "server-two\n", "second server reached at its own IP")
    _fall_through(timings, b, one, two)


def _fall_through(timings: dict[str, float], b: DockerHost, one: NfsServer, two: NfsServer) -> None:
    """A down server refuses at once, so a client can move on to the next one."""
    # A live mount of the same server would share its (hung) NFS client: drop it first.
    b.run(["umount", "/mnt/two"], timeout=30).check()
    two.stop()
    b.run(["mkdir", "-p", "/mnt/ft"]).check()
    down = f"{SECOND_SERVER_IP}:{PSEUDO}"
    argv = [MOUNT_NFS, down, "/mnt/ft", "-o", "vers=4.1,retry=0"]
    res = _step(timings, "mount of a down server fails", lambda: b.run(argv, timeout=30))
    quick = res.rc != 0 and timings["mount of a down server fails"] < 15
    _expect(str(quick), "True", f"mount of stopped {down} fails fast ({res.stderr.strip()})")
    _mount(b, one.source(), "/mnt/ft", one.mount_options("4.1"))
    _expect(_cat(b, "/mnt/ft/hello"), "from-a\n", "next server in the list mounts")
    _step(timings, "restart second server", two.start)


def _container_checks(timings: dict[str, float], a: DockerHost, b: DockerHost) -> None:
    _step(timings, "load image on both", lambda: _both(a, b, lambda h: h.load_image()))
    outs = _step(
        timings,
        "container run on both (parallel)",
        lambda: _both(
            a,
            b,
            lambda h: (
                h.docker(
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-v",
                    "/mnt/v4:/data",
                    IMAGE_TAG,
                    "cat",
                    "/data/hello",
                ).stdout
            ),
        ),
    )
    _expect(outs[0] + outs[1], "from-a\nfrom-a\n", "containers read the NFS mount")
    _step(
        timings,
        "container run (one host)",
        lambda: b.docker("run", "--rm", "--network", "none", IMAGE_TAG, "true"),
    )


def _power_off_checks(timings: dict[str, float], a: DockerHost, b: DockerHost) -> None:
    a.run(["sh", "-c", "echo kept > /var/lib/nfsvol/marker; echo lost > /root/marker"]).check()
    a.run(["sync"]).check()
    _step(timings, "power off A", a.power_off)
    _expect(_cat(b, "/mnt/v4/hello"), "from-a\n", "B still reads after A lost power")
    b.run(["sh", "-c", "echo from-b >> /mnt/v4/hello"]).check()
    _expect(_cat(b, "/mnt/v3/hello"), "from-a\nfrom-b\n", "B writes after A lost power")
    timings["reboot A"] = a.boot()
    print(f"  reboot A: dockerd ready {timings['reboot A']:.1f}s", flush=True)
    _expect(_cat(a, "/var/lib/nfsvol/marker"), "kept\n", "per-host state survives power-off")
    _expect(str(a.run(["test", "-e", "/root/marker"]).rc), "1", "tmpfs state is lost")
    mounted = a.run(["grep", "-c", " nfs", "/proc/mounts"]).stdout.strip()
    _expect(mounted, "0", "no NFS mounts after reboot")
