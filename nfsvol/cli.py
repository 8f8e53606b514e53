"""The `nfsvol` command."""

import argparse
import sys

from nfsvol.config import load_config
from nfsvol.errors import ConfigError
from nfsvol.server import DEFAULT_SOCKET, serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nfsvol", description="Docker volume plugin for NFS")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="serve the plugin protocol on a unix socket")
    run.add_argument("--config", default="/etc/nfsvol/config.yaml", help="YAML config file")
    run.add_argument(
        "--socket", default=DEFAULT_SOCKET, help=f"socket path (default {DEFAULT_SOCKET})"
    )
    run.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    run.add_argument("--threads", type=int, default=8, help="threads per worker")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"nfsvol: {exc}", file=sys.stderr)
        return 2
    serve(config, args.socket, args.workers, args.threads)
    return 0
