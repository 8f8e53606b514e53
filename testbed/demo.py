"""`python -m testbed demo`: the whole story of nfsvol in one command.

Brings up a local NFS server and two Docker hosts running nfsvol, then plays
the failover drill step by step, printing what happens on each host.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from testbed.artifacts import prepare
from testbed.cluster import Cluster
from testbed.drill import run_drill


def _say(line: str) -> None:
    print(line, flush=True)


def demo(cache_dir: str | Path) -> int:
    """Run the drill on a fresh bed; 0 if every check held."""
    started = time.monotonic()
    _say("== preparing the test bed (kernel, initramfs, busybox image; cached after the first run)")
    artifacts = prepare(cache_dir)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="nfsvol-demo-")), artifacts)
    try:
        _say("== starting nfs-ganesha on loopback and booting Docker hosts a and b (QEMU)")
        boots = cluster.start()
        _say("   hosts ready: " + ", ".join(f"{n} in {t:.0f}s" for n, t in boots.items()))
        for name, host in cluster.hosts.items():
            _say(f"   {name}: Docker Engine {host.engine_version()}")
        _say(f"   both run `nfsvol serve`; the volumes live on {cluster.export_dir('main')}")
        _say("== the failover drill")
        report = run_drill(cluster, _say)
    finally:
        cluster.remove()
    ok = (
        report.listed_on_b
        and report.manifest_b == report.manifest_a == report.manifest_a_after == report.on_server
        and report.page_a == report.page_b
        and report.a_users_after_boot == "[]"
    )
    _say(f"== {'every byte followed the container' if ok else 'DRILL FAILED'}")
    _say(f"   total {time.monotonic() - started:.0f}s")
    return 0 if ok else 1
