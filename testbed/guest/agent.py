"""Exec agent run inside a guest: one JSON request line in, one JSON reply line out.

Ops: ping; run (argv, timeout, cwd, env, input_b64) -> rc, stdout_b64, stderr_b64;
spawn (argv, cwd, env, log) -> pid; kill (pid, sig) -> ok; wait (pid, timeout) -> rc or null.
Standard library only, since it runs on the host's Python through the 9p share.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socketserver
import subprocess
import sys
from typing import Any

_children: dict[int, subprocess.Popen[bytes]] = {}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


def op_run(req: dict[str, Any]) -> dict[str, Any]:
    """Run argv to completion under a timeout."""
    data = base64.b64decode(req["input_b64"]) if req.get("input_b64") else None
    try:
        proc = subprocess.run(
            req["argv"],
            input=data,
            capture_output=True,
            timeout=req.get("timeout", 60),
            cwd=req.get("cwd"),
            env=_env(req.get("env")),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return {
            "rc": -9,
            "stdout_b64": _b64(exc.stdout or b""),
            "stderr_b64": _b64((exc.stderr or b"") + b"\nagent: timed out"),
        }
    except OSError as exc:
        return {"rc": 127, "stdout_b64": "", "stderr_b64": _b64(str(exc).encode())}
    return {"rc": proc.returncode, "stdout_b64": _b64(proc.stdout), "stderr_b64": _b64(proc.stderr)}


def op_spawn(req: dict[str, Any]) -> dict[str, Any]:
    """Start argv in the background, output appended to a log file."""
    with open(req.get("log", "/dev/null"), "ab") as log:
        proc = subprocess.Popen(
            req["argv"],
            cwd=req.get("cwd"),
            env=_env(req.get("env")),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return {"pid": proc.pid}


def op_kill(req: dict[str, Any]) -> dict[str, Any]:
    """Send a signal to a pid."""
    try:
        os.kill(int(req["pid"]), int(req.get("sig", signal.SIGTERM)))
    except ProcessLookupError:
        return {"ok": False}
    return {"ok": True}


def op_wait(req: dict[str, Any]) -> dict[str, Any]:
    """Wait for a spawned child; rc is null if it still runs after timeout."""
    proc = _children.get(int(req["pid"]))
    if proc is None:
        return {"rc": None, "error": "not a spawned child"}
    try:
        return {"rc": proc.wait(timeout=req.get("timeout", 0))}
    except subprocess.TimeoutExpired:
        return {"rc": None}


OPS = {
    "ping": lambda req: {"ok": True},
    "run": op_run,
    "spawn": op_spawn,
    "kill": op_kill,
    "wait": op_wait,
}


class Handler(socketserver.StreamRequestHandler):
    """Serve one request per connection."""

    def handle(self) -> None:
        try:
            req = json.loads(self.rfile.readline())
            reply = OPS[req["op"]](req)
        except Exception as exc:  # every failure goes back to the caller
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        self.wfile.write(json.dumps(reply).encode() + b"\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    # Reachable only through QEMU hostfwd on the host's loopback.
    with Server(("0.0.0.0", int(sys.argv[1])), Handler) as server:  # noqa: S104
        server.serve_forever()
