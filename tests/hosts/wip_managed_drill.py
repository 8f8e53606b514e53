# Not collected yet (file name): the drill failed in the last bed run (host a's
# first `docker volume inspect` after its reboot and reinstall said "No such
# volume"); the drill now waits until a lists the volume, not yet re-run.
"""The failover drill with the managed plugin on both hosts."""

import pytest

from testbed.drill import run_drill
from tests.hosts.test_managed_plugin import NAME, SHARE, managed  # noqa: F401 (a fixture)

pytestmark = pytest.mark.hosts


def test_failover_drill_with_the_managed_plugin(managed):  # noqa: F811 (the fixture)
    """The failover drill with the managed plugin on both hosts; a reinstalls it after boot."""
    report = run_drill(managed, say=lambda line: print("  " + line), driver=NAME, share=SHARE)
    assert len(report.manifest_a) == 13
    assert report.listed_on_b
    assert report.manifest_b == report.manifest_a
    assert report.page_a == report.page_b == "<h1>served from nfsvol</h1>\n"
    assert report.a_users_after_boot == "[]"
    assert report.a_mounts_after_boot == []
    assert report.manifest_a_after == report.manifest_a
    assert report.on_server == report.manifest_a
    print(
        f"  failover {report.failover_s:.1f}s, host a back (with the plugin) in {report.a_boot_s:.0f}s"
    )
