"""Structured log lines: one per request, as JSON or as key=value for a terminal."""

import json
import uuid
from collections.abc import Mapping

FORMATS = ("json", "text")


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
