"""What `nfsvol serve` tells an operator: request logs, metrics and inspect's last_error."""

import json
import re
import socket
import subprocess
import time

from tests.ops.conftest import host_config
from tests.support.plugin import PluginProcess


def scrape(path, timeout=10):
    """GET /metrics over the unix socket, as a scraper behind a proxy would."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    return body.decode()


def sample(text, name, **labels):
    """The value of one sample in Prometheus text format (0 if absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def served(host, **overrides):
    config = host_config(host.tmp, host.scratch, **overrides)
    host.plugin = PluginProcess(config, host.tmp, host.servers.env)
    return host.plugin.start()


def test_errors_carry_the_request_id_of_their_log_line(host):
    """The ID at the end of an Err finds the request's JSON log line."""
    client = served(host)
    err = client.err("Mount", Name="nope", ID="c1")
    request_id = re.search(r" \[request ([0-9a-f]{12})\]$", err).group(1)
    lines = [
        json.loads(line.partition("nfsvol.requests: ")[2])
        for line in host.plugin.log_path.read_text().splitlines()
        if "nfsvol.requests: " in line
    ]
    (line,) = [entry for entry in lines if entry["request"] == request_id]
    assert (line["endpoint"], line["volume"], line["id"]) == ("Mount", "nope", "c1")
    assert line["outcome"] == "VolumeNotFound" and line["status"] == 500 and line["ms"] >= 0


def test_text_log_format_is_key_value(host):
    """log_format: text gives key=value pairs a terminal reader can scan."""
    client = served(host, log_format="text")
    client.ok("Create", Name="web")
    log = host.plugin.log_path.read_text()
    (line,) = [entry for entry in log.splitlines() if "endpoint=Create" in entry]
    assert re.search(r"nfsvol\.requests: request=[0-9a-f]{12} endpoint=Create volume=web", line)
    assert "outcome=ok" in line and "status=200" in line


def test_metrics_count_every_worker_and_mount_failures(host):
    """Counts from all gunicorn workers add up; failed servers and held mounts show."""
    sock = host.tmp / "run" / "metrics.sock"
    client = served(host, metrics={"socket": str(sock)})
    for i in range(12):
        client.ok("Create", Name=f"v{i}")
    client.ok("Mount", Name="v0", ID="c1")
    client.ok("Unmount", Name="v0", ID="c1")  # the last holder: the share is parked, then let go
    host.wait_unmounted()
    host.servers.down("nfs1")
    host.servers.down("nfs2")
    client.err("Mount", Name="v1", ID="c2")
    text = scrape(sock)
    assert sample(text, "nfsvol_requests_total", endpoint="Create", outcome="ok") == 12
    assert sample(text, "nfsvol_request_seconds_count", endpoint="Create") == 12
    assert sample(text, "nfsvol_mount_failures_total", server="nfs1") == 1
    assert sample(text, "nfsvol_mount_failures_total", server="nfs2") == 1
    assert sample(text, "nfsvol_requests_total", endpoint="Mount", outcome="MountFailed") == 1
    assert sample(text, "nfsvol_mounts_held", share="main") == 0
    assert oct(sock.stat().st_mode & 0o777) == "0o600"


def test_metrics_and_inspect_show_the_switch_to_the_next_server(host):
    """The first listed server is gone: the next Mount lands on the second, and says so."""
    sock = host.tmp / "run" / "metrics.sock"
    client = served(host, metrics={"socket": str(sock)})
    client.ok("Create", Name="data")
    client.ok("Mount", Name="data", ID="c1")
    assert sample(scrape(sock), "nfsvol_share_server", server="nfs1", share="main") == 1
    client.ok("Unmount", Name="data", ID="c1")
    host.wait_unmounted()
    host.servers.down("nfs1")
    client.ok("Mount", Name="data", ID="c2")
    text = scrape(sock)
    assert sample(text, "nfsvol_share_server", server="nfs2", share="main") == 1
    assert 'nfsvol_share_server{server="nfs1",share="main"}' not in text
    assert sample(text, "nfsvol_mount_failures_total", server="nfs1") == 1
    assert client.ok("Get", Name="data")["Volume"]["Status"]["server"] == "nfs2"


def test_inspect_shows_the_last_mount_error_with_its_time(host):
    """A failed Mount leaves last_error in the volume's Status on this host."""
    client = served(host)
    client.ok("Create", Name="data")
    host.wait_unmounted()
    host.servers.down("nfs1")
    host.servers.down("nfs2")
    err = client.err("Mount", Name="data", ID="c1")
    status = client.ok("Get", Name="data")["Volume"]["Status"]
    assert status["last_error"]["error"] in err
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", status["last_error"]["time"])


def test_the_monitor_starts_again_when_a_share_is_mounted_again(host):
    """Its thread ends once nothing is mounted; the next share mount must revive it."""
    client = served(host, health_interval=1, idle_unmount=1)
    client.ok("Create", Name="data")  # parks the share; released a second later
    host.wait_unmounted()
    time.sleep(3)  # a tick with nothing mounted: the monitor's thread ends
    client.ok("Mount", Name="data", ID="c1")
    started = time.monotonic()
    while "health" not in client.ok("Get", Name="data")["Volume"]["Status"]:
        assert time.monotonic() - started < 10, "the mounted share was never probed"
        time.sleep(0.2)
    client.ok("Unmount", Name="data", ID="c1")


def test_share_health_shows_in_metrics_and_inspect(host):
    """The background monitor probes the mounted share; a read-only remount is noticed."""
    sock = host.tmp / "run" / "metrics.sock"
    client = served(host, metrics={"socket": str(sock)}, health_interval=1)
    client.ok("Create", Name="data")
    client.ok("Mount", Name="data", ID="c1")
    deadline = time.monotonic() + 15
    while sample(scrape(sock), "nfsvol_share_healthy", share="main", state="ok") != 1:
        assert time.monotonic() < deadline, scrape(sock)
        time.sleep(0.2)
    subprocess.run(
        ["mount", "-o", "remount,ro,bind", str(host.state_dir / "mnt" / "main")], check=True
    )
    started = time.monotonic()
    while client.ok("Get", Name="data")["Volume"]["Status"]["health"]["state"] != "read-only":
        assert time.monotonic() - started < 15, client.ok("Get", Name="data")
        time.sleep(0.2)
    print(f"\n  read-only remount noticed after {time.monotonic() - started:.1f}s")
    assert sample(scrape(sock), "nfsvol_share_healthy", share="main", state="read-only") == 0
    assert 'state="read-only"} 0.0' in scrape(sock)


def test_skipped_share_files_are_counted_per_share(host):
    """Each read of a planted file counts, though the log says it once (issue 21, item 2)."""
    sock = host.tmp / "run" / "metrics.sock"
    client = served(host, metrics={"socket": str(sock)}, catalog_ttl=0.05)
    client.ok("Create", Name="web")
    volumes = host.export / ".nfsvol" / "volumes"
    (volumes / "junk.json").write_text("{not json")
    for _ in range(3):
        time.sleep(0.1)  # past catalog_ttl: each List syncs the share again
        client.ok("List")
        client.err("Get", Name="junk")
    assert sample(scrape(sock), "nfsvol_share_files_skipped_total", share="main") >= 3
    said = host.plugin.log_path.read_text().count("ignoring .nfsvol/volumes/junk.json")
    assert 1 <= said <= 2  # once per worker process
