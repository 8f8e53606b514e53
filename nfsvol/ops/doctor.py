"""`nfsvol doctor`: compare this host's mounts, the plugin's state and the shares.

Each inconsistency gets a name and what to do about it. `repair` fixes only
what cannot lose data: it unmounts shares nobody holds, forgets counts of
containers Docker no longer runs, rebuilds the catalog cache and removes an
empty local volume no container uses that hides an nfsvol volume of the same
name from dockerd. It never deletes anything on a share.

The work is split by job: `nfsvol.ops.examine` finds the issues,
`nfsvol.ops.repair` fixes the safe ones, `nfsvol.ops.shadows` judges local
volumes hiding nfsvol's and `nfsvol.ops.dockercli` asks dockerd. This module
puts them together and prints the verdict.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from nfsvol.config import Config
from nfsvol.errors import printable
from nfsvol.host.mounter import Mounter
from nfsvol.ops.dockercli import Docker
from nfsvol.ops.examine import Examiner, Issue
from nfsvol.ops.repair import Repairer
from nfsvol.state import HostState


class Doctor:
    """Examines one host, and repairs what is safe to repair."""

    def __init__(
        self,
        config: Config,
        mounter: Mounter,
        state: HostState,
        docker: Docker,
        scratch: Path,
        timeout: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.examiner = Examiner(config, mounter, state, docker, scratch, timeout, clock)
        self.repairer = Repairer(config, mounter, state, docker, scratch, timeout)

    def examine(self) -> list[Issue]:
        """Every inconsistency on this host, share by share."""
        return self.examiner.examine()

    def repair(self, issues: list[Issue]) -> list[str]:
        """Fix the fixable issues, each share under its lock; say what was done."""
        return self.repairer.repair(issues)


def report(source: str, issues: list[Issue], out: TextIO) -> bool:
    """Print the issues and a verdict; True if nothing is inconsistent."""
    print(f"nfsvol doctor: {source}", file=out)
    for i in issues:
        mark = "note" if not i.problem else ("FIX" if i.fixable else "WARN")
        line = f"  {mark:<4} {i.kind:<20} {i.share}: {i.subject}: {i.detail}"
        print(printable(line), file=out)  # subjects and details quote names read from shares
    problems = [i for i in issues if i.problem]
    if not problems:
        print(f"verdict: OK: no inconsistency ({len(issues)} note(s))", file=out)
        return True
    fixable = sum(i.fixable for i in problems)
    print(f"verdict: {len(problems)} inconsistency(ies), {fixable} fixable with --fix", file=out)
    return False
