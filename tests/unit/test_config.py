"""Loading and validating the operator's YAML configuration."""

import json
from pathlib import Path

import pytest

from nfsvol import defaults
from nfsvol.config import Config, Share, ShareType, load_config, parse_config
from nfsvol.errors import ConfigError

EXAMPLE = """
state_dir: /var/lib/nfsvol
default_share: main
shares:
  main:
    type: nfs
    servers: [nfs1.example.com, nfs2.example.com]
    export: /srv/docker
    version: "4.1"
    options: [hard, timeo=600]
    on_remove: delete
  scratch:
    type: path
    path: /mnt/nfs/scratch
    on_remove: retain
"""


def test_loads_the_documented_example(tmp_path):
    """The shape in the README loads into frozen objects."""
    path = tmp_path / "config.yaml"
    path.write_text(EXAMPLE)
    config = load_config(path)
    main = config.share("main")
    assert config.default_share == "main"
    assert main.servers == ("nfs1.example.com", "nfs2.example.com")
    assert main.options == ("hard", "timeo=600")
    assert config.share("scratch").path == "/mnt/nfs/scratch"
    assert config.share_names == ("main", "scratch")
    assert config.mount_timeout == 10.0


def test_single_share_needs_no_default():
    """With one share, default_share may be left out."""
    config = parse_config({"shares": {"only": {"type": "path", "path": "/srv"}}})
    assert config.default_share == "only"


def test_idle_unmount_may_be_zero():
    """0 means release a share the moment nothing uses it; a timeout may not be 0."""
    raw = {"shares": {"only": {"type": "path", "path": "/srv"}}, "idle_unmount": 0}
    assert parse_config(raw).idle_unmount == 0.0


def test_numeric_version_is_accepted():
    """YAML turns an unquoted 4.1 into a float; it still means NFS 4.1."""
    raw = {"shares": {"m": {"type": "nfs", "servers": ["a"], "export": "/e", "version": 4.1}}}
    assert parse_config(raw).share("m").version == "4.1"


@pytest.mark.parametrize(
    ("body", "member"),
    [
        ({"type": "nfs", "servers": ["a"], "export": "/e"}, ShareType.NFS),
        ({"type": "path", "path": "/p"}, ShareType.PATH),
    ],
)
def test_share_type_parses_to_its_member(body, member):
    """A share's `type` becomes its ShareType member, which still reads and serialises as the word."""
    share = parse_config({"shares": {"m": body}}).share("m")
    assert share.type is member
    assert share.type == body["type"] and f"{share.type}" == body["type"]
    assert json.dumps({"type": share.type}) == json.dumps({"type": body["type"]})


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({}, "shares: must map at least one share"),
        ([], "top level must be a mapping"),
        ({"shares": {"m": {"type": "cifs"}}}, "shares.m.type: 'cifs' is not one of: nfs, path"),
        ({"shares": {"m": {"type": "path", "path": "rel"}}}, "shares.m.path: 'rel' must be an absolute"),
        ({"shares": {"m": {"type": "path", "path": "/a/../b"}}}, "must not contain '..'"),
        ({"shares": {"m": {"type": "nfs", "export": "/e"}}}, "shares.m.servers: list one or more"),
        ({"shares": {"m": {"type": "nfs", "servers": ["a;rm -rf"], "export": "/e"}}}, "not a host name"),
        ({"shares": {"m": {"type": "nfs", "servers": ["a"], "export": "/e", "options": ["suid"]}}},
         "nosuid,nodev"),
        ({"shares": {"m": {"type": "nfs", "servers": ["a"], "export": "/e", "version": "5"}}},
         "version: '5' is not one of"),
        ({"shares": {"m": {"type": "path", "path": "/p", "on_remove": "shred"}}},
         "on_remove: 'shred' is not one of: delete, retain, archive"),
        ({"shares": {"m": {"type": "path", "path": "/p", "bogus": 1}}}, "shares.m.bogus: unknown key"),
        ({"shares": {"m": {"type": "path", "path": "/p"}}, "mount_timeout": 0},
         "mount_timeout: 0 must be a number of seconds above 0"),
        ({"shares": {"m": {"type": "path", "path": "/p"}}, "idle_unmount": -1},
         "idle_unmount: -1 must be a number of seconds from 0 to 3600"),
        ({"shares": {"m": {"type": "path", "path": "/p"}}, "colour": "red"}, "colour: unknown key"),
        ({"shares": {"a": {"type": "path", "path": "/p"}, "b": {"type": "path", "path": "/q"}}},
         "default_share: required"),
        ({"shares": {"a": {"type": "path", "path": "/p"}}, "default_share": "z"}, "'z' is not a configured"),
        ({"shares": {"../x": {"type": "path", "path": "/p"}}}, "share names use letters"),
    ],
)  # fmt: skip
def test_refuses_bad_config(raw, fragment):
    """Each mistake is reported with its key and what to write instead."""
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        parse_config(raw)


