#!/usr/bin/env python3
"""The real /usr/bin/umount, with every call logged first at the exec boundary.

Used as nfsvol's `umount_helper` where a test must prove that no process was
spawned: each argv is appended to $NFSVOL_FAKE_SERVERS.umount.log, then
umount itself runs with the same arguments.
"""

import json
import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    with open(os.environ["NFSVOL_FAKE_SERVERS"] + ".umount.log", "a") as log:
        log.write(json.dumps(argv) + "\n")
    return subprocess.run(["/usr/bin/umount", *argv], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
