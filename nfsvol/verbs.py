"""What the HTTP edge needs from a driver: Docker's verbs, in plain Python types.

`nfsvol.edge.api` depends on this protocol only, as go-plugins-helpers' handler
depends on its `Driver` interface. `nfsvol.driver.Driver` satisfies it
structurally; mypy checks that where `nfsvol.edge.server` hands one to
`create_app`. The JSON Docker sends and expects is nfsvol.edge.api's business alone.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from nfsvol.host.dockerd import UNSEEN, Caller


@dataclass(frozen=True)
class Volume:
    """A volume as Docker sees it from this host."""

    name: str
    mountpoint: str  # empty while an nfs volume is not mounted here
    created_at: str
    status: dict[str, Any]


class Verbs(Protocol):
    """One method per call Docker makes; each raises an NfsvolError to refuse."""

    def activated(self, caller: Caller) -> None:
        """dockerd said hello (Plugin.Activate)."""

    def capabilities(self) -> dict[str, str]:
        """What the driver tells Docker about its volumes, e.g. their scope."""

    def create(self, name: str, opts: Mapping[str, object] | None) -> None:
        """Make the volume; repeating it with the same options is fine."""

    def remove(self, name: str) -> None:
        """Delete the volume; an unknown one is already gone."""

    def mount(self, name: str, mount_id: str, caller: Caller = UNSEEN) -> str:
        """Make the volume reachable here for `mount_id`; return its path."""

    def unmount(self, name: str, mount_id: str) -> None:
        """Release the volume for `mount_id`."""

    def path(self, name: str) -> str:
        """Where the volume is on this host, or "" if it is not mounted here."""

    def get(self, name: str) -> Volume:
        """The volume with its status on this host."""

    def list_volumes(self) -> list[tuple[str, str]]:
        """(name, mountpoint) of every volume."""
