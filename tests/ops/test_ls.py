"""`nfsvol ls`: volumes read from the shares, with this host's users, without dockerd."""

import json


def test_lists_volumes_with_share_creator_and_users(host):
    """Volumes made through the plugin are listed, with the mount IDs holding them here."""
    client = host.start_plugin()
    client.ok("Create", Name="web")
    client.ok("Create", Name="notes", Opts={"share": "scratch"})
    client.ok("Mount", Name="web", ID="ctr1")
    host.plugin.kill()  # ls needs neither the plugin nor dockerd
    result = host.nfsvol("ls", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"web", "notes"}
    assert rows["web"]["share"] == "main" and rows["web"]["users"] == ["ctr1"]
    assert rows["notes"]["share"] == "scratch" and rows["notes"]["users"] == []
    assert rows["web"]["created_by"] and rows["web"]["created_at"].endswith("Z")
    assert rows["web"]["hosts"] == [rows["web"]["created_by"]]  # its lease, read from the share
    assert rows["notes"]["hosts"] == [] and rows["notes"]["access"] == "shared"
    assert "size" not in rows["web"]


def test_table_shows_a_header_and_a_line_per_volume(host):
    """The default output is an aligned table."""
    client = host.start_plugin()
    client.ok("Create", Name="data")
    result = host.nfsvol("ls")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHARE", "CREATED_BY", "CREATED_AT", "USERS", "HOSTS"]
    assert lines[1].split()[:2] == ["data", "main"] and lines[1].split()[-2:] == ["0", "-"]


def test_sizes_count_the_bytes_in_each_volume(host):
    """--sizes adds each volume's disk usage, computed under the timeout."""
    client = host.start_plugin()
    client.ok("Create", Name="big")
    (host.export / "big" / "blob").write_bytes(b"x" * 300_000)
    result = host.nfsvol("ls", "--json", "--sizes")
    (row,) = json.loads(result.stdout)
    assert row["size"] >= 300_000 and row["size_error"] == ""
    table = host.nfsvol("ls", "--sizes").stdout.splitlines()
    assert table[0].split()[-1] == "SIZE" and table[1].split()[-1].endswith("K")


def test_a_dead_share_is_reported_and_the_others_still_listed(host):
    """With every server of main down, scratch's volumes show and the exit code is 1."""
    client = host.start_plugin()
    client.ok("Create", Name="local", Opts={"share": "scratch"})
    host.plugin.kill()
    host.servers.down("nfs1")
    host.servers.down("nfs2")
    result = host.nfsvol("ls", "--json")
    assert result.returncode == 1
    assert [row["name"] for row in json.loads(result.stdout)] == ["local"]
    assert "share 'main': no server could be mounted" in result.stderr
