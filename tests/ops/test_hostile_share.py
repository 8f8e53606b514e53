"""What a share holds is hostile: `ls` and `doctor` print it escaped (issue 21, item 8)."""

import json

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
    (leases / "forged.json").write_text(json.dumps(lease))


def test_ls_shows_a_planted_creator_and_host_escaped(host):
    """A created_by, a lease's host and a name with a newline and a clear-screen stay escaped."""
    plant(host)
    result = host.nfsvol("ls")
    assert "\x1b" not in result.stdout and "\x1b" not in result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, lines  # the header, web, and the planted name: no forged row
    web = next(line for line in lines if line.startswith("web "))
    assert web.count(ESCAPED) == 2, web  # CREATED_BY and HOSTS
    assert any(line.startswith(ESCAPED) for line in lines)


def test_doctor_shows_a_planted_name_escaped(host):
    """A metadata file named with a newline and a clear-screen is reported on one escaped line."""
    plant(host)
    result = host.nfsvol("doctor")
    assert "\x1b" not in result.stdout
    planted = [line for line in result.stdout.splitlines() if "metadata-without-dir" in line]
    assert len(planted) == 1 and f"main: {ESCAPED}: metadata but no directory" in planted[0]
    assert not any(line.startswith("forged") for line in result.stdout.splitlines())


def test_a_config_error_quoting_a_control_character_is_escaped(host):
    """A share name with a clear-screen in the config is quoted escaped in the error."""
    host.write_config('state_dir: /var/lib/x\nshares:\n  "\\e[2Jevil": {type: path, path: /srv}\n')
    for command in ("ls", "doctor"):
        result = host.nfsvol(command)
        assert result.returncode == 2, result.stderr
        assert "\x1b" not in result.stderr and "shares.\\x1b[2Jevil:" in result.stderr
