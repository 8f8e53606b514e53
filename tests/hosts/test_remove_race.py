"""`docker volume rm` on host a racing `docker run` of the same volume on host b.

The protocol tier races the plugins' endpoints by the thousand on a path
share; this runs the same race through two real dockerds over real NFS,
where the share's attribute caching and dockerd's own Get and Mount come in.
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.hosts.conftest import run, unique

pytestmark = pytest.mark.hosts
NFSVOL = ("--volume-driver", "nfsvol")  # a volume b no longer finds is made by nfsvol
# Each round costs about 13 s on the bed (two dockerds, container start, clean-up);
# the protocol tier races the endpoints by the thousand.
ROUNDS = 10


def test_volume_rm_racing_a_container_start_on_another_host(cluster):
    """If b's container ran, what it wrote is in a live volume; a Remove never won under it."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    export = cluster.export_dir("main")
    outcomes: Counter[str] = Counter()
    with ThreadPoolExecutor(2) as pool:
        for _ in range(ROUNDS):
            vol = unique("race")
            # No `docker volume ls` on b first: a user would not, and b's dockerd,
            # told the driver, asks nfsvol to create a volume it does not find.
            a.docker("volume", "create", "-d", "nfsvol", vol)
            start = threading.Barrier(2)

            def remove(vol=vol, start=start):
                start.wait()
                return a.docker("volume", "rm", vol, check=False)

            def write(vol=vol, start=start):
                start.wait()
                return run(b, *NFSVOL, "-v", f"{vol}:/d", "echo x > /d/f", check=False)

            removed, wrote = pool.submit(remove), pool.submit(write)
            rm_ok, run_ok = removed.result().returncode == 0, wrote.result().returncode == 0
            outcomes[f"rm {'ok' if rm_ok else 'failed'}, run {'ok' if run_ok else 'failed'}"] += 1
            if run_ok:
                # Whether or not dockerd on b made the volume anew after a's rm,
                # the container's write must sit in a volume that exists.
                assert (export / ".nfsvol" / "volumes" / f"{vol}.json").is_file(), vol
                assert (export / vol / "f").read_text() == "x\n", vol
                if not rm_ok:
                    assert "held by host" in removed.result().stderr, removed.result().stderr
            for host in (a, b):  # clean up: the retry must work once b's container is gone
                host.docker("volume", "rm", vol, check=False)
            assert not (export / vol).exists(), vol
    print(f"\n  {ROUNDS} rounds: {dict(outcomes)}")
