"""Pure checks of what nfsvol reads back from a share (issue 21): table-tested, no I/O."""

from typing import Any

import pytest

from nfsvol.validate import LEASE_TTL_MAX, lease_problem, owner_generation, record_problem

GOOD_RECORD = {
    "name": "db",
    "share": "main",
    "created_at": "2026-01-01T00:00:00Z",
    "created_by": "h1",
    "options": {"share": "main", "uid": "4"},
}
GOOD_LEASE = {"host": "h1", "since": "t0", "renewed": "t1", "ttl": 30, "token": "ab"}


def rec(**changes: Any) -> dict[str, Any]:
    """The good record with some fields changed (None: removed)."""
    data = {**GOOD_RECORD, **changes}
    return {k: v for k, v in data.items() if v is not None}


def lea(**changes: Any) -> dict[str, Any]:
    """The good lease with some fields changed."""
    return {**GOOD_LEASE, **changes}


RECORDS = [
    pytest.param(GOOD_RECORD, "db.json", None, id="good"),
    pytest.param(rec(created_by=None, options=None), "db.json", None, id="old-without-optional"),
    pytest.param([], "db.json", "list", id="array"),
    pytest.param(None, "db.json", "NoneType", id="null"),
    pytest.param("db", "db.json", "str", id="string"),
    pytest.param(rec(name="../../etc/x"), "db.json", "not a volume name", id="name-dotdot"),
    pytest.param(rec(name="/etc/x"), "db.json", "not a volume name", id="name-absolute"),
    pytest.param(rec(name=".nfsvol"), "db.json", "not a volume name", id="name-dot"),
    pytest.param(rec(name=5), "db.json", "not a volume name", id="name-number"),
    pytest.param(rec(name="x" * 201), "db.json", "not a volume name", id="name-too-long"),
    pytest.param(rec(name="other"), "db.json", "does not match", id="name-not-file"),
    pytest.param(GOOD_RECORD, "db", "does not match", id="file-without-suffix"),
    pytest.param(rec(share="../x"), "db.json", "is not 'main'", id="share-dotdot"),
    pytest.param(rec(share="/tmp"), "db.json", "is not 'main'", id="share-absolute"),
    pytest.param(rec(share="scratch"), "db.json", "is not 'main'", id="share-other"),
    pytest.param(rec(share=None), "db.json", "is not 'main'", id="share-missing"),
    pytest.param(rec(created_at=None), "db.json", "created_at", id="created-at-missing"),
    pytest.param(rec(created_at=5), "db.json", "created_at", id="created-at-number"),
    pytest.param(rec(created_at="t" * 2000), "db.json", "created_at", id="created-at-huge"),
    pytest.param(rec(created_by=[]), "db.json", "created_by", id="created-by-list"),
    pytest.param(rec(options="x"), "db.json", "not an object", id="options-string"),
    pytest.param(rec(options={"evil": "1"}), "db.json", "not a volume option", id="option-unknown"),
    pytest.param(rec(options={"uid": 4}), "db.json", "not a volume option", id="option-number"),
]


@pytest.mark.parametrize(("data", "file", "problem"), RECORDS)
def test_record_problem(data, file, problem):
    """A record counts only if every field is sane and it names its own file and share."""
    found = record_problem(data, file, "main")
    assert (found is None) if problem is None else (found is not None and problem in found)


LEASES = [
    pytest.param(GOOD_LEASE, "h1.json", None, id="good-host-file"),
    pytest.param(lea(host="h2"), "owner.3.json", None, id="good-owner-file"),
    pytest.param(lea(ttl=0.5), "h1.json", None, id="ttl-float"),
    pytest.param({}, "h1.json", "host", id="empty-object"),
    pytest.param([], "h1.json", "list", id="array"),
    pytest.param(None, "h1.json", "NoneType", id="null"),
    pytest.param(dict.fromkeys(GOOD_LEASE), "h1.json", "host", id="all-null"),
    pytest.param(lea(host=5), "h1.json", "host", id="host-number"),
    pytest.param(lea(host=""), "h1.json", "empty", id="host-empty"),
    pytest.param(lea(token=""), "h1.json", "empty", id="token-empty"),
    pytest.param(lea(since=None), "h1.json", "since", id="since-null"),
    pytest.param(lea(renewed=[1]), "h1.json", "renewed", id="renewed-list"),
    pytest.param(lea(ttl="30"), "h1.json", "ttl", id="ttl-string"),
    pytest.param(lea(ttl=True), "h1.json", "ttl", id="ttl-bool"),
    pytest.param(lea(ttl=0), "h1.json", "ttl", id="ttl-zero"),
    pytest.param(lea(ttl=-5), "h1.json", "ttl", id="ttl-negative"),
    pytest.param(lea(ttl=LEASE_TTL_MAX * 2), "h1.json", "ttl", id="ttl-absurd"),
    pytest.param(lea(ttl=float("nan")), "h1.json", "ttl", id="ttl-nan"),
    pytest.param(lea(host="h2"), "h1.json", "does not match", id="host-not-file"),
]


@pytest.mark.parametrize(("data", "file", "problem"), LEASES)
def test_lease_problem(data, file, problem):
    """A lease counts only if every field has its type and range and a host file names its host."""
    found = lease_problem(data, file)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("file", "generation"),
    [
        ("owner.1.json", 1),
        ("owner.42.json", 42),
        ("owner.1000000000.json", 10**9),
        ("owner.1000000001.json", None),  # past the bound: planted, not earned
        ("owner.999999999999.json", None),
        ("owner.0.json", None),  # generations start at 1
        ("owner.01.json", None),  # one spelling per generation
        ("owner.-1.json", None),
        ("owner.1.json.tmp", None),
        ("owner..json", None),
        ("h1.json", None),
    ],
)
def test_owner_generation(file, generation):
    """Only owner files with a sane generation (1 to 10^9, no leading zero) count."""
    assert owner_generation(file) == generation
