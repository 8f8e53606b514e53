"""The failover drill: host A is powered off, host B carries on with every byte."""

import pytest

from testbed.drill import run_drill

pytestmark = pytest.mark.hosts


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
        f"  failover {report.failover_s:.1f}s (plain container start on b "
        f"{report.plain_start_b_s:.1f}s), host a back in {report.a_boot_s:.1f}s"
    )
