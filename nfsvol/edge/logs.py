"""Structured log lines: one per request, as JSON or as key=value for a terminal."""

import json
import logging
import uuid
from collections.abc import Mapping

from nfsvol.errors import printable

FORMATS = ("json", "text")
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def new_request_id() -> str:
    """A short random ID that ties a log line to the error Docker shows."""
    return uuid.uuid4().hex[:12]


def tag(message: str, request_id: str) -> str:
    """`message` with the request ID an operator can grep the log for."""
    return f"{message} [request {request_id}]"


def render(fields: Mapping[str, object], fmt: str) -> str:
    """The fields as one JSON object, or as `key=value` pairs (None left out)."""
    if fmt == "json":
        return json.dumps(fields)
    return " ".join(f"{key}={_text(value)}" for key, value in fields.items() if value is not None)


def _text(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text)  # quoted and escaped, still one token
    return text


class OneLineFormatter(logging.Formatter):
    """Each record on one line, whatever its values hold.

    Messages quote values read from shares and requests (a lease's host, a
    mount ID): a newline in one would forge a second record, an escape
    sequence would rewrite the operator's terminal. A traceback is escaped
    too: it stays with its record for grep and for log shippers.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as the base class formats it, non-printables escaped."""
        return printable(super().format(record))


def configure(level: str) -> None:
    """Log to stderr at `level`, one line per record (see OneLineFormatter)."""
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(LINE_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
