"""The managed plugin's settings: NFSVOL_* variables into a Config, and the manifest."""

import json
from pathlib import Path

import pytest

from nfsvol.cli import main
from nfsvol.config import ShareType
from nfsvol.envconfig import ENV_CONFIG, ENV_SHARE, ENV_TOP, config_from_env
from nfsvol.errors import ConfigError

MANIFEST = json.loads((Path(__file__).resolve().parents[2] / "config.json").read_text())
# What `docker plugin install` gives the entrypoint when no setting was changed.
DEFAULTS = {e["name"]: e["value"] for e in MANIFEST["env"]}
ONE_SHARE = {"NFSVOL_SERVERS": "nfs1", "NFSVOL_EXPORT": "/srv/docker"}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            ONE_SHARE,
            {"servers": ("nfs1",), "export": "/srv/docker", "version": "4.1", "options": ()},
        ),
        ({**ONE_SHARE, "NFSVOL_SERVERS": "nfs1, nfs2"}, {"servers": ("nfs1", "nfs2")}),
        ({**ONE_SHARE, "NFSVOL_SERVERS": " nfs1  nfs2 "}, {"servers": ("nfs1", "nfs2")}),
        ({**ONE_SHARE, "NFSVOL_OPTIONS": "hard, timeo=600"}, {"options": ("hard", "timeo=600")}),
        ({**ONE_SHARE, "NFSVOL_VERSION": "3"}, {"version": "3"}),
        ({**ONE_SHARE, "NFSVOL_ON_REMOVE": "retain"}, {"on_remove": "retain"}),
        ({**ONE_SHARE, "NFSVOL_VERSION": ""}, {"version": "4.1"}),  # empty means unset
        ({**ONE_SHARE, "PATH": "/bin", "HOME": "/"}, {"export": "/srv/docker"}),
    ],
)
def test_one_share_settings(env, expected):
    """NFSVOL_SERVERS and NFSVOL_EXPORT (plus optional settings) make one share, `main`."""
    config = config_from_env(env)
    assert config.share_names == ("main",) and config.default_share == "main"
    share = config.share("main")
    assert share.type is ShareType.NFS
    assert {key: getattr(share, key) for key in expected} == expected


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("shares: {s: {type: path, path: /srv}}", lambda c: c.share("s").path == "/srv"),
        ('{"catalog_ttl": 2, "shares": {"m": {"type": "path", "path": "/x"}}}', lambda c: c.catalog_ttl == 2),
        ("shares:\n  a: {type: path, path: /a}\n  b: {type: path, path: /b}\ndefault_share: b\n",
         lambda c: c.default_share == "b"),
    ],
)  # fmt: skip
def test_whole_config_as_yaml_text(text, check):
    """NFSVOL_CONFIG holds a whole config as YAML (or JSON) text."""
    assert check(config_from_env({ENV_CONFIG: text}))


