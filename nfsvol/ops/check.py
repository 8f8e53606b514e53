"""`nfsvol check`: is this host's config valid, and does every share work?"""

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from nfsvol.config import Config, Share, ShareType
from nfsvol.errors import MountFailed, OperationTimeout, printable
from nfsvol.host.mounter import Mounter, NfsSource
from nfsvol.ops.probe import probe_access, root_squash, temp_mount, timed
from nfsvol.share.catalog import ShareCatalog
from nfsvol.share.pathshare import unprotected

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: str  # ok, warn or FAIL
    subject: str
    message: str


class Checker:
    """Probes the host and each share of `config`, each probe under `timeout`."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        scratch: Path,
        timeout: float,
        euid: Callable[[], int] = os.geteuid,
    ) -> None:
        self.config = config
        self._mounter = mounter
        self._scratch = scratch
        self._timeout = timeout
        self._euid = euid

    def run(self) -> list[Finding]:
        """Every finding, host first, then share by share."""
        findings = self._host()
        for share in self.config.shares.values():
            if share.type == ShareType.NFS:
                for server in share.servers:
                    findings += self._server(share, server)
            else:
                findings += self._path(share)
        return findings

    def _host(self) -> list[Finding]:
        c = self.config
        found = [Finding(OK, "config", f"{len(c.shares)} share(s), state_dir {c.state_dir}")]
        if any(s.type == ShareType.NFS for s in c.shares.values()):
            found += [_executable("mount_helper", c.mount_helper)]
            found += [_executable("umount_helper", c.umount_helper)]
        return found

    def _server(self, share: Share, server: str) -> list[Finding]:
        subject = f"share {share.name} via {server}"
        source = NfsSource(server, share.export, share.version, share.options)
        started = time.monotonic()
        try:
            with temp_mount(share, server, self._mounter, self._scratch) as root:
                took = time.monotonic() - started
                mounted = f"mounted {source.device} (-o {source.option_string}) in {took:.2f}s"
                return [Finding(OK, subject, mounted), *self._access(subject, root, share.name)]
        except (MountFailed, OperationTimeout) as exc:
            return [Finding(FAIL, subject, f"{exc}; check the server, its exports and firewall")]

    def _path(self, share: Share) -> list[Finding]:
        subject = f"share {share.name} at {share.path}"
        try:
            is_dir = timed(lambda: Path(share.path).is_dir(), self._timeout, share.path)
        except OperationTimeout as exc:
            return [Finding(FAIL, subject, str(exc))]
        if not is_dir:
            fix = "mount the export there first (fstab or autofs), or fix `path`"
            return [Finding(FAIL, subject, f"{share.path} is not a directory; {fix}")]
        hazard = unprotected(share)
        found = [Finding(FAIL, subject, hazard)] if hazard else []
        return found + self._access(subject, Path(share.path), share.name)

    def _access(self, subject: str, root: Path, share: str) -> list[Finding]:
        try:
            access = timed(lambda: probe_access(root), self._timeout, f"writing in {root}")
            names = ShareCatalog(root, share).names
            count = len(timed(names, self._timeout, f"listing {root}"))
        except OperationTimeout as exc:
            return [Finding(FAIL, subject, str(exc))]
        except OSError as exc:
            fix = "make the export writable by root (no_root_squash) and check free space"
            return [Finding(FAIL, subject, f"cannot create a file: {exc.strerror}; {fix}")]
        found = [Finding(OK, subject, f"writable; {count} volume(s) with metadata")]
        squash = root_squash(self._euid(), access)
        if squash:
            fix = "export it with no_root_squash: nfsvol creates and chowns volume directories"
            found.append(Finding(WARN, subject, f"root_squash: {squash}; {fix}"))
        return found


def _executable(key: str, path: str) -> Finding:
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return Finding(OK, "host", f"{key} {path} is executable")
    return Finding(FAIL, "host", f"{key} {path} is missing or not executable; install nfs-common")


def config_findings(problems: tuple[str, ...]) -> list[Finding]:
    """Each configuration problem as a failed finding."""
    return [Finding(FAIL, "config", problem) for problem in problems]


def report(source: str, findings: list[Finding], out: TextIO) -> bool:
    """Print the findings and the verdict; True if all is well."""
    print(f"nfsvol check: {source}", file=out)
    for f in findings:
        print(printable(f"  {f.level:<5} {f.subject}: {f.message}"), file=out)  # helpers' stderr
    failed = sum(f.level == FAIL for f in findings)
    warned = sum(f.level == WARN for f in findings)
    if failed or warned:
        print(f"verdict: NOT OK: {failed} failure(s), {warned} warning(s)", file=out)
        return False
    print(f"verdict: OK: {len(findings)} check(s) passed", file=out)
    return True
