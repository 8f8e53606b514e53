"""Values read from the share reach Docker's Err and the plugin log escaped (issue 21, item 8)."""

import json

FORGED_LINE = "2026-12-03 17:00:00,000 ERROR nfsvol.driver: volume vv: lease lost"
SINCE = f"x\n{FORGED_LINE}\x1b[2J"


def test_a_planted_lease_cannot_forge_an_err_or_a_log_line(served):
    """A lease's `since` with a newline and a clear-screen is escaped in the Err and the log."""
    served.client.ok("Create", Name="vv")
    leases = served.export / ".nfsvol" / "leases" / "vv"
    leases.mkdir(parents=True, exist_ok=True)
    lease = {"host": "other", "since": SINCE, "renewed": "y", "ttl": 600.0, "token": "t"}
    (leases / "other.json").write_text(json.dumps(lease))
    err = served.client.err("Remove", Name="vv")
    assert "is held by host 'other'" in err
    assert f"since x\\n{FORGED_LINE}\\x1b[2J, renewed y" in err
    log = served.process.log_path.read_text()
    assert "\x1b" not in log
    assert not any(line.startswith(FORGED_LINE) for line in log.splitlines())
    assert any("VolumeInUse" in line and f"x\\n{FORGED_LINE}" in line for line in log.splitlines())
