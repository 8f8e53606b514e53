"""The failover drill: host A is powered off, host B carries on with every byte."""

import pytest

from testbed.cluster import LEASE_TTL
from testbed.drill import run_drill

pytestmark = [pytest.mark.hosts, pytest.mark.servers("ganesha", "knfsd")]


def test_failover_drill(cluster):
    """B lists the volume, reads an identical manifest and serves the pages; A reconciles."""
    report = run_drill(cluster, say=lambda line: print("  " + line))
    assert len(report.manifest_a) == 13
    assert report.listed_on_b
    assert report.manifest_b == report.manifest_a
    assert report.page_a == report.page_b == "<h1>served from nfsvol</h1>\n"
    assert report.a_users_after_boot == "[]"
    assert report.a_mounts_after_boot == []
    assert report.manifest_a_after == report.manifest_a
    assert report.on_server == report.manifest_a
    print(
        f"  failover {report.failover_s:.1f}s = waiting {report.lease_wait_s:.1f}s + the "
        f"container's run {report.start_s:.1f}s (plain container start on b "
        f"{report.plain_start_b_s:.1f}s), host a back in {report.a_boot_s:.1f}s"
    )


def test_failover_drill_single_host(cluster):
    """A single-host volume: b is refused until a's lease expires, then takes over."""
    report = run_drill(cluster, say=lambda line: print("  " + line), access="single-host")
    assert report.manifest_b == report.manifest_a and len(report.manifest_a) == 13
    assert report.refusals_on_b and all("is held by host 'a'" in r for r in report.refusals_on_b)
    assert report.lease_wait_s >= LEASE_TTL  # never before a's lease could have expired
    assert report.page_b == "<h1>served from nfsvol</h1>\n"
    assert "is held by host 'b'" in report.refusal_on_a
    assert report.manifest_a_after == report.manifest_a == report.on_server
    assert report.a_users_after_boot == "[]" and report.a_mounts_after_boot == []
    print(
        f"  single-host failover {report.failover_s:.1f}s = waiting for a's lease "
        f"{report.lease_wait_s:.1f}s (lease_ttl {LEASE_TTL}s, {len(report.refusals_on_b)} "
        f"refused runs) + the container's run {report.start_s:.1f}s"
    )
