"""Mounts a dead dockerd left behind: which of a volume's Mounts nobody will Unmount.

dockerd sends an Unmount for every Mount, unless it dies first. Each
Mount is tagged with the dockerd that made it (nfsvol.host.dockerd): its pid
and start time when this host can see it, else an activation tag. A Mount
whose dockerd is gone, of a volume no process here uses, is a leak; the
driver forgets it. Only judgement lives here: the driver owns the counts.
"""

import logging
from collections.abc import Callable
from pathlib import Path

from nfsvol.host.dockerd import ACTIVATION_TAG, Caller, new_activation, tagged_process
from nfsvol.host.fence import Fencer
from nfsvol.state import HostState

log = logging.getLogger(__name__)


class LeakedMounts:
    """Tags Mounts with their dockerd, and finds those whose dockerd is gone."""

    def __init__(self, state: HostState, fencer: Fencer) -> None:
        self._state = state
        self._fencer = fencer  # sees processes: dockerd's start time, a volume's users

    def activated(self, caller: Caller) -> None:
        """dockerd said hello; one we cannot see gets a new tag for its Mounts."""
        if caller.tag is None:
            self._state.set_activation(new_activation())

    def tag(self, caller: Caller) -> str:
        """What to record as the maker of a Mount from `caller`."""
        return caller.tag or self._state.activation() or ""

    def gone(self, tag: str) -> bool:
        """True if the dockerd behind `tag` has exited, as far as this host can see."""
        process = tagged_process(tag)
        return process is not None and self._fencer.start_time(process[0]) != process[1]

    def made_by(self, share: str, name: str, made_by: Callable[[str], bool]) -> list[str]:
        """The volume's mount IDs whose tag matches `made_by`."""
        return [i for i, tag in self._state.mounted_by(share, name).items() if made_by(tag)]

    def orphaned(
        self, share: str, name: str, directory: Path, gone: Callable[[str], bool] | None = None
    ) -> list[str]:
        """Mount IDs of dockerds that are gone, unless a process here still uses the volume.

        A container may outlive its dockerd (live-restore); then it keeps
        the count until it stops, when no Unmount comes either.
        """
        orphaned = self.made_by(share, name, gone or self.gone)
        if not orphaned or self._fencer.pids_using(str(directory)):
            return []
        log.warning("volume %s: dropping mounts %s: the dockerd that made them is gone "
                    "and no process uses the volume", name, sorted(orphaned))  # fmt: skip
        return orphaned

    def left_by_earlier_dockerd(self, share: str, name: str) -> list[str]:
        """Mount IDs made by a dockerd that is gone or that another has replaced."""
        current = self._state.activation()

        def earlier(tag: str) -> bool:
            return self.gone(tag) or (tag.startswith(ACTIVATION_TAG) and tag != current)

        return self.made_by(share, name, earlier)
