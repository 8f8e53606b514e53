"""What a share holds is hostile: `ls` and `doctor` print it escaped (issue 21, item 8)."""

import json
import os

FORGED = "evil\nforged  main  root  2026-01-01T00:00:00Z  0  -\x1b[2J"
ESCAPED = "evil\\nforged  main  root  2026-01-01T00:00:00Z  0  -\\x1b[2J"


def plant(host) -> None:
    """A real volume, then a record and a lease for it rewritten as a hostile host would."""
    host.start_plugin().ok("Create", Name="web")
    host.plugin.kill()
    volumes = host.export / ".nfsvol" / "volumes"
    record = json.loads((volumes / "web.json").read_text())
    (volumes / "web.json").write_text(json.dumps({**record, "created_by": FORGED}))
    (volumes / f"{FORGED}.json").write_text(json.dumps({**record, "name": FORGED}))
    leases = host.export / ".nfsvol" / "leases" / "web"
    leases.mkdir(parents=True, exist_ok=True)
    lease = {"host": FORGED, "since": "x", "renewed": "x", "ttl": 60.0, "token": "t"}
    (leases / "owner.1.json").write_text(json.dumps(lease))  # an owner file names any host


def test_ls_shows_a_planted_creator_and_host_escaped(host):
    """A created_by and a lease's host with a newline and a clear-screen stay escaped;
    a record named so is no volume, and is reported escaped on stderr."""
    plant(host)
    result = host.nfsvol("ls")
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines  # the header and web: no forged row
    assert lines[1].startswith("web ") and lines[1].count(ESCAPED) == 2, lines  # CREATED_BY, HOSTS
    assert "not a volume name" in result.stderr


def test_doctor_shows_a_planted_name_escaped(host):
    """A metadata file named with a newline and a clear-screen is skipped, said on one escaped line."""
    plant(host)
    result = host.nfsvol("doctor")
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    assert not any(line.startswith("forged") for line in result.stdout.splitlines())
    ignored = [line for line in result.stderr.splitlines() if "not a volume name" in line]
    assert len(ignored) == 1, result.stderr


def test_a_config_error_quoting_a_control_character_is_escaped(host):
    """A share name with a clear-screen in the config is quoted escaped in the error."""
    host.write_config('state_dir: /var/lib/x\nshares:\n  "\\e[2Jevil": {type: path, path: /srv}\n')
    for command in ("ls", "doctor"):
        result = host.nfsvol(command)
        assert result.returncode == 2, result.stderr
        assert "\x1b" not in result.stderr and "shares.\\x1b[2Jevil:" in result.stderr


def test_doctor_names_every_skipped_file_with_its_path_and_the_fix(host):
    """Files nfsvol ignores are rows of doctor's report, not only stderr (issue 21, item 2)."""
    host.start_plugin().ok("Create", Name="web")
    host.plugin.kill()
    volumes = host.export / ".nfsvol" / "volumes"
    (volumes / "junk.json").write_text("{not json")
    os.mkfifo(volumes / "pipe.json")
    record = json.loads((volumes / "web.json").read_text())
    (volumes / "alias.json").write_text(json.dumps(record))  # its name is web, not alias
    result = host.nfsvol("doctor")
    rows = [line.split(None, 3) for line in result.stdout.splitlines() if "bad-share-file" in line]
    assert [(mark, share, rest.split(":")[0]) for mark, _, share, rest in rows] == [
        ("WARN", "main:", ".nfsvol/volumes/alias.json"),
        ("WARN", "main:", ".nfsvol/volumes/junk.json"),
        ("WARN", "main:", ".nfsvol/volumes/pipe.json"),
    ], result.stdout
    assert all("then delete it" in rest for *_, rest in rows), result.stdout
    assert "metadata-without-dir" not in result.stdout  # files, not volumes
    assert result.returncode != 0 and "verdict: " in result.stdout
    assert "web" in host.nfsvol("ls").stdout  # the good volume is unaffected
