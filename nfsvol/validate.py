"""Pure validation of names and options: no I/O, table-tested."""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from nfsvol.errors import InvalidName, InvalidOption, shown

# Docker's own volume name pattern (moby volume/local: validNamePattern).
NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
# Leaves room for the ".json" metadata suffix and archive timestamps
# inside NAME_MAX (255) on the share.
NAME_MAX = 200

VOLUME_OPTIONS = ("share", "uid", "gid", "mode", "access")
ACCESS_MODES = ("shared", "single-host")
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
    access: str = "shared"

    def as_dict(self) -> dict[str, str]:
        """Options as stored in metadata and compared on a repeated Create."""
        out = {"share": self.share}
        if self.uid is not None:
            out["uid"] = str(self.uid)
        if self.gid is not None:
            out["gid"] = str(self.gid)
        if self.mode is not None:
            out["mode"] = f"{self.mode:04o}"
        if self.access != "shared":  # volumes made before access existed stay equal
            out["access"] = self.access
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


def _access(opts: Mapping[str, object]) -> str:
    text = _text(opts, "access")
    if text is None:
        return "shared"
    if text not in ACCESS_MODES:
        raise InvalidOption(
            f"option access={shown(text)} is not an access mode; use shared (any number "
            "of hosts at once, the default) or single-host (one host at a time)"
        )
    return text


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
