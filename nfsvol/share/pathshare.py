"""Path shares: filesystems the operator mounted, which nfsvol uses but never remounts.

nfsvol mounts its NFS shares nosuid,nodev so that a container cannot plant
a setuid-root binary or a device node that any user of a host can use. A
path share gets no such options from nfsvol; its own mount must carry them.
"""

import os

from nfsvol.config import Share
from nfsvol.host import mountinfo

REQUIRED = ("nosuid", "nodev")


def unprotected(share: Share, entries: list[mountinfo.MountEntry] | None = None) -> str | None:
    """Why `share`'s mount lets a container plant setuid or device files; None if it is safe."""
    path = os.path.realpath(share.path)
    mount = mountinfo.containing(path, mountinfo.read() if entries is None else entries)
    if mount is None:
        return None  # not a directory yet: `check` says so on its own line
    missing = [flag for flag in REQUIRED if flag not in mount.options]
    if not missing:
        return None
    return (
        f"path share {share.name!r} at {share.path} is on {mount.mount_point}, mounted without "
        f"{','.join(missing)}: a container could plant a setuid-root binary any user of this "
        f"host can run; run `mount -o remount,nosuid,nodev {mount.mount_point}` and add "
        "nosuid,nodev to its options in /etc/fstab"
    )
