"""Values from shares and requests reach terminals and logs escaped (issue 21, item 8)."""

import io
import logging

import pytest

from nfsvol.edge.logs import LINE_FORMAT, OneLineFormatter
from nfsvol.errors import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("host-a", "host-a"),
        ("", ""),
        ("a b", "a b"),  # a space is printable
        ("héllo wörld", "héllo wörld"),  # so are letters beyond ASCII
        ("a\\nb", "a\\nb"),  # a backslash is left alone: a repr inside is not escaped twice
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("a\tb", "a\\tb"),
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear screen, cursor home
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),
        ("\x9b31m", "\\x9b31m"),  # the 8-bit CSI
        ("a\u2028b\u202eb", "a\\u2028b\\u202eb"),  # line separator, right-to-left override
        ("\ufeff", "\\ufeff"),
    ],
)
def test_printable_escapes_every_non_printable(raw, shown):
    """Control and other non-printable characters are escaped as repr does; the rest is kept."""
    assert printable(raw) == shown
    assert printable(raw).isprintable()


def test_a_log_record_with_a_newline_in_a_value_stays_on_one_line():
    """A value that would forge a second log record is escaped within its own."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter(LINE_FORMAT))
    logger = logging.getLogger("nfsvol.test_hygiene")
    logger.addHandler(handler)
    logger.propagate = False
    forged = "b\n2026-12-03 17:00:00,000 ERROR nfsvol.driver: volume v: lease lost\x1b[2J"
    logger.warning("volume %s: lease of host %s expired, taking over", "v", forged)
    try:
        raise ValueError("x\ny")
    except ValueError:
        logger.exception("failed")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "\x1b" not in out.getvalue()
    assert "host b\\n2026-12-03 17:00:00,000 ERROR" in lines[0]
    assert lines[1].endswith("ValueError: x\\ny")  # the traceback stays with its record
