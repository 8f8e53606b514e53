"""`nfsvol check`: the config with its lines, then every share probed under a timeout."""

import time

import pytest

from tests.fakes.servers import mounted_below
from tests.ops.conftest import host_config, protect

BAD_CONFIG = """\
state_dir: var/lib/nfsvol
colour: red
shares:
  main:
    type: nfs
    servers: ["nfs1;reboot"]
    export: /srv/docker
    options: [suid]
  scratch:
    type: cifs
log_format: xml
metrics: {port: 99999}
"""


def test_all_well_exits_zero_and_leaves_no_mount(host):
    """Every server and the path share answer: verdict OK, exit 0, probes unmounted."""
    result = host.nfsvol("check")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert (
        "ok    share main via nfs1: mounted nfs1:/srv/docker (-o vers=4.1,nosuid,nodev,lookupcache=positive)"
        in out
    )
    assert "ok    share main via nfs2: writable; 0 volume(s) with metadata" in out
    assert f"ok    share scratch at {host.scratch}: writable" in out
    assert out.rstrip().endswith("check(s) passed")
    assert mounted_below(host.tmp) == [str(host.scratch)]  # the path share's own mount
    assert list((host.tmp / "probes").iterdir()) == []
    assert not any(p.name.startswith(".nfsvol-probe") for p in host.export.iterdir())


def test_every_config_problem_is_reported_with_its_line(host):
    """A broken config: each problem at once, each with its YAML line; exit 2."""
    host.write_config(BAD_CONFIG)
    result = host.nfsvol("check")
    assert result.returncode == 2
    lines = [line.strip() for line in result.stdout.splitlines() if "FAIL" in line]
    assert [line.split(":", 2)[1].strip() for line in lines] == [
        "default_share",
        "line 1",
        "line 2",
        "line 6",
        "line 8",
        "line 10",
        "line 11",
        "line 12",
    ]  # a missing key has no line
    assert "shares.main.servers: 'nfs1;reboot' is not a host name" in result.stdout
    assert "log_format: 'xml' is not one of: json, text" in result.stdout
    assert "verdict: NOT OK: 8 failure(s)" in result.stdout


def test_a_dead_server_fails_the_check(host):
    """One server down: its line says FAIL with mount.nfs's words, exit 1."""
    host.servers.down("nfs2")
    result = host.nfsvol("check")
    assert result.returncode == 1
    assert "FAIL  share main via nfs2: mounting nfs2:/srv/docker" in result.stdout
    assert "Connection refused" in result.stdout
    assert "ok    share main via nfs1: mounted" in result.stdout


def test_a_hanging_server_is_given_up_on_time(host):
    """A server that never answers costs mount_timeout (5s), and its helper is killed."""
    host.servers.hang("nfs2")
    started = time.monotonic()
    result = host.nfsvol("check")
    assert time.monotonic() - started < 25
    assert result.returncode == 1
    assert "FAIL  share main via nfs2:" in result.stdout
    assert "did not finish within 5s and was killed" in result.stdout
    assert host.servers.helpers() == []


def test_a_missing_path_share_fails_with_the_fix(host):
    """A path share whose directory is absent is named, with what to do."""
    host.write_config(host_config(host.tmp, host.tmp / "absent"))
    result = host.nfsvol("check")
    assert result.returncode == 1
    assert "is not a directory; mount the export there first" in result.stdout


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("check", ["--config", "--timeout", "root-squashed"]),
        ("ls", ["--json", "--sizes", "--config"]),
        ("doctor", ["--fix", "--docker-host", "never deletes data"]),
        ("serve", ["--socket", "--workers"]),
    ],
)
def test_every_command_has_help(host, command, words):
    """`nfsvol COMMAND --help` explains the command and its options."""
    result = host.nfsvol(command, "--help")
    assert result.returncode == 0
    for word in words:
        assert word in result.stdout


def test_a_path_share_mounted_without_nosuid_nodev_fails(host):
    """A path share whose mount allows setuid and devices: FAIL naming it, its mount and the fix."""
    protect(host.scratch, "suid,dev")
    result = host.nfsvol("check")
    assert result.returncode == 1, result.stdout
    fail = [line for line in result.stdout.splitlines() if line.startswith("  FAIL")]
    assert len(fail) == 1, result.stdout
    assert f"share scratch at {host.scratch}: path share 'scratch'" in fail[0]
    assert f"is on {host.scratch}, mounted without nosuid,nodev" in fail[0]
    assert f"run `mount -o remount,nosuid,nodev {host.scratch}`" in fail[0]


def test_only_the_missing_flag_is_named(host):
    """nodev but not nosuid: the finding names nosuid alone."""
    protect(host.scratch, "suid,nodev")
    result = host.nfsvol("check")
    assert result.returncode == 1
    assert "mounted without nosuid: a container could plant" in result.stdout


def test_serve_logs_an_error_for_an_unprotected_path_share(host):
    """`nfsvol serve` starts, and logs an ERROR naming the share, its mount and the fix."""
    protect(host.scratch, "suid,dev")
    host.start_plugin()
    errors = [line for line in host.plugin.log_path.read_text().splitlines() if " ERROR " in line]
    assert any(
        "path share 'scratch'" in line and f"remount,nosuid,nodev {host.scratch}" in line
        for line in errors
    ), errors
