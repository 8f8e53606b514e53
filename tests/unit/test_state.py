"""HostState's stores: every kind of state file reads back what was put, and empties vanish."""

from pathlib import Path
from typing import Any

import pytest

from nfsvol.host.health import Health, HealthState
from nfsvol.share.catalog import VolumeRecord
from nfsvol.share.leases import Lease, Watch
from nfsvol.state import HostState

LEASE = Lease("a", "2026-12-07T18:00:00Z", "2026-12-07T18:00:05Z", 30.0, "t1", "a.json")
RECORD = VolumeRecord("db", "main", "2026-12-07T18:00:00Z", "a", {"uid": "1000"})

# the store, and a value of its kind
VOLUME_KINDS = [
    ("records", RECORD),
    ("last_errors", {"time": "t", "error": "mount.nfs: timed out"}),
    ("leases", (LEASE, 12.5)),
    ("watches", {"a.json": Watch("t1", 3.0)}),
    ("holders", [LEASE]),
]
SHARE_KINDS = [
    ("mount_records", {"server": "10.0.0.1", "idle_since": None}),
    ("good_servers", "10.0.0.2"),
    ("health", Health(HealthState.OK, "", 1.0, 1.0)),
    ("unanswered", 1733600000.5),
]


@pytest.fixture
def state(tmp_path: Path) -> HostState:
    return HostState(tmp_path / "state", ("main",), lock_timeout=1.0)


@pytest.mark.parametrize(("kind", "value"), VOLUME_KINDS)
def test_a_volume_file_reads_back_what_was_put(state, kind: str, value: Any):
    """put then get returns an equal value; drop makes get answer None and names empty."""
    store = getattr(state, kind)
    assert store.get("main", "db") is None
    store.put("main", "db", value)
    assert store.get("main", "db") == value
    assert store.names("main") == ["db"]
    store.drop("main", "db")
    assert store.get("main", "db") is None
    assert store.names("main") == []


@pytest.mark.parametrize(("kind", "value"), SHARE_KINDS)
def test_a_share_file_reads_back_what_was_put(state, kind: str, value: Any):
    """put then get returns an equal value; drop makes get answer None."""
    store = getattr(state, kind)
    assert store.get("main") is None
    store.put("main", value)
    assert store.get("main") == value
    store.drop("main")
    assert store.get("main") is None


@pytest.mark.parametrize("empty", [{}, []])
def test_an_empty_value_deletes_the_file(state, empty: Any):
    """Putting an empty map or list leaves no file behind, so names() lists only live ones."""
    state.watches.put("main", "db", {"a.json": Watch("t1", 3.0)})
    state.watches.put("main", "db", empty)
    assert state.watches.names("main") == []
    assert not (state.root / "watch" / "main" / "db.json").exists()


def test_names_skip_the_caches_own_markers(state):
    """The cache folder's .synced and .listing markers are not volume names."""
    state.records.put("main", "db", RECORD)
    state.mark_synced("main")
    assert state.records.names("main") == ["db"]
