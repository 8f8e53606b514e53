"""The `nfsvol` command."""

import argparse
import os
import sys

# Only what `serve` needs before its socket is bound; the rest loads lazily.
from nfsvol import defaults
from nfsvol.edge.listener import DEFAULT_SOCKET, listen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nfsvol", description="Docker volume plugin for NFS")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the plugin protocol on a unix socket")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--config", default=defaults.CONFIG_FILE, help="YAML config file")
    source.add_argument(
        "--from-env",
        action="store_true",
        help="build the config from NFSVOL_* variables (the managed plugin's settings)",
    )
    run.add_argument(
        "--socket", default=DEFAULT_SOCKET, help=f"socket path (default {DEFAULT_SOCKET})"
    )
    run.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    run.add_argument(
        "--threads", type=int, default=32, help="threads per worker, 4 kept for Get/List/Path"
    )
    _ops_commands(commands)
    return parser


def _ops_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """check, ls and doctor: what an operator runs by hand on a Docker host."""
    check = commands.add_parser(
        "check",
        help="validate the config and probe every share",
        description="Validate the config (every problem, with its YAML line), then mount each "
        "server's export on a temporary directory and check that it is writable and not "
        "root-squashed. Exit 0 when all is well, 1 when a probe failed, 2 on a bad config.",
    )
    ls = commands.add_parser(
        "ls",
        help="list the volumes on every share (works without dockerd)",
        description="List volumes read from the shares themselves: name, share, creating host "
        "and time, and the mount IDs holding each one on this host.",
    )
    ls.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    ls.add_argument("--sizes", action="store_true", help="add each volume's disk usage (du)")
    doctor = commands.add_parser(
        "doctor",
        help="find (and --fix) inconsistencies between mounts, state and shares",
        description="Compare this host's mount table, the plugin's state and the shares, and "
        "name each inconsistency, including local volumes that hide nfsvol's. --fix unmounts "
        "orphan mounts, forgets counts of vanished containers, rebuilds the cache and removes "
        "empty, unused hiding local volumes; it never deletes data. Exit 0 when none is left.",
    )
    doctor.add_argument("--fix", action="store_true", help="repair what is safe to repair")
    doctor.add_argument(
        "--docker-host",
        default=None,
        help="dockerd to ask about containers and local volumes "
        "(default: this host's, on /var/run/docker.sock)",
    )
    for sub in (check, ls, doctor):
        sub.add_argument("--config", default=defaults.CONFIG_FILE, help="YAML config file")
        sub.add_argument(
            "--timeout",
            type=float,
            default=defaults.PROBE_TIMEOUT,
            help=f"seconds per probe (default {defaults.PROBE_TIMEOUT:g})",
        )


def _run_ops(args: argparse.Namespace) -> int:
    from nfsvol.errors import ConfigError, NfsvolError, printable
    from nfsvol.ops.commands import run_check, run_doctor, run_ls
    from nfsvol.ops.dockercli import DOCKER_HOST

    try:
        if args.command == "check":
            return run_check(args.config, args.timeout)
        if args.command == "ls":
            return run_ls(args.config, args.json, args.sizes, args.timeout)
        return run_doctor(args.config, args.fix, args.timeout, args.docker_host or DOCKER_HOST)
    except ConfigError as exc:  # the config may quote a share's values: escaped, as all output
        print(printable(f"nfsvol: {exc}"), file=sys.stderr)
        return 2
    except NfsvolError as exc:
        print(printable(f"nfsvol {args.command}: {exc}"), file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    if args.command != "serve":
        return _run_ops(args)
    listen(args.socket)  # before the heavy imports: dockerd may be dialling already
    from nfsvol.config import load_config
    from nfsvol.edge.server import serve
    from nfsvol.envconfig import config_from_env
    from nfsvol.errors import ConfigError, printable

    try:
        config = config_from_env(os.environ) if args.from_env else load_config(args.config)
    except ConfigError as exc:
        print(printable(f"nfsvol: {exc}"), file=sys.stderr)
        return 2
    serve(config, args.socket, args.workers, args.threads)
    return 0
