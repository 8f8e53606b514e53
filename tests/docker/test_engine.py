"""The bed runs the engine its test id names, so a wrong binary cannot pass for it."""

import pytest

pytestmark = pytest.mark.docker


def test_the_daemon_and_client_are_the_engine_the_test_names(bed):
    """dockerd reports the engine's version as its own, and so does the client beside it."""
    fmt = "{{.Server.Version}} {{.Client.Version}}"
    server, client = bed.docker("version", "-f", fmt).stdout.split()
    assert server.startswith(f"{bed.engine.version}."), (server, bed.engine)
    assert client.startswith(f"{bed.engine.version}."), (client, bed.engine)
