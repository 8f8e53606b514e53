"""The operator's YAML configuration, parsed once into frozen objects.

Every problem in the file is collected and reported together, each naming
its key and what to write instead.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nfsvol.errors import ConfigError, InvalidOption
from nfsvol.validate import NAME_RE, check_nfs_option

NFS_VERSIONS = ("3", "4", "4.0", "4.1", "4.2")
ON_REMOVE = ("delete", "retain", "archive")
SHARE_TYPES = ("nfs", "path")
TOP_KEYS = (
    "state_dir", "default_share", "shares", "mount_timeout", "catalog_ttl", "idle_unmount",
    "mount_helper", "umount_helper", "log_level",
)  # fmt: skip
NFS_KEYS = ("type", "servers", "export", "version", "options", "on_remove")
PATH_KEYS = ("type", "path", "on_remove")
LOG_LEVELS = ("debug", "info", "warning", "error")
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True)
class Share:
    """One configured share: an NFS export nfsvol mounts, or a local path."""

    name: str
    type: str
    on_remove: str = "delete"
    servers: tuple[str, ...] = ()
    export: str = ""
    version: str = "4.1"
    options: tuple[str, ...] = ()
    path: str = ""


@dataclass(frozen=True)
class Config:
    """The whole configuration of one nfsvol host."""

    state_dir: Path
    shares: Mapping[str, Share]
    default_share: str
    mount_timeout: float = 10.0
    catalog_ttl: float = 5.0
    idle_unmount: float = 30.0
    mount_helper: str = "/sbin/mount.nfs"
    umount_helper: str = "/bin/umount"
    log_level: str = "info"

    @property
    def share_names(self) -> tuple[str, ...]:
        """Share names in the order the operator wrote them."""
        return tuple(self.shares)

    def share(self, name: str) -> Share:
        """The share called `name` (names were validated at load)."""
        return self.shares[name]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the YAML file at `path`."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    return parse_config(raw, source=str(path))


def parse_config(raw: object, source: str = "config") -> Config:
    """Validate an already-parsed YAML document; raise with every problem."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a `shares` key")
    _unknown_keys(raw, TOP_KEYS, "", problems)
    shares = _parse_shares(raw.get("shares"), problems)
    default = _default_share(raw.get("default_share"), shares, problems)
    config = Config(
        state_dir=Path(_abs_path(raw.get("state_dir", "/var/lib/nfsvol"), "state_dir", problems)),
        shares=shares,
        default_share=default,
        mount_timeout=_seconds(raw, "mount_timeout", 10.0, problems),
        catalog_ttl=_seconds(raw, "catalog_ttl", 5.0, problems),
        idle_unmount=_seconds(raw, "idle_unmount", 30.0, problems),
        mount_helper=_abs_path(
            raw.get("mount_helper", "/sbin/mount.nfs"), "mount_helper", problems
        ),
        umount_helper=_abs_path(raw.get("umount_helper", "/bin/umount"), "umount_helper", problems),
        log_level=_choice(raw.get("log_level", "info"), LOG_LEVELS, "log_level", problems),
    )
    if problems:
        raise ConfigError(f"{source} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return config


def _unknown_keys(
    raw: dict[str, Any], allowed: tuple[str, ...], where: str, out: list[str]
) -> None:
    for key in raw:
        if key not in allowed:
            out.append(f"{where}{key}: unknown key; allowed keys are: {', '.join(allowed)}")


def _parse_shares(raw: object, out: list[str]) -> dict[str, Share]:
    if not isinstance(raw, dict) or not raw:
        out.append("shares: must map at least one share name to its settings")
        return {}
    shares = {}
    for name, body in raw.items():
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            out.append(f"shares.{name}: share names use letters, digits and '_.-'")
        elif not isinstance(body, dict):
            out.append(f"shares.{name}: must be a mapping with a `type` key (nfs or path)")
        else:
            shares[name] = _parse_share(name, body, out)
    return shares


def _parse_share(name: str, raw: dict[str, Any], out: list[str]) -> Share:
    where = f"shares.{name}."
    kind = _choice(raw.get("type"), SHARE_TYPES, where + "type", out)
    on_remove = _choice(raw.get("on_remove", "delete"), ON_REMOVE, where + "on_remove", out)
    if kind == "path":
        _unknown_keys(raw, PATH_KEYS, where, out)
        path = _abs_path(raw.get("path"), where + "path", out)
        return Share(name=name, type=kind, on_remove=on_remove, path=path)
    _unknown_keys(raw, NFS_KEYS, where, out)
    return Share(
        name=name,
        type=kind,
        on_remove=on_remove,
        servers=_servers(raw.get("servers"), where + "servers", out),
        export=_abs_path(raw.get("export"), where + "export", out),
        version=_choice(str(raw.get("version", "4.1")), NFS_VERSIONS, where + "version", out),
        options=_nfs_options(raw.get("options", []), where + "options", out),
    )


def _servers(raw: object, where: str, out: list[str]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        out.append(f"{where}: list one or more NFS server host names, tried in order")
        return ()
    for server in raw:
        if not isinstance(server, str) or not _HOST_RE.fullmatch(server):
            out.append(f"{where}: {server!r} is not a host name, IPv4 or [IPv6] address")
    return tuple(str(s) for s in raw)


def _nfs_options(raw: object, where: str, out: list[str]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list):
        out.append(f"{where}: must be a list of NFS mount options such as [hard, timeo=600]")
        return ()
    checked = []
    for option in raw:
        try:
            checked.append(check_nfs_option(str(option)))
        except InvalidOption as exc:
            out.append(f"{where}: {exc}")
    return tuple(checked)


def _default_share(raw: object, shares: dict[str, Share], out: list[str]) -> str:
    if raw is None:
        if len(shares) > 1:
            out.append(f"default_share: required with several shares; one of {', '.join(shares)}")
        return next(iter(shares), "")
    if raw not in shares:
        out.append(f"default_share: {raw!r} is not a configured share; one of {', '.join(shares)}")
    return str(raw)


def _abs_path(raw: object, where: str, out: list[str]) -> str:
    if not isinstance(raw, str) or not raw.startswith("/"):
        out.append(f"{where}: {raw!r} must be an absolute path")
        return "/"
    if ".." in raw.split("/") or any(c in raw for c in ",\n\0"):
        out.append(f"{where}: {raw!r} must not contain '..', commas or control characters")
    return os.path.normpath(raw)


def _choice(raw: object, allowed: tuple[str, ...], where: str, out: list[str]) -> str:
    if raw not in allowed:
        out.append(f"{where}: {raw!r} is not one of: {', '.join(allowed)}")
        return allowed[0]
    return str(raw)


def _seconds(raw: dict[str, Any], key: str, default: float, out: list[str]) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
        out.append(f"{key}: {value!r} must be a number of seconds between 0 and 3600")
        return default
    return float(value)