def test_reports_every_problem_at_once():
    """Several mistakes come back in one error, counted."""
    raw = {"shares": {"m": {"type": "nfs", "export": "x", "on_remove": "no"}}, "log_level": "loud"}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    message = str(caught.value)
    assert "4 problem(s)" in message
    for key in ("servers", "export", "on_remove", "log_level"):
        assert key in message


def test_unreadable_file_names_the_path(tmp_path):
    """A missing file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="cannot read config file .*missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    """A YAML syntax error is a ConfigError naming the file."""
    path = tmp_path / "bad.yaml"
    path.write_text("shares: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml.* is not valid YAML"):
        load_config(path)


def test_left_out_settings_take_the_defaults_config_itself_has():
    """The parser and the Config dataclass fall back to the same values, from nfsvol.defaults."""
    parsed = parse_config({"shares": {"m": {"type": "nfs", "servers": ["a"], "export": "/e"}}})
    built = Config(state_dir=Path(defaults.STATE_DIR), shares=parsed.shares, default_share="m")
    assert parsed == built
    assert (parsed.mount_timeout, parsed.mount_helper, parsed.umount_helper) == (
        defaults.MOUNT_TIMEOUT, defaults.MOUNT_HELPER, defaults.UMOUNT_HELPER,
    )  # fmt: skip
    share = parsed.share("m")
    assert share == Share(name="m", type=share.type, servers=("a",), export="/e")
    assert (share.version, share.on_remove) == (defaults.NFS_VERSION, defaults.ON_REMOVE)


@pytest.mark.parametrize(
    ("servers", "timeout", "expected"),
    [
        ([["a"]], 10, 30.0),
        ([["a", "b", "c"]], 10, 50.0),
        ([["a"], ["a", "b"]], 4, 16.0),  # the share with the most servers sets it
    ],
)
def test_lock_timeout_covers_a_mount_on_every_server_and_an_unmount(servers, timeout, expected):
    """A share's lock is waited for as long as its holder may take to try every server."""
    shares = {f"s{i}": {"type": "nfs", "servers": s, "export": "/e"} for i, s in enumerate(servers)}
    raw = {"shares": shares, "default_share": "s0", "mount_timeout": timeout}
    assert parse_config(raw).lock_timeout == expected


@pytest.mark.parametrize(
    ("servers", "timeout", "expected"),
    [
        (["a"], 10, 20.0),  # one mount attempt, then the call's own work
        (["a", "b", "c"], 5, 20.0),  # an attempt on each server before giving up
    ],
)
def test_call_budget_is_a_mount_attempt_per_server_plus_the_work(servers, timeout, expected):
    """A call on a share (and a Remove's marker) is bounded by its share's servers."""
    raw = {"shares": {"s": {"type": "nfs", "servers": servers, "export": "/e"}},
           "mount_timeout": timeout}  # fmt: skip
    config = parse_config(raw)
    assert config.call_budget(config.shares["s"]) == expected
