"""What one catalog sync costs a host, at 1k, 10k and 50k volumes (issue 22, item 3).

A sync runs when Docker lists volumes and the host's cache is older than
catalog_ttl. It reads the record folder's stamp (one GETATTR on NFS) and
lists the records only if that changed (nfsvol.share.catalog.plan_reread). Timed
here in-process on a `path` share on local disk, so the figures are
nfsvol's own cost: "unchanged" is the stamp check, "one changed" is the
listing every sync paid before the stamp (one new record read besides).
The NFS round trips of each are counted on the bed (bench.hosts, sync_cost).
"""

from __future__ import annotations

import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.local import path_share_config, volume_names
from bench.stats import p50, timed_ms
from nfsvol.config import parse_config
from nfsvol.driver import Driver, Host
from nfsvol.host.mounter import SubprocessMounter
from nfsvol.roles.build import build_roles
from nfsvol.share.catalog import VolumeRecord
from nfsvol.state import HostState

COUNTS = (1_000, 10_000, 50_000)


class _Clock:
    """Wall time that the bench moves past catalog_ttl between syncs."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _write_records(share: Path, names: list[str]) -> None:
    """Records as another host's Creates leave them (plain writes: the bench's set-up)."""
    folder = share / ".nfsvol" / "volumes"
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        record = VolumeRecord(name, "main", "2026-01-01T00:00:00Z", "bench")
        (folder / f"{name}.json").write_text(json.dumps(record.to_json()))


def _sync_ms(driver: Driver, clock: _Clock) -> float:
    clock.now += timedelta(seconds=driver.config.catalog_ttl + 3)
    return timed_ms(lambda: driver.warm_cache(600))


def measure(count: int, rounds: int) -> dict[str, float]:
    """Median ms of a sync with nothing changed and with one volume added elsewhere."""
    with tempfile.TemporaryDirectory(prefix="nfsvol-bench-sync-") as tmp:
        root = Path(tmp)
        config = parse_config(path_share_config(root))
        _write_records(root / "share", volume_names(count))
        state = HostState(config.state_dir, config.share_names, lock_timeout=10)
        clock = _Clock()
        mounter = SubprocessMounter(config.mount_helper, config.umount_helper, 10)
        roles = build_roles(config, mounter, state, "bench", clock, background=False)
        driver = Driver(config, mounter, state, Host("bench", "boot"), roles, clock)
        first = _sync_ms(driver, clock)  # an empty cache: every record read
        _sync_ms(driver, clock)  # the stamp confirmed a tick later (plan_reread)
        unchanged = [_sync_ms(driver, clock) for _ in range(rounds)]
        changed = []
        for i in range(rounds):
            _write_records(root / "share", [f"new{i:05d}"])
            changed.append(_sync_ms(driver, clock))
            _sync_ms(driver, clock)  # the confirming listing, not timed
        return {"first": first, "unchanged": p50(unchanged), "changed": p50(changed)}


def run(quick: bool, say: Any) -> dict[str, Any]:
    """Sync figures per volume count: sync_{unchanged,changed,first}_ms_{1k,10k,50k}."""
    results: dict[str, Any] = {"samples": {}}
    for count in COUNTS:
        started = time.monotonic()
        figures = measure(count, 3 if quick else 9)
        label = f"{count // 1000}k"
        for kind, ms in figures.items():
            results[f"sync_{kind}_ms_{label}"] = round(ms, 2)
        say(f"  {count:>6} volumes: sync with nothing changed {figures['unchanged']:.2f} ms, "
            f"one changed {figures['changed']:.1f} ms, first {figures['first']:.0f} ms "
            f"({time.monotonic() - started:.0f}s)")  # fmt: skip
    return results
