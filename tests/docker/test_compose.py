"""Compose, brought up by pytest-docker, with a volume declared `driver: nfsvol`.

Each engine's own Compose: v1 (`docker-compose`) with 20.10, v2 with 26.1.
Both find the bed's dockerd through DOCKER_HOST (v2 has no -H).
"""

import os
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.docker.conftest import unique
from tests.support.plugin import PluginProcess

pytestmark = pytest.mark.docker
PROJECT = "nfsvolcompose"


def _host(bed) -> str:
    return f"unix://{bed.daemon.socket}"


@pytest.fixture(scope="session")
def docker_compose_command(bed):
    return f"DOCKER_HOST={shlex.quote(_host(bed))} {shlex.join(bed.engine.compose)}"


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(Path(__file__).with_name("compose.yml"))


@pytest.fixture(scope="session")
def docker_compose_project_name():
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup():
    return ["up -d"]  # compose v1 (Debian 12's docker-compose) has no --wait


def _page(bed) -> str:
    ids = bed.docker(
        "ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"
    ).stdout.split()
    if not ids:
        return ""
    result = bed.docker("exec", ids[0], "wget", "-qO-", "http://127.0.0.1/index.html", check=False)
    return result.stdout if result.returncode == 0 else ""


def test_compose_service_serves_from_an_nfsvol_volume(bed, docker_services):
    """compose up creates the nfsvol volume, the service serves from it, the file is on the share."""
    try:
        docker_services.wait_until_responsive(check=lambda: _page(bed) != "", timeout=60, pause=0.5)
    except Exception:
        print(bed.docker("ps", "-a").stdout, bed.docker("volume", "ls").stdout)
        raise
    assert _page(bed) == "<h1>compose</h1>\n"
    volume = f"{PROJECT}_site"
    driver = bed.docker("volume", "inspect", "-f", "{{.Driver}}", volume).stdout.strip()
    assert driver == "nfsvol"
    assert (bed.share / volume / "index.html").read_text() == "<h1>compose</h1>\n"


def test_a_compose_service_finds_a_volume_made_on_another_host(bed, tmp_path):
    """Host a (a second nfsvol on the same share) makes and fills a volume; compose on
    this host, which never listed it, runs a service on it declared `external`."""
    name = unique("made-on-a")
    config = {**yaml.safe_load(bed.plugin.config_path.read_text())}
    config["state_dir"] = str(tmp_path / "state")
    host_a = PluginProcess(config, tmp_path, bed.servers.env, host="host-a")
    try:
        status, body = host_a.start().call("Create", Name=name)
        assert status == 200, body
    finally:
        host_a.kill()
    (bed.share / name / "f").write_text("from-a\n")  # what a's container wrote
    compose = bed.engine.compose
    file = str(Path(__file__).with_name("compose-external.yml"))
    argv = [*compose, "-f", file, "-p", "nfsvolexternal", "up", "--exit-code-from", "reader"]
    env = {**os.environ, "NFSVOL_VOLUME": name, "DOCKER_HOST": _host(bed)}
    try:
        up = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
    finally:
        down = [*compose, "-f", file, "-p", "nfsvolexternal", "down"]
        subprocess.run(down, env=env, capture_output=True, timeout=120, check=False)
    assert (bed.share / name / "read-by-compose").read_text() == "from-a\n"
    assert bed.docker("volume", "inspect", "-f", "{{.Driver}}", name).stdout.strip() == "nfsvol"
    assert bed.count(name, "Get") >= 1 and bed.count(name, "Create", ok_only=False) == 0
    bed.docker("volume", "rm", name)
