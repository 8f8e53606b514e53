#!/usr/bin/env python3
"""A stand-in for /sbin/mount.nfs at the exec boundary, for hosts without NFS.

Called exactly as nfsvol calls mount.nfs (`SERVER:/EXPORT TARGET -o OPTS`).
The file named by $NFSVOL_FAKE_SERVERS maps each server to what it does:
  "/some/dir"  a live server: bind-mount /some/dir + EXPORT on TARGET
  "down"       refuse at once, as mount.nfs does for a dead host
  "hang"       never answer, as with a server that drops packets
  {"after": S, "serve": "/some/dir"}  a live server that takes S seconds to answer
Every call is appended to $NFSVOL_FAKE_SERVERS.log so tests can check argv.
"""

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    table_path = os.environ["NFSVOL_FAKE_SERVERS"]
    with open(table_path + ".log", "a") as log:
        log.write(json.dumps(argv) + "\n")
    device, target = argv[0], argv[1]
    server, _, export = device.rpartition(":")
    with open(table_path) as f:
        behaviour = json.load(f).get(server, "down")
    if isinstance(behaviour, dict):
        time.sleep(behaviour["after"])
        behaviour = behaviour["serve"]
    if behaviour == "hang":
        time.sleep(3600)
    if behaviour == "down":
        print(f"mount.nfs: Connection refused for {device} on {target}", file=sys.stderr)
        return 32
    source = os.path.join(behaviour, export.lstrip("/"))
    return subprocess.run(["mount", "--bind", source, target], check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
