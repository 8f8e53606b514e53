"""`docker run` on this machine's dockerd: nfsvol against a null plugin and a plain volume.

In the QEMU guests every CPU-second a plugin spends costs the emulation
factor (12-20) in wall time, and the guest's one CPU is shared with
dockerd. Here, with no emulation and nfsvol on its `path` share (an export
already mounted), the same three-way comparison shows what nfsvol's own
calls add to a `docker run` on a host that holds its share.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.docker_ls import private_dockerd
from bench.stats import p50, rotated, timed_ms
from testbed._proc import wait_for
from tests.fakes.servers import unmount_below
from tests.support.dockerd import Dockerd, import_busybox
from tests.support.plugin import PluginProcess

NULL_PLUGIN = Path(__file__).with_name("nullplugin.py")
VOLUMES = {"nfsvol": "run-nfsvol", "null": "run-null", "plain": "run-plain"}
DRIVERS = {"nfsvol": "nfsvol", "null": "nullvol", "plain": "local"}


@contextlib.contextmanager
def null_plugin(root: Path) -> Iterator[str]:
    """bench/nullplugin.py serving directories under `root`; yields its socket."""
    socket, volumes = root / "nullvol.sock", root / "null-volumes"
    volumes.mkdir()
    proc = subprocess.Popen([sys.executable, "-I", str(NULL_PLUGIN), str(socket), str(volumes)])
    try:
        wait_for(socket.exists, 30, "the null plugin")
        yield str(socket)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextlib.contextmanager
def dockerd_with(root: Path, nfsvol_socket: str, null_socket: str) -> Iterator[Dockerd]:
    """A private dockerd that finds nfsvol and the null plugin; stopped after."""
    daemon = private_dockerd(root / "daemon", nfsvol_socket)
    (root / "daemon" / "etc-docker" / "plugins" / "nullvol.spec").write_text(
        f"unix://{null_socket}\n"
    )
    with contextlib.ExitStack() as stack:
        stack.callback(unmount_below, root)
        stack.callback(daemon.cleanup)
        stack.callback(daemon.stop)
        daemon.start()
        yield daemon


def run(plugin: PluginProcess, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """Interleaved `docker run --rm -v VOL:/data IMAGE true` on each kind of volume."""
    rounds = 10 if quick else 20
    with (
        tempfile.TemporaryDirectory(prefix="nfsvol-bench-run-") as tmp,
        null_plugin(Path(tmp)) as null_socket,
        dockerd_with(Path(tmp), plugin.socket_path, null_socket) as daemon,
    ):
        image = import_busybox(daemon, Path(tmp))
        for kind, volume in VOLUMES.items():
            daemon.docker("volume", "create", "-d", DRIVERS[kind], volume)

        def run_ms(kind: str) -> float:
            args = ["run", "--rm", "--network", "none", "-v", f"{VOLUMES[kind]}:/data", image]
            return timed_ms(lambda: daemon.docker(*args, "true"))

        rotated(1, list(VOLUMES), run_ms, lambda _: None)  # warm-up: plugins activate here
        nfsvol, null, plain = rotated(rounds, list(VOLUMES), run_ms, lambda _: None)
    say(f"  docker run timed {rounds} times on each kind of volume")
    return {
        "run_overhead_vs_plain_volume_native": round(p50(nfsvol) / p50(plain), 3),
        "run_overhead_null_plugin_vs_plain_volume_native": round(p50(null) / p50(plain), 3),
        "run_ratio_vs_null_plugin_native": round(p50(nfsvol) / p50(null), 3),
        "run_p50_ms_native": {
            "nfsvol": round(p50(nfsvol), 1),
            "null": round(p50(null), 1),
            "plain": round(p50(plain), 1),
        },
        "samples": {
            "run_ms_native_nfsvol": nfsvol,
            "run_ms_native_null": null,
            "run_ms_native_plain": plain,
        },
    }
