"""The operator's YAML configuration, parsed once into frozen objects.

Every problem in the file is collected and reported together, each naming
its key and what to write instead.
"""

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from nfsvol import defaults
from nfsvol.errors import ConfigError, InvalidOption
from nfsvol.validate import NAME_RE, check_nfs_option


class ShareType(enum.StrEnum):
    """What a share is; its value is what the config's `type` key says."""

    NFS = "nfs"  # an export nfsvol mounts itself
    PATH = "path"  # a directory the host already mounts (fstab, autofs)


E = TypeVar("E", bound=enum.StrEnum)

NFS_VERSIONS = ("3", "4", "4.0", "4.1", "4.2")
ON_REMOVE = ("delete", "retain", "archive")
SHARE_TYPES = tuple(ShareType)
TOP_KEYS = (
    "state_dir", "default_share", "shares", "mount_timeout", "catalog_ttl", "idle_unmount",
    "lease_ttl", "health_interval", "mount_helper", "umount_helper", "log_level", "log_format",
    "metrics", "on_fence_failure",
)  # fmt: skip
NFS_KEYS = ("type", "servers", "export", "version", "options", "on_remove")
PATH_KEYS = ("type", "path", "on_remove")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("json", "text")
FENCE_FAILURE = ("reboot", "log")
METRICS_KEYS = ("socket", "port")
_HOST_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")


@dataclass(frozen=True)
class Share:
    """One configured share: an NFS export nfsvol mounts, or a local path."""

    name: str
    type: ShareType
    on_remove: str = defaults.ON_REMOVE
    servers: tuple[str, ...] = ()
    export: str = ""
    version: str = defaults.NFS_VERSION
    options: tuple[str, ...] = ()
    path: str = ""


@dataclass(frozen=True)
class Metrics:
    """Where Prometheus scrapes: a unix socket, or a port on 127.0.0.1 only."""

    socket: str = ""
    port: int = 0


