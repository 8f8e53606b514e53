"""`nfsvol doctor`: a deliberately broken host is diagnosed, and --fix loses no data."""

import hashlib
import json
import subprocess

from nfsvol.share.leases import LOST
from tests.fakes.servers import mounted_below


def digest(root):
    """SHA-256 of every file below `root`, by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".nfsvol" not in p.parts
    }


def break_host(host):
    """Volumes with data, then every kind of damage a crash or a hand can leave."""
    client = host.start_plugin()
    client.ok("Create", Name="kept")
    (host.export / "kept" / "data.bin").write_bytes(b"precious" * 1000)
    client.ok("Create", Name="nodir")
    host.plugin.kill()
    # As if killed between mount.nfs and writing its record: mounted, held by nobody.
    (host.state_dir / "mounts" / "main.json").unlink()
    (host.export / "nodir").rmdir()  # metadata without a directory
    (host.export / "handmade").mkdir()  # a directory without metadata
    (host.export / "handmade" / "notes.txt").write_text("keep me")
    cache = host.state_dir / "cache" / "main"
    (cache / "kept.json").unlink()
    (cache / "bogus.json").write_text(
        json.dumps({"name": "bogus", "share": "main", "created_at": "x"})
    )


def kinds(output):
    return sorted({line.split()[1] for line in output.splitlines() if line.startswith("  ")})


def test_a_healthy_host_is_ok(host):
    """No damage: nothing to report, exit 0."""
    host.start_plugin().ok("Create", Name="fine")
    result = host.nfsvol("doctor")
    assert result.returncode == 0, result.stdout
    assert "verdict: OK" in result.stdout


def test_names_each_inconsistency(host):
    """Orphan mount, both halves of a volume missing, and a stale cache are named."""
    break_host(host)
    result = host.nfsvol("doctor")
    assert result.returncode == 1
    assert kinds(result.stdout) == [
        "cannot-verify", "dir-without-metadata", "metadata-without-dir", "orphan-mount",
        "stale-cache",
    ]  # fmt: skip
    assert "main: handmade: a directory without metadata" in result.stdout
    assert "`docker volume rm nodir` drops it" in result.stdout
    assert "1 gone from the share, 1 missing, 0 outdated" in result.stdout
    assert "verdict: 4 inconsistency(ies), 2 fixable with --fix" in result.stdout


def test_fix_repairs_what_is_safe_and_keeps_every_byte(host):
    """--fix unmounts the orphan and rebuilds the cache; data and metadata stay."""
    break_host(host)
    before = digest(host.export)
    result = host.nfsvol("doctor", "--fix")
    assert f"fixed: unmounted {host.state_dir / 'mnt' / 'main'}" in result.stdout
    assert "fixed: rebuilt the cache of share main (2 volume(s))" in result.stdout
    after = result.stdout.split("after repair:", 1)[1]
    assert kinds(after) == ["cannot-verify", "dir-without-metadata", "metadata-without-dir"]
    assert result.returncode == 1  # what is left needs a human
    assert mounted_below(host.state_dir) == []
    assert digest(host.export) == before
    assert (host.export / ".nfsvol" / "volumes" / "nodir.json").exists()
    cached = sorted(p.name for p in (host.state_dir / "cache" / "main").glob("*.json"))
    assert cached == ["kept.json", "nodir.json"]
    # The operator settles the rest through Docker's own verbs; then all is well.
    client = host.start_plugin()
    client.ok("Create", Name="handmade")
    client.ok("Remove", Name="nodir")
    final = host.nfsvol("doctor")
    assert final.returncode == 0, final.stdout
    assert (host.export / "handmade" / "notes.txt").read_text() == "keep me"


def test_counts_it_cannot_verify_are_kept(host):
    """Without dockerd, a held count is a note, and --fix leaves it alone."""
    client = host.start_plugin()
    client.ok("Create", Name="busy")
    client.ok("Mount", Name="busy", ID="ctr-9")
    host.plugin.kill()
    result = host.nfsvol("doctor", "--fix", "--docker-host", f"unix://{host.tmp}/no.sock")
    assert result.returncode == 0, result.stdout
    assert "note cannot-verify" in result.stdout and "held by ctr-9" in result.stdout
    # Once, not per volume or share: no dockerd to ask for its local volumes either.
    no_local = "note cannot-verify        dockerd: local volumes: not checked for volumes hiding"
    assert result.stdout.count(no_local) == 1, result.stdout
    assert f"(dockerd is not running here (no {host.tmp}/no.sock))" in result.stdout
    users = host.state_dir / "users" / "main" / "busy.json"
    assert json.loads(users.read_text())["ids"] == {"ctr-9": 1}
    kept = [host.state_dir / "mnt" / "main", host.state_dir / "vol" / "main" / "busy"]
    assert mounted_below(host.state_dir) == [str(p) for p in kept]  # the share, and the pin


def test_held_volumes_on_an_unmounted_share_are_named(host):
    """A share unmounted under its containers' feet is reported, not hidden."""
    client = host.start_plugin()
    client.ok("Create", Name="busy")
    client.ok("Mount", Name="busy", ID="ctr-1")
    host.plugin.kill()
    subprocess.run(["umount", str(host.state_dir / "mnt" / "main")], check=True)
    result = host.nfsvol("doctor")
    assert result.returncode == 1
    assert "held-not-mounted" in result.stdout and "busy" in result.stdout


def test_a_lost_lease_is_reported(host):
    """A single-host volume taken over by another host shows as lease-lost."""
    client = host.start_plugin()
    client.ok("Create", Name="db", Opts={"access": "single-host"})
    client.ok("Mount", Name="db", ID="c1")
    host.plugin.kill()
    assert "lease-lost" not in kinds(host.nfsvol("doctor").stdout)
    own = host.state_dir / "leases" / "main" / "db.json"
    data = json.loads(own.read_text())
    data["lease"]["token"] = LOST  # what the plugin records when it is fenced
    own.write_text(json.dumps(data))
    result = host.nfsvol("doctor")
    assert "lease-lost" in kinds(result.stdout), result.stdout
