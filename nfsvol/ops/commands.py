"""The operator commands wired to the real mount helpers, state and terminal."""

import sys
import tempfile
from pathlib import Path
from typing import TextIO

from nfsvol.config import Config, load_config
from nfsvol.errors import ConfigError, NfsvolError, printable
from nfsvol.host.mounter import SubprocessMounter
from nfsvol.ops import check, dockercli, doctor, listing
from nfsvol.state import HostState

EXIT_OK, EXIT_PROBLEMS, EXIT_CONFIG = 0, 1, 2


def _mounter(config: Config) -> SubprocessMounter:
    return SubprocessMounter(config.mount_helper, config.umount_helper, config.mount_timeout)


def _state(config: Config) -> HostState:
    return HostState(config.state_dir, config.share_names, config.lock_timeout)


def run_check(path: str, timeout: float, out: TextIO = sys.stdout) -> int:
    """`nfsvol check`: 0 when all is well, 1 on a failed probe, 2 on a bad config."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        check.report(path, check.config_findings(exc.problems), out)
        return EXIT_CONFIG
    checker = check.Checker(config, _mounter(config), Path(tempfile.gettempdir()), timeout)
    return EXIT_OK if check.report(path, checker.run(), out) else EXIT_PROBLEMS


def run_ls(path: str, as_json: bool, sizes: bool, timeout: float, out: TextIO = sys.stdout) -> int:
    """`nfsvol ls`: 0 when every share could be read."""
    config = load_config(path)
    state = _state(config) if config.state_dir.is_dir() else None
    progress = listing.Progress(sys.stderr)
    scratch = Path(tempfile.gettempdir())
    lister = listing.Lister(config, _mounter(config), state, scratch, timeout, progress)
    rows, failed = [], 0
    for item in lister.volumes(sizes):
        if isinstance(item, NfsvolError):
            print(printable(f"nfsvol ls: {item}"), file=sys.stderr)
            failed += 1
        else:
            rows.append(item)
    print(listing.as_json(rows, sizes) if as_json else listing.table(rows, sizes), file=out)
    return EXIT_PROBLEMS if failed else EXIT_OK


def run_doctor(
    path: str, fix: bool, timeout: float, docker_host: str, out: TextIO = sys.stdout
) -> int:
    """`nfsvol doctor`: 0 when no inconsistency is left."""
    config = load_config(path)
    scratch = Path(tempfile.gettempdir())
    docker = dockercli.Docker(host=docker_host, timeout=timeout)
    doc = doctor.Doctor(config, _mounter(config), _state(config), docker, scratch, timeout)
    issues = doc.examine()
    if fix and any(i.fixable for i in issues):
        doctor.report(path, issues, out)
        for line in doc.repair(issues):
            print(printable(f"fixed: {line}"), file=out)
        print("after repair:", file=out)
        issues = doc.examine()
    return EXIT_OK if doctor.report(path, issues, out) else EXIT_PROBLEMS
