"""Pure validation of names and options: no I/O, table-tested."""

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nfsvol.errors import InvalidName, InvalidOption, shown

# Docker's own volume name pattern (moby volume/local: validNamePattern).
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
# Leaves room for the ".json" metadata suffix and archive timestamps
# inside NAME_MAX (255) on the share.
NAME_MAX = 200


class AccessMode(enum.StrEnum):
    """How many hosts may use a volume at once; the value is what `-o access=` says."""

    SHARED = "shared"  # any number of hosts at once, the default
    SINGLE_HOST = "single-host"  # one host at a time, under a lease (nfsvol.share.leases)


VOLUME_OPTIONS = ("share", "uid", "gid", "mode", "access")
ACCESS_MODES = tuple(AccessMode)
ID_MAX = 2**32 - 2  # (uid_t)-1 means "no change" to chown; refuse it.
# ASCII digits only: str.isdigit() also takes '²' and fullwidth digits, which
# int() then rejects or silently reads; ten digits bound int()'s work.
_ID_RE = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class VolumeOptions:
    """The normalised `-o` options of one volume."""

    share: str
    uid: int | None = None
    gid: int | None = None
    mode: int | None = None
    access: AccessMode = AccessMode.SHARED

    def as_dict(self) -> dict[str, str]:
        """Options as stored in metadata and compared on a repeated Create."""
        out = {"share": self.share}
        if self.uid is not None:
            out["uid"] = str(self.uid)
        if self.gid is not None:
            out["gid"] = str(self.gid)
        if self.mode is not None:
            out["mode"] = f"{self.mode:04o}"
        if self.access != AccessMode.SHARED:  # volumes made before access existed stay equal
            out["access"] = self.access.value  # plain strings, as read back from disk
        return out


def check_name(name: object) -> str:
    """Return `name` if Docker would accept it and it cannot leave the share."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"volume name {name!r} is empty; give the volume a name")
    if len(name) > NAME_MAX:
        raise InvalidName(
            f"volume name {name[:40]!r}... is {len(name)} characters; use at most {NAME_MAX}"
        )
    if not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"volume name {name!r} is not allowed; use letters, digits and '_.-', "
            "starting with a letter or digit"
        )
    return name


def is_name(name: object) -> bool:
    """True if check_name accepts `name`: for names read from a share, never trusted."""
    try:
        check_name(name)
    except InvalidName:
        return False
    return True


def check_new_name(name: object) -> str:
    """check_name, plus Docker's minimum length for a volume made now.

    Older one-character volumes stay usable: only Create applies this.
    """
    name = check_name(name)
    if len(name) < 2:  # moby's local driver refuses them too
        raise InvalidName(
            f"volume name {name!r} is one character: `docker run -v {name}:/data` reads it "
            "as a Windows drive path and mounts a new anonymous volume instead; "
            "use at least two characters"
        )
    return name


def parse_volume_options(
    opts: Mapping[str, object] | None, shares: tuple[str, ...], default_share: str
) -> VolumeOptions:
    """Validate `-o` options against the configured shares."""
    opts = opts or {}
    unknown = sorted(set(opts) - set(VOLUME_OPTIONS))
    if unknown:
        raise InvalidOption(
            f"volume option {shown(unknown[0])} is not supported; "
            f"allowed options are: {', '.join(VOLUME_OPTIONS)}"
        )
    share = _text(opts, "share") or default_share
    if share not in shares:
        raise InvalidOption(
            f"share {shown(share)} is not configured; choose one of: {', '.join(shares)}"
        )
    return VolumeOptions(
        share=share,
        uid=_owner_id(opts, "uid"),
        gid=_owner_id(opts, "gid"),
        mode=_mode(opts),
        access=_access(opts),
    )


def _text(opts: Mapping[str, object], key: str) -> str | None:
    if key not in opts:
        return None
    value = opts[key]
    # Docker sends strings only; null is no more "unset" than 5 is a uid.
    if not isinstance(value, str):
        raise InvalidOption(f"option {key}={shown(value)} must be a string")
    return value


def _owner_id(opts: Mapping[str, object], key: str) -> int | None:
    text = _text(opts, key)
    if text is None:
        return None
    if not _ID_RE.fullmatch(text) or int(text) > ID_MAX:
        raise InvalidOption(
            f"option {key}={shown(text)} is not a numeric id; use a number from 0 to {ID_MAX}"
        )
    return int(text)


def _mode(opts: Mapping[str, object]) -> int | None:
    text = _text(opts, "mode")
    if text is None:
        return None
    if not re.fullmatch(r"0?[0-7]{3,4}", text) or int(text, 8) > 0o3777:
        raise InvalidOption(
            f"option mode={shown(text)} is not an octal directory mode; "
            "use three or four octal digits such as 0755 or 2775 (no setuid bit)"
        )
    return int(text, 8)


def _access(opts: Mapping[str, object]) -> AccessMode:
    text = _text(opts, "access")
    if text is None:
        return AccessMode.SHARED
    if text not in ACCESS_MODES:
        raise InvalidOption(
            f"option access={shown(text)} is not an access mode; use shared (any number "
            "of hosts at once, the default) or single-host (one host at a time)"
        )
    return AccessMode(text)


# NFS mount options an operator may put in a share's `options`. Anything
# that grants privilege (suid, dev) or names another server is refused.
NFS_FLAG_OPTIONS = frozenset(
    {
        "hard", "soft", "softerr", "intr", "nointr", "ac", "noac", "cto", "nocto",
        "lock", "nolock", "tcp", "udp", "rdma", "sharecache", "nosharecache",
        "resvport", "noresvport", "fsc", "nofsc", "rw", "ro", "noatime", "atime",
        "nodiratime", "relatime", "strictatime", "sync", "async", "noexec", "exec",
        "acl", "noacl", "rdirplus", "nordirplus", "posix", "noposix",
    }
)  # fmt: skip
NFS_VALUE_OPTIONS = frozenset(
    {
        "timeo", "retrans", "rsize", "wsize", "acregmin", "acregmax", "acdirmin",
        "acdirmax", "actimeo", "retry", "sec", "proto", "port", "mountport",
        "mountproto", "nconnect", "lookupcache", "local_lock", "max_connect",
        "namlen", "xprtsec",
    }
)  # fmt: skip
# lookupcache=positive: by default the client trusts a "no such file" for
# up to acdirmax (60 s), and a host that looked for a volume's metadata
# just before another host created it would go on saying it does not exist.
FORCED_NFS_OPTIONS = ("nosuid", "nodev", "lookupcache=positive")
_VALUE_RE = re.compile(r"[A-Za-z0-9_.:+-]+")


def check_nfs_option(option: str) -> str:
    """Return `option` if it is an allowed NFS mount option for a share."""
    key, sep, value = option.partition("=")
    if key in FORCED_NFS_OPTIONS and not sep:
        return option
    if key in ("suid", "dev"):
        raise InvalidOption(
            f"NFS option {option!r} is refused: nfsvol always mounts with nosuid,nodev"
        )
    if key == "lookupcache" and value not in ("none", "pos", "positive"):
        raise InvalidOption(
            f"NFS option {option!r} is refused: nfsvol mounts with lookupcache=positive "
            "so that each host finds volumes other hosts create; leave it out, or use "
            "lookupcache=none"
        )
    if key in ("vers", "nfsvers", "minorversion", "addr", "clientaddr", "mounthost"):
        raise InvalidOption(
            f"NFS option {option!r} is set by nfsvol; use the share's `version` key "
            "or `servers` list instead"
        )
    if (not sep and key in NFS_FLAG_OPTIONS) or (
        sep and key in NFS_VALUE_OPTIONS and _VALUE_RE.fullmatch(value)
    ):
        return option
    allowed = sorted(NFS_FLAG_OPTIONS) + sorted(k + "=N" for k in NFS_VALUE_OPTIONS)
    raise InvalidOption(
        f"NFS option {option!r} is not allowed; allowed options are: {', '.join(allowed)}"
    )


# What nfsvol reads back from a share: written by the least trusted party
# (any host, the server, a container with a link), so checked field by field.
# Each returns what is wrong, or None: the caller skips the file and logs it.

TEXT_MAX = 1024  # timestamps, host names and tokens are far shorter
LEASE_TTL_MAX = 86_400.0  # a day; a planted 1e308 would hold a volume forever
# Owner generations grow by one per takeover: a billion is a takeover a
# second for 31 years. A planted owner.999999999999.json is ignored rather
# than trusted, or the next claim (owner.1000000000000) would match nothing.
OWNER_GEN_MAX = 10**9
_OWNER_FILE_RE = re.compile(r"owner\.([1-9][0-9]{0,9})\.json")


def record_problem(data: object, file_name: str, share: str) -> str | None:
    """Why a volume record read from `file_name` on `share` is unusable, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    name = data.get("name")
    if not is_name(name):
        return f"name {shown(name)} is not a volume name"
    if file_name != f"{name}.json":
        return f"name {shown(name)} does not match its file name"
    if data.get("share") != share:
        return f"share {shown(data.get('share'))} is not {share!r}"
    return _text_problem(data, ("created_at",), ("created_by",)) or _options_problem(data)