@dataclass(frozen=True)
class Config:
    """The whole configuration of one nfsvol host."""

    state_dir: Path
    shares: Mapping[str, Share]
    default_share: str
    mount_timeout: float = defaults.MOUNT_TIMEOUT
    catalog_ttl: float = defaults.CATALOG_TTL
    idle_unmount: float = defaults.IDLE_UNMOUNT
    lease_ttl: float = defaults.LEASE_TTL
    health_interval: float = defaults.HEALTH_INTERVAL
    mount_helper: str = defaults.MOUNT_HELPER
    umount_helper: str = defaults.UMOUNT_HELPER
    log_level: str = defaults.LOG_LEVEL
    log_format: str = defaults.LOG_FORMAT
    metrics: Metrics | None = None
    # What a host does when a process it killed to fence a single-host
    # volume is still alive at the lease's end (see docs/operators.md).
    on_fence_failure: str = defaults.ON_FENCE_FAILURE

    @property
    def janitor_interval(self) -> float:
        """Seconds between the plugin's tidy-ups (idle shares, leaks, health)."""
        idle = self.idle_unmount
        return min(max(idle / 2, 1.0) if idle else 30.0, 30.0, self.health_interval)

    def call_budget(self, share: Share) -> float:
        """Seconds one call may spend on `share`: a mount attempt per server, plus the work."""
        return self.mount_timeout * (len(share.servers) + 1)

    @property
    def lock_timeout(self) -> float:
        """Seconds to wait for a share's lock on this host.

        Long enough for one mount attempt per server plus an unmount, as the holder may take.
        """
        return self.mount_timeout * (2 + max(len(s.servers) for s in self.shares.values()))

    @property
    def share_names(self) -> tuple[str, ...]:
        """Share names in the order the operator wrote them."""
        return tuple(self.shares)

    def share(self, name: str) -> Share:
        """The share called `name` (names were validated at load)."""
        return self.shares[name]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the YAML file at `path`; problems carry their line."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
        lines = key_lines(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        problem = f"not valid YAML: {exc}".replace("\n", " ")
        raise ConfigError(f"config file {str(path)!r} is {problem}", (problem,)) from exc
    return parse_config(raw, source=str(path), lines=lines)


def _line_of(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[5:]) if head.startswith("line ") else 0


def key_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Dotted key path (`shares.main.type`) -> the 1-based line the key is on."""
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = f"{prefix}{key.value}"
            lines[path] = key.start_mark.line + 1
            lines.update(key_lines(value, path + "."))
    return lines


def locate(problem: str, lines: Mapping[str, int]) -> str:
    """Prefix `problem` ("shares.main.type: ...") with the line of its key, or its parent's."""
    where = problem.split(": ", 1)[0]
    while where:
        if where in lines:
            return f"line {lines[where]}: {problem}"
        where = where.rpartition(".")[0]
    return problem


def parse_config(
    raw: object, source: str = "config", lines: Mapping[str, int] | None = None
) -> Config:
    """Validate an already-parsed YAML document; raise with every problem.

    `lines` (from `key_lines`) puts the YAML line in front of each problem.
    """
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with a `shares` key")
    _unknown_keys(raw, TOP_KEYS, "", problems)
    shares = _parse_shares(raw.get("shares"), problems)
    default = _default_share(raw.get("default_share"), shares, problems)
    config = Config(
        state_dir=Path(_abs_path(raw.get("state_dir", defaults.STATE_DIR), "state_dir", problems)),
        shares=shares,
        default_share=default,
        mount_timeout=_seconds(raw, "mount_timeout", defaults.MOUNT_TIMEOUT, problems),
        catalog_ttl=_seconds(raw, "catalog_ttl", defaults.CATALOG_TTL, problems),
        idle_unmount=_seconds(raw, "idle_unmount", defaults.IDLE_UNMOUNT, problems, zero=True),
        lease_ttl=_seconds(raw, "lease_ttl", defaults.LEASE_TTL, problems),
        health_interval=_seconds(raw, "health_interval", defaults.HEALTH_INTERVAL, problems),
        mount_helper=_abs_path(
            raw.get("mount_helper", defaults.MOUNT_HELPER), "mount_helper", problems
        ),
        umount_helper=_abs_path(
            raw.get("umount_helper", defaults.UMOUNT_HELPER), "umount_helper", problems
        ),
        log_level=_choice(
            raw.get("log_level", defaults.LOG_LEVEL), LOG_LEVELS, "log_level", problems
        ),
        log_format=_choice(
            raw.get("log_format", defaults.LOG_FORMAT), LOG_FORMATS, "log_format", problems
        ),
        metrics=_metrics(raw.get("metrics"), problems),
        on_fence_failure=_choice(
            raw.get("on_fence_failure", defaults.ON_FENCE_FAILURE),
            FENCE_FAILURE,
            "on_fence_failure",
            problems,
        ),
    )
    if problems:
        located = tuple(sorted((locate(p, lines or {}) for p in problems), key=_line_of))
        raise ConfigError(
            f"{source} has {len(located)} problem(s):\n  " + "\n  ".join(located), located
        )
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
    kind = _member(raw.get("type"), ShareType, where + "type", out)
    on_remove = _choice(
        raw.get("on_remove", defaults.ON_REMOVE), ON_REMOVE, where + "on_remove", out
    )
    if raw.get("type") not in SHARE_TYPES:
        return Share(name=name, type=kind, on_remove=on_remove)  # the rest depends on the type
    if kind is ShareType.PATH:
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
        version=_choice(
            str(raw.get("version", defaults.NFS_VERSION)), NFS_VERSIONS, where + "version", out
        ),
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


def _metrics(raw: object, out: list[str]) -> Metrics | None:
    if raw is None:
        return None
    example = "write {socket: /run/nfsvol/metrics.sock} or {port: 9108}"
    if not isinstance(raw, dict) or len(raw) != 1:
        out.append(f"metrics: {raw!r} must name exactly one of socket, port; {example}")
        return None
    if not set(raw) <= set(METRICS_KEYS):
        _unknown_keys(raw, METRICS_KEYS, "metrics.", out)
        return None
    if "socket" in raw:
        return Metrics(socket=_abs_path(raw["socket"], "metrics.socket", out))
    port = raw.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        out.append(f"metrics.port: {port!r} must be a TCP port number (1-65535); {example}")
        return None
    return Metrics(port=port)


def _member(raw: object, kind: type[E], where: str, out: list[str]) -> E:
    """The member of `kind` that `raw` spells, as _choice judges it."""
    return kind(_choice(raw, tuple(kind), where, out))


def _choice(raw: object, allowed: tuple[str, ...], where: str, out: list[str]) -> str:
    if raw not in allowed:
        out.append(f"{where}: {raw!r} is not one of: {', '.join(allowed)}")
        return allowed[0]
    return str(raw)


def _seconds(
    raw: dict[str, Any], key: str, default: float, out: list[str], zero: bool = False
) -> float:
    value = raw.get(key, default)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    # zero means "at once" where that makes sense (idle_unmount), never for a timeout.
    if not number or not (value >= 0 if zero else value > 0) or value > 3600:
        span = "from 0 to 3600" if zero else "above 0 and at most 3600"
        out.append(f"{key}: {value!r} must be a number of seconds {span}")
        return default
    return float(value)
