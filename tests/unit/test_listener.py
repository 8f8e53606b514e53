"""The plugin's socket is bound before the heavy imports and handed to gunicorn."""

import os
import socket
import stat
import subprocess
import sys

# Binds sys.argv[1], then reports what a gunicorn started next would find.
LISTEN = """
import os, socket, sys
from nfsvol.edge.listener import listen
listen(sys.argv[1])
heavy = [m for m in ("flask", "gunicorn", "yaml", "nfsvol.driver") if m in sys.modules]
fd3 = socket.socket(fileno=3)
print(os.environ["LISTEN_FDS"], os.environ["LISTEN_PID"] == str(os.getpid()),
      fd3.getsockname() == sys.argv[1], heavy, flush=True)
fd3.detach()
"""


def test_cli_imports_nothing_heavy_before_the_socket():
    """`nfsvol serve` can bind while dockerd dials: no Flask, gunicorn or YAML loaded yet."""
    code = "import sys, nfsvol.cli; print([m for m in ('flask', 'gunicorn', 'yaml') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_listen_hands_a_root_only_socket_over_as_fd_3(tmp_path):
    """Only root can reach the socket from birth; it listens on fd 3 and accepts connections at once."""
    path = tmp_path / "run" / "nfsvol.sock"
    code = LISTEN + "import time; time.sleep(30)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().split() == ["1", "True", "True", "[]"]
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0  # nobody but root
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(path))  # waits in the backlog until gunicorn accepts
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def test_only_the_binder_removes_the_socket_at_exit(tmp_path):
    """A forked worker that exits leaves the socket; the binder's own exit removes it."""
    path = tmp_path / "nfsvol.sock"
    code = LISTEN + (
        "if os.fork() == 0:\n    sys.exit(0)\nos.wait()\nprint(os.path.exists(sys.argv[1]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "True"
    assert not path.exists()