def _text_problem(data: Mapping[str, object], required: tuple[str, ...],
                  optional: tuple[str, ...] = ()) -> str | None:  # fmt: skip
    for key in required + optional:
        value = data.get(key, None if key in required else "")
        if not isinstance(value, str) or len(value) > TEXT_MAX:
            return f"{key} {shown(value)} is not a short string"
    return None


def _options_problem(data: Mapping[str, object]) -> str | None:
    options = data.get("options", {})
    if not isinstance(options, dict):
        return f"options {shown(options)} is not an object"
    for key, value in options.items():
        if key not in VOLUME_OPTIONS or not isinstance(value, str) or len(value) > TEXT_MAX:
            return f"option {shown(key)}={shown(value)} is not a volume option"
    return None


def lease_problem(data: object, file_name: str) -> str | None:
    """Why a lease read from `file_name` is unusable, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    problem = _text_problem(data, ("host", "since", "renewed", "token"))
    if problem:
        return problem
    ttl = data.get("ttl")
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= LEASE_TTL_MAX:
        return f"ttl {shown(ttl)} is not a number of seconds up to {LEASE_TTL_MAX:g}"
    if not data["host"] or not data["token"]:
        return "host or token is empty"
    if owner_generation(file_name) is None and file_name != f"{data['host']}.json":
        return f"host {shown(data['host'])} does not match its file name"
    return None


def marker_problem(data: object) -> str | None:
    """Why a Remove's intent marker (nfsvol.share.catalog.RemoveMarker) is unusable, or None."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    problem = _text_problem(data, ("host", "since", "token"))
    if problem:
        return problem
    if not data["host"] or not data["token"]:
        return "host or token is empty"
    return None


def owner_generation(file_name: str) -> int | None:
    """The generation of an owner.<gen>.json file, None if it is not a sane one."""
    match = _OWNER_FILE_RE.fullmatch(file_name)
    if match is None or int(match[1]) > OWNER_GEN_MAX:
        return None
    return int(match[1])
