"""Pure parts of the operator tools: config lines, verdicts, formats, bounded calls."""

import io
import time

import pytest
import yaml

from nfsvol.config import key_lines, locate, parse_config
from nfsvol.edge.logs import render, tag
from nfsvol.errors import ConfigError, OperationTimeout
from nfsvol.ops.listing import Listed, Progress, human_size, table
from nfsvol.ops.probe import Access, root_squash, timed

DOC = """\
state_dir: /var/lib/nfsvol
shares:
  main:
    type: nfs
    servers: [a]
  scratch.old:
    path: /p
"""


def test_key_lines_map_dotted_paths_to_lines():
    """Every key, however deep, maps to its 1-based line."""
    lines = key_lines(yaml.compose(DOC, Loader=yaml.SafeLoader))
    assert lines == {
        "state_dir": 1, "shares": 2, "shares.main": 3, "shares.main.type": 4,
        "shares.main.servers": 5, "shares.scratch.old": 6, "shares.scratch.old.path": 7,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("problem", "located"),
    [
        ("state_dir: 'x' must be absolute", "line 1: state_dir: 'x' must be absolute"),
        ("shares.main.servers: bad", "line 5: shares.main.servers: bad"),
        ("shares.main.export: None must be", "line 3: shares.main.export: None must be"),
        ("shares.scratch.old.type: None is not", "line 6: shares.scratch.old.type: None is not"),
        ("default_share: required", "default_share: required"),
    ],
)
def test_locate_uses_the_key_or_its_nearest_parent(problem, located):
    """A missing key is placed at the mapping that should hold it."""
    assert locate(problem, key_lines(yaml.compose(DOC, Loader=yaml.SafeLoader))) == located


@pytest.mark.parametrize(
    ("metrics", "fragment"),
    [
        ({"port": 0}, "metrics.port: 0 must be a TCP port"),
        ({"port": "x"}, "metrics.port: 'x' must be a TCP port"),
        ({"socket": "rel"}, "metrics.socket: 'rel' must be an absolute path"),
        ({"socket": "/s", "port": 1}, "must name exactly one of socket, port"),
        ({"host": "localhost"}, "metrics.host: unknown key"),
        ("yes", "must name exactly one of socket, port"),
    ],
)
def test_refuses_bad_metrics_settings(metrics, fragment):
    """Metrics are a socket or a localhost port, nothing else."""
    raw = {"shares": {"m": {"type": "path", "path": "/p"}}, "metrics": metrics}
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    assert any(fragment in p for p in caught.value.problems), caught.value.problems


def test_metrics_and_log_format_parse():
    """A metrics port and the text log format load; both are off/json by default."""
    base = {"shares": {"m": {"type": "path", "path": "/p"}}}
    assert (parse_config(base).metrics, parse_config(base).log_format) == (None, "json")
    config = parse_config({**base, "metrics": {"port": 9108}, "log_format": "text"})
    assert (config.metrics.port, config.metrics.socket, config.log_format) == (9108, "", "text")


@pytest.mark.parametrize(
    ("euid", "access", "verdict"),
    [
        (0, Access(owner=0, chown_error=""), ""),
        (0, Access(owner=65534, chown_error=""), "files created by root belong to uid 65534"),
        (0, Access(owner=0, chown_error="Operation not permitted"), "root may not chown"),
        (1000, Access(owner=1000, chown_error="Operation not permitted"), ""),
    ],
)
def test_root_squash_verdict(euid, access, verdict):
    """root_squash shows as root's files owned by another uid, or chown refused."""
    assert root_squash(euid, access).startswith(verdict)
    assert bool(root_squash(euid, access)) == bool(verdict)


@pytest.mark.parametrize(
    ("fields", "fmt", "line"),
    [
        ({"endpoint": "Get", "ms": 1.5}, "json", '{"endpoint": "Get", "ms": 1.5}'),
        ({"endpoint": "Get", "id": None, "ms": 1.5}, "text", "endpoint=Get ms=1.5"),
        ({"err": 'volume "x" not found'}, "text", r'err="volume \"x\" not found"'),
        ({"volume": ""}, "text", 'volume=""'),
        ({"volume": "a=b"}, "text", 'volume="a=b"'),
        ({"volume": "tab\there"}, "text", r'volume="tab\there"'),
    ],
)
def test_render_log_lines(fields, fmt, line):
    """JSON stays JSON; key=value quotes whatever would split or blur a token."""
    assert render(fields, fmt) == line


def test_tag_appends_the_request_id():
    """The request ID goes at the end of the message Docker shows."""
    assert tag("no such volume", "1a2b3c4d5e6f") == "no such volume [request 1a2b3c4d5e6f]"


@pytest.mark.parametrize(
    ("size", "error", "shown"),
    [(None, "", "-"), (None, "timeout", "?"), (0, "", "0B"), (1023, "", "1023B"),
     (1536, "", "1.5K"), (5 * 1024**3, "", "5.0G"), (3 * 1024**5, "", "3072.0T")],
)  # fmt: skip
def test_human_size(size, error, shown):
    """Sizes read like du -h; unknown is "?", not asked is "-"."""
    assert human_size(size, error) == shown


def test_table_aligns_columns():
    """Each column is as wide as its widest cell."""
    rows = [
        Listed("a", "main", "host-1", "2026-01-01T00:00:00Z", ("c1", "c2"), 2048, hosts=("h1",)),
        Listed("longer-name", "s", "", "2026-01-02T00:00:00Z", (), None, "timeout"),
    ]
    assert table(rows, sizes=True).splitlines() == [
        "NAME         SHARE  CREATED_BY  CREATED_AT            USERS  HOSTS  SIZE",
        "a            main   host-1      2026-01-01T00:00:00Z  2      h1     2.0K",
        "longer-name  s      -           2026-01-02T00:00:00Z  0      -      ?",
    ]


def test_timed_gives_up_on_a_call_that_hangs():
    """A call stuck past its budget raises OperationTimeout instead of blocking."""
    started = time.monotonic()
    with pytest.raises(OperationTimeout, match="stat /x did not answer within 0.2s"):
        timed(lambda: time.sleep(5), 0.2, "stat /x")
    assert time.monotonic() - started < 1


def test_timed_returns_the_value_or_the_error():
    """A call that finishes in time behaves as if called directly."""
    assert timed(lambda: 42, 1, "x") == 42
    with pytest.raises(ZeroDivisionError):
        timed(lambda: 1 / 0, 1, "x")


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as stderr does on a console."""

    def isatty(self):
        return True


def test_progress_draws_on_a_terminal_and_clears_itself():
    """The bar redraws in place with done/total, then erases its line."""
    term = Terminal()
    progress = Progress(term, width=10)
    progress.show(5, 10, "main/web")
    assert term.getvalue().startswith("\r[#####.....] 5/10 main/web")
    progress.close()
    assert term.getvalue().endswith("\r")


def test_progress_is_silent_in_a_pipe():
    """Redirected stderr gets no control characters."""
    pipe = io.StringIO()
    progress = Progress(pipe)
    progress.show(1, 2, "x")
    progress.close()
    assert pipe.getvalue() == ""
