"""What `docker volume inspect` shows of a volume under Status, as this host sees it."""

from collections.abc import Mapping
from typing import Any

from nfsvol.config import Config, ShareType
from nfsvol.host.mounter import NfsSource
from nfsvol.share.catalog import VolumeRecord
from nfsvol.state import HostState
from nfsvol.validate import AccessMode


def volume_status(
    config: Config, state: HostState, record: VolumeRecord, users: Mapping[str, int]
) -> dict[str, Any]:
    """The volume's share, options, users here, every host's holders, health and errors."""
    share = config.share(record.share)
    status: dict[str, Any] = {
        "share": share.name,
        "type": share.type,
        "created_by": record.created_by,
        "options": record.options,
        "mounted": bool(users),
        "users": sorted(users),
        "on_remove": share.on_remove,
        "access": record.options.get("access", AccessMode.SHARED),
        "holders": [
            {"host": h.host, "since": h.since, "renewed": h.renewed}
            for h in (state.holders.get(share.name, record.name) or [])
        ],
    }
    health = state.health.get(share.name) if share.type == ShareType.NFS else None
    if health is not None:
        status["health"] = health.to_json()
    single = record.options.get("access") == AccessMode.SINGLE_HOST
    own = state.leases.get(share.name, record.name) if single else None
    if own is not None and own[0].lost:
        status["lease"] = "lost: another host took the volume over; stop its containers here"
    last_error = state.last_errors.get(share.name, record.name)
    if last_error:
        status["last_error"] = last_error  # the last failed Mount here, with its time
    if share.type == ShareType.PATH:
        status["path"] = share.path
    else:
        mount = state.mount_records.get(share.name) or {}
        status.update(
            server=mount.get("server", ""),
            servers=list(share.servers),
            export=share.export,
            version=share.version,
            nfs_options=NfsSource("", "", share.version, share.options).option_string,
        )
    return status
