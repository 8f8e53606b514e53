"""Parse /proc/self/mountinfo (see proc(5)) into plain records."""

import re
from dataclasses import dataclass

from nfsvol import defaults

_ESCAPE_RE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of mountinfo: what is mounted where, and how."""

    mount_id: int
    device: str  # major:minor of the filesystem
    root: str  # the directory of that filesystem mounted here
    mount_point: str
    options: tuple[str, ...]
    fstype: str
    source: str
    super_options: tuple[str, ...] = ()  # the filesystem's own, e.g. NFS's addr=


def unescape(field: str) -> str:
    """Undo the kernel's octal escaping of space, tab, newline and backslash."""
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_line(line: str) -> MountEntry:
    """Parse one mountinfo line; raise ValueError if it is malformed."""
    fields = line.split()
    try:
        sep = fields.index("-", 6)
    except ValueError:
        raise ValueError(f"mountinfo line has no '-' separator: {line!r}") from None
    if len(fields) < sep + 3:
        raise ValueError(f"mountinfo line is truncated: {line!r}")
    return MountEntry(
        mount_id=int(fields[0]),
        device=fields[2],
        root=unescape(fields[3]),
        mount_point=unescape(fields[4]),
        options=tuple(fields[5].split(",")),
        fstype=fields[sep + 1],
        source=unescape(fields[sep + 2]),
        super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
    )


def parse(text: str) -> list[MountEntry]:
    """Parse a whole mountinfo file, in mount order."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def read(path: str = defaults.MOUNTINFO) -> list[MountEntry]:
    """Read and parse the mount table the plugin itself sees."""
    with open(path) as f:
        return parse(f.read())


def containing(path: str, entries: list[MountEntry]) -> MountEntry | None:
    """The mount `path` (absolute, symlinks resolved) lies on: the longest mount point above it.

    Of several mounts on one point, the last one mounted hides the others.
    """
    above = [e for e in entries if path == e.mount_point or path.startswith(_dir(e.mount_point))]
    # max() keeps the first of equals: reversed, that is the last mounted.
    return max(reversed(above), key=lambda e: len(e.mount_point), default=None)


def _dir(mount_point: str) -> str:
    return mount_point.rstrip("/") + "/"
