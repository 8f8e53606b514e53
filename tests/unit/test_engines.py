"""The test bed's Docker Engines: which one NFSVOL_BED_ENGINE picks, and where it lives."""

from pathlib import Path

import pytest

from testbed.engines import ENV_ENGINE, Engine, chosen

MIRROR = "http://deb.debian.org/debian"


@pytest.mark.parametrize(
    ("setting", "version"),
    [
        ("20.10", "20.10"),  # the machine's own docker.io: nothing fetched
        ("26.1", "26.1"),
        (None, "26.1"),  # unset: the Engine users run today
    ],
)
def test_the_setting_picks_the_engine(monkeypatch, setting, version):
    if setting is None:
        monkeypatch.delenv(ENV_ENGINE, raising=False)
    else:
        monkeypatch.setenv(ENV_ENGINE, setting)
    # scripts/setup fetched 26.1 into the default cache; 20.10 needs none.
    engine = chosen(Path("/var/cache/nfsvol-testbed"), MIRROR)
    assert engine.version == version
    assert Path(engine.dockerd).is_file(), engine


def test_an_unknown_engine_is_refused_naming_the_value_and_the_choices(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_ENGINE, "27")
    with pytest.raises(RuntimeError, match=r"NFSVOL_BED_ENGINE='27': use one of 26\.1, 20\.10"):
        chosen(tmp_path, MIRROR)
    assert list(tmp_path.iterdir()) == []  # nothing fetched


def test_the_fetched_engine_runs_its_own_binaries_and_the_machine_runc():
    engine = Engine("26.1", Path("/opt/e"))
    assert engine.dockerd == "/opt/e/usr/sbin/dockerd" and engine.docker == "/opt/e/usr/bin/docker"
    path = engine.env({"PATH": "/usr/sbin:/usr/bin"})["PATH"]
    assert path == "/opt/e/usr/sbin:/opt/e/usr/bin:/usr/sbin:/usr/bin"  # runc from /usr/sbin
    assert Engine("20.10", None).env({"PATH": "/usr/bin"})["PATH"] == "/usr/bin"
