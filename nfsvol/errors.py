"""Typed domain errors.

They are raised deep in the driver and turned into the wire format
(`{"Err": message}`) only by the HTTP edge in `nfsvol.edge.api`. Every message
names the offending value and says what to do about it.
"""

SHOWN_MAX = 60


def shown(value: object) -> str:
    """`repr(value)`, cut short: a message names a hostile value, it does not echo a megabyte."""
    text = repr(value)
    return text if len(text) <= SHOWN_MAX else f"{text[:SHOWN_MAX]}... ({len(text)} characters)"


def printable(text: str) -> str:
    """`text` with each control or other non-printable character escaped as Python's repr does.

    For terminals and logs: a value read from a share or a request must not
    start a line, move the cursor or clear the screen. Backslashes are kept
    as they are, so that text already holding a repr() is not escaped twice.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class NfsvolError(Exception):
    """Base class: the message is shown to the Docker user as is."""


class ConfigError(NfsvolError):
    """The operator's configuration file is invalid; `problems` lists each one."""

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems or (message,)


class InvalidRequest(NfsvolError):
    """A request from Docker is malformed (bad JSON, missing Name)."""


class InvalidName(NfsvolError):
    """A volume name does not match Docker's pattern or is too long."""


class InvalidOption(NfsvolError):
    """A `-o` volume option is unknown, malformed or not allowed."""


class VolumeNotFound(NfsvolError):
    """No volume of that name exists on any configured share."""


class VolumeConflict(NfsvolError):
    """A volume of that name exists with different options."""


class VolumeInUse(NfsvolError):
    """The volume is in use (mounted, held elsewhere or being removed): the verb is refused."""


class VolumeHeld(NfsvolError):
    """A single-host volume is held by another host whose lease has not expired."""


class UnsafePath(NfsvolError):
    """A path on the share is a symlink or otherwise escapes the share."""


class ShareError(NfsvolError):
    """The share refused a file operation (permissions, root_squash, full, read-only)."""


class MountFailed(NfsvolError):
    """mount/umount failed; the message carries the helper's stderr."""


class OperationTimeout(NfsvolError):
    """A mount, umount or probe of a server did not finish in its budget."""
