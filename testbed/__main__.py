"""Command line: `python -m testbed prepare|smoke`."""

from __future__ import annotations

import argparse

from testbed.artifacts import DEFAULT_CACHE
from testbed.artifacts import main as prepare_main
from testbed.demo import demo
from testbed.dockerhost import DEFAULT_PYTHON
from testbed.smoke import smoke


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m testbed")
    parser.add_argument("command", choices=["prepare", "smoke", "demo"])
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--python", default=DEFAULT_PYTHON, help="python path used in guests")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare_main(args.cache_dir)
        return 0
    if args.command == "demo":
        return demo(args.cache_dir)
    timings = smoke(args.cache_dir, args.python)
    print("smoke passed; timings:")
    for name, secs in timings.items():
        print(f"  {name:40s} {secs:6.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
