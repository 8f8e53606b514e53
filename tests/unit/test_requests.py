"""Decoding request bodies into typed requests, table-driven, without a server."""

import pytest

from nfsvol.edge.api import CreateRequest, MountRequest, NameRequest, parse_body
from nfsvol.errors import InvalidRequest


def _decode(kind, raw: bytes):
    return kind.decode(parse_body(raw))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"", {}),
        (b"  \r\n", {}),
        (b"{}", {}),
        (b'{"Name": "vol"}', {"Name": "vol"}),
        (b'{"Name": "vol", "Extra": [1]}', {"Name": "vol", "Extra": [1]}),
    ],
)
def test_parses_object_bodies(raw, expected):
    """An empty body is an empty object; any JSON object is taken as it is."""
    assert parse_body(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "request body is not JSON: b'not json'"),
        (b'{"Name": "vol"', """request body is not JSON: b'{"Name": "vol"'"""),
        (b"\xff\xfe", "request body is not JSON: b'\\xff\\xfe'"),
        (b"[" * 100_000, f"request body is not JSON: {b'[' * 80!r}"),
        (b"[1, 2]", "request body must be a JSON object, not b'[1, 2]'"),
        (b"null", "request body must be a JSON object, not b'null'"),
        (b'"vol"', "request body must be a JSON object, not b'\"vol\"'"),
    ],
)
def test_refuses_bodies_that_are_not_objects(raw, message):
    """A body that is not a JSON object is refused, quoting at most 80 bytes of it."""
    with pytest.raises(InvalidRequest) as caught:
        parse_body(raw)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        (NameRequest, b'{"Name": "vol"}', NameRequest("vol")),
        (NameRequest, b'{"Name": "vol", "ID": 5}', NameRequest("vol")),
        (CreateRequest, b'{"Name": "vol"}', CreateRequest("vol", None)),
        (CreateRequest, b'{"Name": "vol", "Opts": null}', CreateRequest("vol", None)),
        (CreateRequest, b'{"Name": "vol", "Opts": {}}', CreateRequest("vol", {})),
        (
            CreateRequest,
            b'{"Name": "vol", "Opts": {"share": "scratch", "uid": 7}}',
            CreateRequest("vol", {"share": "scratch", "uid": 7}),
        ),
        (MountRequest, b'{"Name": "vol", "ID": "abc"}', MountRequest("vol", "abc")),
        (MountRequest, b'{"Name": "vol"}', MountRequest("vol", "-")),
        (MountRequest, b'{"Name": "vol", "ID": ""}', MountRequest("vol", "-")),
    ],
)
def test_decodes_good_bodies(kind, raw, expected):
    """Each field lands in the request as the verb takes it; a missing or empty ID is "-"."""
    assert _decode(kind, raw) == expected


@pytest.mark.parametrize(
    ("kind", "raw", "message"),
    [
        (NameRequest, b"", "request needs a volume Name, got None"),
        (NameRequest, b'{"Name": ""}', "request needs a volume Name, got ''"),
        (NameRequest, b'{"Name": 7}', "request needs a volume Name, got 7"),
        (NameRequest, b'{"name": "vol"}', "request needs a volume Name, got None"),
        (
            NameRequest,
            b'{"Name": ["' + b"x" * 100 + b'"]}',
            "request needs a volume Name, got ['" + "x" * 58 + "... (104 characters)",
        ),
        (CreateRequest, b"{}", "request needs a volume Name, got None"),
        (CreateRequest, b'{"Name": "vol", "Opts": ["x"]}', "Opts must be a JSON object, not ['x']"),
        (CreateRequest, b'{"Name": "vol", "Opts": "a=b"}', "Opts must be a JSON object, not 'a=b'"),
        # Opts is looked at first, as it always was.
        (CreateRequest, b'{"Name": 7, "Opts": 1}', "Opts must be a JSON object, not 1"),
        (MountRequest, b'{"ID": "abc"}', "request needs a volume Name, got None"),
        (MountRequest, b'{"Name": "vol", "ID": 5}', "mount ID must be a string, got 5"),
        (MountRequest, b'{"Name": "vol", "ID": null}', "mount ID must be a string, got None"),
        (MountRequest, b'{"Name": 7, "ID": 5}', "request needs a volume Name, got 7"),
    ],
)
def test_refuses_bad_fields_naming_them(kind, raw, message):
    """A missing or mistyped field is refused with a message naming the field and its value."""
    with pytest.raises(InvalidRequest) as caught:
        _decode(kind, raw)
    assert str(caught.value) == message
