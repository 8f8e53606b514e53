"""Local volumes that hide nfsvol's: what dockerd says of one, and what doctor makes of it.

dockerd keeps a `local` volume it made for a name nfsvol did not answer for,
and from then on never asks nfsvol about that name again. Doctor reports such
a volume as `shadowed-by-local`; `--fix` removes it only when it is empty,
unused and made without options, so nothing is lost.
"""

import os

from nfsvol.errors import OperationTimeout, shown
from nfsvol.ops.dockercli import Docker
from nfsvol.ops.probe import timed

SHADOWED = "shadowed-by-local"
SHOWN_USERS = 5  # container names quoted in a shadowed-by-local row; the rest are counted

# (entries or why unknown, users or why unknown, made with options)
LocalVolume = tuple[int | str, list[str] | str, bool]


def local_volume(docker: Docker, name: str, timeout: float) -> LocalVolume | None:
    """What dockerd says of its local volume `name`; None if it keeps none by that name now."""
    info = docker.volume(name)
    if info is None:
        why = f"not inspected: {docker.why_not}"
        return why, why, False
    if info.get("Driver") != "local":
        return None
    entries = _entries(info.get("Mountpoint"), timeout)
    users = docker.containers_using(name, stopped=True)
    return (
        entries,
        users if users is not None else docker.why_not,
        bool(info.get("Options")),
    )


def shadow_verdict(
    name: str, entries: int | str, users: list[str] | str, options: bool = False
) -> tuple[str, bool]:
    """What to say about a local volume hiding nfsvol's `name`, and whether --fix may remove it.

    `entries` and `users` are a count and a list, or a string saying why they
    are unknown; `options` is whether it was made with driver options (a mount).
    Only an empty, unused, plain local volume is removable: nothing is lost.
    """
    facts = [f"a local volume named {name} hides nfsvol's {name} on this host"]
    if options:
        facts.append("it was made with mount options (on purpose?)")
    if isinstance(entries, str) and entries == users:
        facts.append(f"it could not be examined ({entries})")
    elif isinstance(entries, str):
        facts.append(f"what it holds is unknown ({entries})")
    else:
        facts.append("it is empty" if entries == 0 else f"it holds {_entry_count(entries)}")
    if isinstance(users, str):
        if users != entries:
            facts.append(f"which containers use it is unknown ({users})")
    elif users:
        listed = ", ".join(users[:SHOWN_USERS])
        more = f" and {len(users) - SHOWN_USERS} more" if len(users) > SHOWN_USERS else ""
        facts.append(f"used by container(s) {listed}{more}")
    else:
        facts.append("no container uses it")
    if entries == 0 and users == [] and not options:
        return "; ".join(facts) + ": `nfsvol doctor --fix` removes it", True
    steps = []
    if users and not isinstance(users, str):
        steps.append("remove those containers first")
    elif isinstance(users, str):
        steps.append("find the containers that use it and remove them")
    if isinstance(entries, int) and entries:
        steps.append("move its data into the nfsvol volume")
    elif isinstance(entries, str) or options:
        steps.append("look at it by hand")
    steps.append(f"`docker volume rm {name}`")
    return "; ".join(facts) + ": " + ", then ".join(steps), False


def _entry_count(n: int) -> str:
    return "1 entry" if n == 1 else f"{n} entries"


def _entries(mountpoint: object, timeout: float) -> int | str:
    """How many entries the directory `mountpoint` holds, opened without following a link."""
    if not isinstance(mountpoint, str) or not mountpoint.startswith("/"):
        return f"dockerd named no directory for it ({shown(mountpoint)})"
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

    def count() -> int:
        fd = os.open(mountpoint, flags)
        try:
            return len(os.listdir(fd))
        finally:
            os.close(fd)

    try:
        return timed(count, timeout, f"list {mountpoint}")
    except (OSError, OperationTimeout) as exc:
        return f"cannot list {mountpoint}: {exc}"
