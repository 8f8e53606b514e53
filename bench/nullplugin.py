"""A volume plugin that does nothing: the floor any out-of-process plugin pays.

Run in a guest beside nfsvol, it answers Docker's volume protocol with a
directory under ROOT and no other work, on the standard library's HTTP
server. With ROOT on an NFS mount made beforehand, a `docker run` on one
of its volumes costs dockerd's calls to a plugin and the volume's NFS
access, and nothing a plugin adds. Measurement only: it keeps no state and
checks no input.

    python bench/nullplugin.py /run/docker/plugins/nullvol.sock ROOT
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from typing import Any

CONTENT_TYPE = "application/vnd.docker.plugins.v1+json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as dockerd's client uses it
    root = "/var/lib/nullvol"

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        reply = self.answer(self.path.rsplit(".", 1)[-1], body)
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer(self, verb: str, body: dict[str, Any]) -> dict[str, Any]:
        path = os.path.join(self.root, str(body.get("Name", "")))
        if verb == "Activate":
            return {"Implements": ["VolumeDriver"]}
        if verb == "Capabilities":
            return {"Capabilities": {"Scope": "local"}}
        if verb == "Create":
            os.makedirs(path, exist_ok=True)
        if verb in ("Mount", "Path"):
            return {"Mountpoint": path}
        if verb == "Get":  # dockerd calls Create only for a name Get does not know
            if not os.path.isdir(path):
                return {"Err": f"no volume {body['Name']!r}"}
            return {"Volume": {"Name": body["Name"], "Mountpoint": path}}
        if verb == "List":
            return {"Volumes": [{"Name": n, "Mountpoint": ""} for n in os.listdir(self.root)]}
        return {}  # Remove, Unmount: nothing to undo

    def log_message(self, format: str, *args: Any) -> None:  # the base's signature
        pass  # a unix socket has no client address to log


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(socket_path: str, root: str) -> None:
    os.makedirs(root, exist_ok=True)
    Handler.root = root
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    Server(socket_path, Handler).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
