"""`docker volume ls` on this machine's dockerd: nfsvol volumes against `local` ones.

Two private dockerds (Debian's docker.io) run side by side: one finds
nfsvol through a spec file and has no volumes of its own, the other holds
only `local` volumes. dockerd learns of nfsvol's volumes only by calling
List, on every `docker volume ls`: that call is what the figure measures.

Each dockerd runs in a mount namespace of its own, with private
/etc/docker and /run/docker/plugins, because `docker volume ls` asks every
plugin it can find there: one installed on the machine, or a spec left by a
test run, would otherwise be measured too.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.local import VOLUMES, volume_names
from bench.stats import p50
from tests.fakes.servers import unmount_below
from tests.support.dockerd import Dockerd, engine_named
from tests.support.plugin import PluginProcess, UnixHTTPConnection

DRIVER = "nfsvol"
# `sh -c SCRIPT sh ETC RUN dockerd ARGS...` in a new mount namespace: the
# private directories arrive as arguments, never spliced into the script.
HIDE_PLUGINS = (
    'mount --bind "$1" /etc/docker || exit 1; '
    'if [ -d /run/docker/plugins ]; then mount --bind "$2" /run/docker/plugins || exit 1; fi; '
    'shift 2; exec "$@"'
)


def label(count: int) -> str:
    """How a volume count appears in figure names: 10k, 2k, 500."""
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


def private_dockerd(root: Path, plugin_socket: str | None) -> Dockerd:
    """A dockerd under `root` that sees nfsvol's spec (if given) and no other plugin."""
    etc, run = root / "etc-docker", root / "run-plugins"
    (etc / "plugins").mkdir(parents=True)
    run.mkdir()
    if plugin_socket is not None:
        (etc / "plugins" / f"{DRIVER}.spec").write_text(f"unix://{plugin_socket}\n")
    unshare = ["unshare", "--mount", "--propagation", "private"]
    wrapper = [*unshare, "sh", "-c", HIDE_PLUGINS, "sh", str(etc), str(run)]
    return Dockerd(root, engine_named("20.10"), wrapper)  # the machine's own, as before


def api(daemon: Dockerd, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    """One call to dockerd's Engine API over its socket."""
    conn = UnixHTTPConnection(str(daemon.socket), timeout=120)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def create_local(daemon: Dockerd, names: list[str]) -> None:
    """Create `local` volumes through dockerd's API, eight requests at a time."""

    def create(name: str) -> tuple[int, bytes]:
        return api(daemon, "POST", "/volumes/create", {"Name": name})

    with ThreadPoolExecutor(max_workers=8) as pool:
        for status, body in pool.map(create, names):
            if status != 201:
                raise RuntimeError(f"volume create failed: {status} {body[:200]!r}")


def ls_cli_ms(daemon: Dockerd, count: int) -> float:
    """Wall time of `docker volume ls`, after checking it listed `count` volumes."""
    started = time.perf_counter()
    out = daemon.docker("volume", "ls").stdout
    elapsed = (time.perf_counter() - started) * 1000
    listed = len(out.splitlines()) - 1  # minus the header
    if listed != count:
        # dockerd only warns when a plugin's List fails: a short list would time nothing.
        raise RuntimeError(f"docker volume ls listed {listed} volumes, not {count}")
    return elapsed


def ls_api_ms(daemon: Dockerd, count: int) -> float:
    """Wall time of GET /volumes (the daemon's share of `docker volume ls`), checked."""
    started = time.perf_counter()
    status, body = api(daemon, "GET", "/volumes")
    elapsed = (time.perf_counter() - started) * 1000
    reply = json.loads(body)
    if status != 200 or len(reply["Volumes"] or []) != count or reply.get("Warnings"):
        raise RuntimeError(f"GET /volumes: {status}, warnings {reply.get('Warnings')}")
    return elapsed


def measure(daemons: dict[str, Dockerd], count: int, rounds: int) -> dict[str, list[float]]:
    """Interleaved timings, the order swapped each round so drift hits both alike."""
    samples: dict[str, list[float]] = {}
    for name in daemons:
        ls_cli_ms(daemons[name], count)  # warm-up: dockerd activates the plugin here
        samples[f"cli_{name}"], samples[f"api_{name}"] = [], []
    order = list(daemons)
    for _ in range(rounds):
        for name in order:
            samples[f"cli_{name}"].append(ls_cli_ms(daemons[name], count))
            samples[f"api_{name}"].append(ls_api_ms(daemons[name], count))
        order.reverse()
    return samples


def summarise(samples: dict[str, list[float]], count: int) -> dict[str, Any]:
    """Ratios of medians, the medians themselves and every raw sample."""
    tag = label(count)
    results: dict[str, Any] = {"docker_ls_volumes": count, "samples": {}}
    for kind, key in (("cli", "docker_volume_ls"), ("api", "docker_api_volumes")):
        nfsvol, local = samples[f"{kind}_nfsvol"], samples[f"{kind}_local"]
        results[f"{key}_ratio_{tag}"] = round(p50(nfsvol) / p50(local), 3)
        results[f"{key}_p50_ms_{tag}"] = {
            "nfsvol": round(p50(nfsvol), 1),
            "local": round(p50(local), 1),
        }
        results["samples"].update(
            {f"{key}_ms_{tag}_nfsvol": nfsvol, f"{key}_ms_{tag}_local": local}
        )
    return results


@contextlib.contextmanager
def dockerds(root: Path, plugin_socket: str) -> Iterator[dict[str, Dockerd]]:
    """The two dockerds, one seeing nfsvol; both stopped after, nothing left mounted."""
    with contextlib.ExitStack() as stack:
        stack.callback(unmount_below, root)
        daemons = {
            "nfsvol": private_dockerd(root / "with-nfsvol", plugin_socket),
            "local": private_dockerd(root / "with-local", None),
        }
        for daemon in daemons.values():
            stack.callback(daemon.cleanup)
            stack.callback(daemon.stop)
            daemon.start()
        yield daemons


def run(plugin: PluginProcess, quick: bool, say: Callable[[str], None]) -> dict[str, Any]:
    """Time `docker volume ls` on `plugin`'s VOLUMES volumes and on as many local ones.

    Filling both sides takes under two minutes, so --quick keeps all 10,000
    and only times fewer rounds; figure names carry the count all the same.
    """
    rounds = 10 if quick else 20
    with (
        tempfile.TemporaryDirectory(prefix="nfsvol-bench-docker-") as tmp,
        dockerds(Path(tmp), plugin.socket_path) as daemons,
    ):
        started = time.monotonic()
        create_local(daemons["local"], volume_names(VOLUMES))  # the plugin's names
        say(f"  {VOLUMES} local volumes created through dockerd's API in {_since(started)}")
        samples = measure(daemons, VOLUMES, rounds)
    say(f"  docker volume ls timed {rounds} times on each dockerd")
    return summarise(samples, VOLUMES)


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f}s"