@pytest.mark.parametrize(
    ("env", "check"),
    [
        ({**ONE_SHARE, "NFSVOL_STATE_DIR": "/var/lib/x"}, lambda c: str(c.state_dir) == "/var/lib/x"),
        ({**ONE_SHARE, "NFSVOL_LOG_LEVEL": "debug"}, lambda c: c.log_level == "debug"),
        ({**ONE_SHARE, "NFSVOL_MOUNT_TIMEOUT": "20"}, lambda c: c.mount_timeout == 20.0),
        ({**ONE_SHARE, "NFSVOL_IDLE_UNMOUNT": "0"}, lambda c: c.idle_unmount == 0.0),
        ({ENV_CONFIG: "shares: {s: {type: path, path: /s}}", "NFSVOL_STATE_DIR": "/st"},
         lambda c: str(c.state_dir) == "/st"),
        (ONE_SHARE, lambda c: str(c.state_dir) == "/var/lib/nfsvol" and c.log_level == "info"),
    ],
)  # fmt: skip
def test_top_level_settings_apply_in_both_modes(env, check):
    """NFSVOL_STATE_DIR and NFSVOL_LOG_LEVEL set their keys; unset, the defaults hold."""
    assert check(config_from_env(env))


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({}, ["set NFSVOL_CONFIG (a YAML config) or NFSVOL_SERVERS and NFSVOL_EXPORT"]),
        ({"NFSVOL_SERVERS": "", "NFSVOL_CONFIG": " "}, ["set NFSVOL_CONFIG"]),
        ({"NFSVOL_SERVERS": "nfs1"}, ["shares.main.export: None must be an absolute path"]),
        ({"NFSVOL_EXPORT": "/e"}, ["shares.main.servers: list one or more"]),
        ({**ONE_SHARE, ENV_CONFIG: "shares: {}"}, ["NFSVOL_CONFIG: set it or NFSVOL_SERVERS, NFSVOL_EXPORT, not both"]),
        ({ENV_CONFIG: "shares: [unclosed"}, ["NFSVOL_CONFIG: not valid YAML"]),
        ({ENV_CONFIG: "- a list"}, ["NFSVOL_CONFIG: must be a YAML mapping"]),
        ({**ONE_SHARE, "NFSVOL_SERVER": "typo"}, ["NFSVOL_SERVER: unknown setting; known settings are: NFSVOL_CONFIG"]),
        ({**ONE_SHARE, "NFSVOL_VERSION": "5"}, ["shares.main.version: '5' is not one of"]),
        ({**ONE_SHARE, "NFSVOL_OPTIONS": "hard,suid"}, ["shares.main.options: NFS option 'suid' is refused"]),
        ({**ONE_SHARE, "NFSVOL_SERVERS": "nfs1;reboot"}, ["is not a host name"]),
        ({ENV_CONFIG: "state_dir: /x\nshares: {s: {type: path, path: /s}}", "NFSVOL_STATE_DIR": "/y"},
         ["NFSVOL_STATE_DIR: state_dir is also set in NFSVOL_CONFIG; set it in one place"]),
        ({**ONE_SHARE, "NFSVOL_MOUNT_TIMEOUT": "soon"}, ["mount_timeout: 'soon' must be a number of seconds"]),
        ({**ONE_SHARE, "NFSVOL_LOG_LEVEL": "loud", "NFSVOL_STATE_DIR": "rel"},
         ["log_level: 'loud' is not one of", "state_dir: 'rel' must be an absolute path"]),
    ],
)  # fmt: skip
def test_refusals_name_the_setting(env, fragments):
    """Every problem is reported at once, naming the setting and what to write instead."""
    with pytest.raises(ConfigError) as err:
        config_from_env(env)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_manifest_env_is_what_config_from_env_knows():
    """Every env entry of config.json is a known setting, and only the state dir is fixed."""
    names = [e["name"] for e in MANIFEST["env"]]
    assert sorted(names) == sorted([ENV_CONFIG, *ENV_SHARE, *ENV_TOP])
    fixed = [e["name"] for e in MANIFEST["env"] if "value" not in e.get("settable", [])]
    assert fixed == ["NFSVOL_STATE_DIR"]


def test_manifest_defaults_plus_one_share_make_a_config():
    """The manifest's defaults with a server and export set: state in the propagated mount."""
    config = config_from_env({**DEFAULTS, **ONE_SHARE})
    assert str(config.state_dir) == MANIFEST["propagatedMount"]
    assert config.share("main").servers == ("nfs1",)


def test_manifest_socket_matches_the_entrypoint():
    """dockerd looks for the interface's socket where the entrypoint serves."""
    entry = MANIFEST["entrypoint"]
    assert entry[1:3] == ["serve", "--from-env"]
    socket = entry[entry.index("--socket") + 1]
    assert socket == f"/run/docker/plugins/{MANIFEST['interface']['socket']}"
    assert MANIFEST["interface"]["types"] == ["docker.volumedriver/1.0"]
    assert MANIFEST["linux"]["capabilities"] == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert MANIFEST["network"]["type"] == "host"


def test_serve_from_env_reports_missing_settings(monkeypatch, capsys):
    """`nfsvol serve --from-env` with nothing set exits 2 and says what to set."""
    for name in list(DEFAULTS):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--from-env", "--socket", "/nonexistent/x.sock"]) == 2
    assert "set NFSVOL_CONFIG (a YAML config) or NFSVOL_SERVERS" in capsys.readouterr().err
