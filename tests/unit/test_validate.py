"""Pure validation of names and options, table-driven."""

import pytest

from nfsvol.errors import InvalidName, InvalidOption
from nfsvol.validate import (
    AccessMode,
    VolumeOptions,
    check_name,
    check_new_name,
    check_nfs_option,
    parse_volume_options,
)

SHARES = ("main", "scratch")


@pytest.mark.parametrize(
    "name",
    ["a", "data", "my-vol_1.2", "0abc", "a" * 200, "f" * 64],
)
def test_accepts_docker_names(name):
    """Names matching Docker's own pattern are accepted unchanged."""
    assert check_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        (None, "empty"),
        (".hidden", "not allowed"),
        ("..", "not allowed"),
        ("a/b", "not allowed"),
        ("../etc", "not allowed"),
        ("-rf", "not allowed"),
        ("a b", "not allowed"),
        ("a\nb", "not allowed"),
        ("é", "not allowed"),
        ("a" * 201, "at most 200"),
    ],
)
def test_refuses_bad_names(name, fragment):
    """Names that could escape the share or Docker would refuse are rejected."""
    with pytest.raises(InvalidName, match=fragment):
        check_name(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("v", "is one character"),  # the CLI's `-v v:/data` is a Windows drive path
        ("7", "use at least two characters"),
        ("../x", "not allowed"),  # and everything check_name refuses
        ("", "empty"),
    ],
)
def test_refuses_new_names_docker_cannot_mount(name, fragment):
    """A new volume must be usable with `docker run -v NAME:/path`."""
    with pytest.raises(InvalidName, match=fragment):
        check_new_name(name)


@pytest.mark.parametrize("name", ["ab", "v1", "data", "f" * 64])
def test_accepts_new_names_of_two_or_more_characters(name):
    assert check_new_name(name) == name


@pytest.mark.parametrize(
    ("opts", "expected"),
    [
        (None, VolumeOptions(share="main")),
        ({}, VolumeOptions(share="main")),
        ({"share": "scratch"}, VolumeOptions(share="scratch")),
        ({"uid": "1000", "gid": "0"}, VolumeOptions(share="main", uid=1000, gid=0)),
        ({"mode": "0750"}, VolumeOptions(share="main", mode=0o750)),
        ({"mode": "755"}, VolumeOptions(share="main", mode=0o755)),
        ({"mode": "2775"}, VolumeOptions(share="main", mode=0o2775)),
        ({"access": "shared"}, VolumeOptions(share="main")),
        ({"access": "single-host"}, VolumeOptions(share="main", access=AccessMode.SINGLE_HOST)),
    ],
)
def test_parses_volume_options(opts, expected):
    """Allowed -o options are normalised into VolumeOptions."""
    assert parse_volume_options(opts, SHARES, "main") == expected


@pytest.mark.parametrize(
    ("opts", "member"),
    [
        (None, AccessMode.SHARED),
        ({"uid": "1"}, AccessMode.SHARED),
        ({"access": "shared"}, AccessMode.SHARED),
        ({"access": "single-host"}, AccessMode.SINGLE_HOST),
    ],
)
def test_access_parses_to_its_member(opts, member):
    """`-o access=` becomes its AccessMode member (shared when left out), never a bare string."""
    assert parse_volume_options(opts, SHARES, "main").access is member


@pytest.mark.parametrize(
    ("opts", "fragment"),
    [
        ({"server": "evil.example"}, "'server' is not supported; allowed options are: share, uid"),
        ({"o": "suid"}, "'o' is not supported"),
        ({"device": "/dev/sda"}, "'device' is not supported"),
        ({"share": "other"}, "share 'other' is not configured; choose one of: main, scratch"),
        ({"uid": "-1"}, "uid='-1' is not a numeric id"),
        ({"uid": "root"}, "uid='root' is not a numeric id"),
        ({"gid": "4294967295"}, "gid='4294967295' is not a numeric id"),
        ({"mode": "777x"}, "mode='777x' is not an octal"),
        ({"mode": "4755"}, "no setuid"),
        ({"mode": "99"}, "mode='99'"),
        ({"uid": 5}, "must be a string"),
        ({"uid": None}, "uid=None must be a string"),
        ({"share": None}, "share=None must be a string"),
        ({"uid": "\u00b2"}, "uid='\u00b2' is not a numeric id"),
        ({"gid": "\uff11\uff10\uff10\uff10"}, "gid='\uff11\uff10\uff10\uff10' is not a numeric id"),
        ({"uid": "9" * 5000}, "uid='99999"),  # and cut short, see below
        ({"uid": "0,suid"}, "uid='0,suid' is not a numeric id"),
        ({"mode": "07777"}, "mode='07777'"),
        ({"access": "exclusive"}, "access='exclusive' is not an access mode; use shared"),
        ({"access": "Single-Host"}, "access='Single-Host' is not an access mode"),
        ({"access": ""}, "access='' is not an access mode"),
    ],
)
def test_refuses_bad_volume_options(opts, fragment):
    """Each bad option is refused with the value and what is allowed."""
    with pytest.raises(InvalidOption, match=fragment.replace("(", r"\(")) as raised:
        parse_volume_options(opts, SHARES, "main")
    assert len(str(raised.value)) < 300  # names the value, never echoes all of it


def test_options_round_trip_through_metadata():
    """as_dict is what a repeated Create is compared against."""
    options = VolumeOptions(share="main", uid=1, gid=2, mode=0o750)
    assert options.as_dict() == {"share": "main", "uid": "1", "gid": "2", "mode": "0750"}
    single = VolumeOptions(share="main", access=AccessMode.SINGLE_HOST)
    assert single.as_dict() == {"share": "main", "access": "single-host"}
    assert all(type(value) is str for value in single.as_dict().values())  # as read back


@pytest.mark.parametrize(
    "option",
    ["hard", "soft", "timeo=600", "retrans=2", "nolock", "proto=tcp", "nosuid", "nodev",
     "noatime", "rsize=1048576", "sec=sys", "actimeo=0", "nconnect=4", "lookupcache=none"],
)  # fmt: skip
def test_accepts_safe_nfs_options(option):
    """Ordinary NFS tuning options pass the share allowlist."""
    assert check_nfs_option(option) == option


@pytest.mark.parametrize(
    ("option", "fragment"),
    [
        ("suid", "always mounts with nosuid,nodev"),
        ("dev", "always mounts with nosuid,nodev"),
        ("lookupcache=all", "mounts with lookupcache=positive so that each host finds"),
        ("vers=3", "use the share's `version` key"),
        ("addr=10.0.0.1", "`servers` list"),
        ("timeo=1,suid", "not allowed"),
        ("timeo=", "not allowed"),
        ("hard=1", "not allowed"),
        ("context=system_u", "not allowed"),
        ("bogus", "not allowed; allowed options are: ac, acl"),
        ("bind", "not allowed"),
        ("hard,suid", "not allowed"),
    ],
)
def test_refuses_unsafe_nfs_options(option, fragment):
    """Options that grant privilege or redirect the mount are refused."""
    with pytest.raises(InvalidOption, match=fragment):
        check_nfs_option(option)
