"""docker-compose, brought up by pytest-docker, with a volume declared `driver: nfsvol`."""

from pathlib import Path

import pytest

pytestmark = pytest.mark.docker
PROJECT = "nfsvolcompose"


@pytest.fixture(scope="session")
def docker_compose_command(bed):
    return f"docker-compose -H unix://{bed.daemon.socket}"


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(Path(__file__).with_name("compose.yml"))


@pytest.fixture(scope="session")
def docker_compose_project_name():
    return PROJECT


@pytest.fixture(scope="session")
def docker_setup():
    return ["up -d"]  # compose v1 (Debian's docker-compose) has no --wait


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
