"""The HTTP edge: Docker's volume plugin protocol, and nothing else.

Wire names (Name, Opts, Mountpoint, Err, ...) live only in this module.
Each route decodes its body into a frozen request (NameRequest,
CreateRequest, MountRequest), calls the driver through the verbs of
`nfsvol.verbs.Verbs` and encodes the answer; typed errors become
`{"Err": message}` in exactly one place.
"""

import functools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from flask import Flask, Response, g, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge

from nfsvol.edge.logs import new_request_id, render, tag
from nfsvol.edge.metrics import NoMetrics, Recorder
from nfsvol.errors import (
    InvalidRequest,
    NfsvolError,
    OperationTimeout,
    VolumeNotFound,
    printable,
    shown,
)
from nfsvol.host.dockerd import Caller, caller_of
from nfsvol.verbs import Verbs

# The content type dockerd sends and expects (moby pkg/plugins).
MIMETYPE = "application/vnd.docker.plugins.v1.2+json"
# Docker's requests are a few hundred bytes; a bigger body is hostile and
# must not be read into memory.
MAX_BODY = 1024 * 1024
# dockerd writes a body at once: a client silent this long mid-body has
# stalled, and must not hold a worker thread forever.
BODY_TIMEOUT = 10.0
log = logging.getLogger("nfsvol.edge.api")
requests_log = logging.getLogger("nfsvol.requests")


def create_app(driver: Verbs, log_format: str = "json", metrics: Recorder | None = None) -> Flask:
    """The Flask app serving `driver`; nothing happens at import time.

    Each request gets an ID, logged with it and appended to any Err.
    """
    app = Flask("nfsvol")
    # Bodies over MAX_BODY are refused (see _read_body); every method but
    # POST is an Err, OPTIONS included.
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY + 1, PROVIDE_AUTOMATIC_OPTIONS=False)
    app.before_request(_start_clock)
    app.after_request(functools.partial(_log_request, log_format, metrics or NoMetrics()))

    @app.post("/Plugin.Activate")
    def activate() -> Response:
        driver.activated(_caller())
        return _reply({"Implements": ["VolumeDriver"]})

    @app.post("/VolumeDriver.Capabilities")
    def capabilities() -> Response:
        return _reply({"Capabilities": driver.capabilities()})

    @app.post("/VolumeDriver.Create")
    def create() -> Response:
        req = _request(CreateRequest.decode)
        driver.create(req.name, req.opts)
        return _reply({})

    @app.post("/VolumeDriver.Remove")
    def remove() -> Response:
        driver.remove(_request(NameRequest.decode).name)
        return _reply({})

    @app.post("/VolumeDriver.Mount")
    def mount() -> Response:
        req = _request(MountRequest.decode)
        return _reply({"Mountpoint": driver.mount(req.name, req.mount_id, _caller())})

    @app.post("/VolumeDriver.Unmount")
    def unmount() -> Response:
        req = _request(MountRequest.decode)
        driver.unmount(req.name, req.mount_id)
        return _reply({})

    @app.post("/VolumeDriver.Path")
    def path() -> Response:
        return _reply({"Mountpoint": driver.path(_request(NameRequest.decode).name)})

    @app.post("/VolumeDriver.Get")
    def get() -> Response:
        volume = driver.get(_request(NameRequest.decode).name)
        return _reply(
            {
                "Volume": {
                    "Name": volume.name,
                    "Mountpoint": volume.mountpoint,
                    "CreatedAt": volume.created_at,
                    "Status": volume.status,
                }
            }
        )

    @app.post("/VolumeDriver.List")
    def list_() -> Response:
        volumes = [{"Name": name, "Mountpoint": mp} for name, mp in driver.list_volumes()]
        return _reply({"Volumes": volumes})

    app.register_error_handler(NfsvolError, _domain_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)
    return app


# Requests: each body decoded, in this one place, into the plain values the
# verbs take. Activate, Capabilities and List carry nothing and read no body.

R = TypeVar("R")


def parse_body(raw: bytes) -> dict[str, object]:
    """The JSON object a request body holds; an empty body is an empty object.

    dockerd sends no Content-Type and sometimes no body at all, so Flask's
    request.json cannot be used.
    """
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: [[[[... nested too deep
        raise InvalidRequest(f"request body is not JSON: {raw[:80]!r}") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {raw[:80]!r}")
    return body


@dataclass(frozen=True)
class NameRequest:
    """Remove, Path and Get: which volume."""

    name: str

    @classmethod
    def decode(cls, body: Mapping[str, object]) -> Self:
        """The request `body` holds, or InvalidRequest naming the bad field."""
        return cls(_name(body))


@dataclass(frozen=True)
class CreateRequest:
    """Create: the new volume's name and its `docker volume create -o` options."""

    name: str
    opts: Mapping[str, object] | None  # None when Docker sent none

    @classmethod
    def decode(cls, body: Mapping[str, object]) -> Self:
        """The request `body` holds, or InvalidRequest naming the bad field."""
        opts = body.get("Opts")
        if opts is not None and not isinstance(opts, dict):
            raise InvalidRequest(f"Opts must be a JSON object, not {shown(opts)}")
        return cls(_name(body), opts)


@dataclass(frozen=True)
class MountRequest:
    """Mount and Unmount: which volume, for which of Docker's mounts of it."""

    name: str
    mount_id: str

    @classmethod
    def decode(cls, body: Mapping[str, object]) -> Self:
        """The request `body` holds, or InvalidRequest naming the bad field."""
        return cls(_name(body), _mount_id(body))


def _name(body: Mapping[str, object]) -> str:
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"request needs a volume Name, got {shown(name)}")
    return name


def _mount_id(body: Mapping[str, object]) -> str:
    mount_id = body.get("ID", "")
    if not isinstance(mount_id, str):
        raise InvalidRequest(f"mount ID must be a string, got {shown(mount_id)}")
    # Docker before 1.12 sent no ID; all such callers share one count.
    return mount_id or "-"


# Plumbing: the request's clock and log line, its body, its caller, its reply.


def _start_clock() -> None:
    g.started = time.monotonic()
    g.request_id = new_request_id()


def _log_request(log_format: str, metrics: Recorder, response: Response) -> Response:
    """One line per call: what Docker asked, about what, how it went, and how fast."""
    body = g.get("body") or {}
    endpoint = request.path.rsplit(".", 1)[-1].lstrip("/")
    seconds = time.monotonic() - g.get("started", time.monotonic())
    outcome = g.get("outcome", "ok" if response.status_code == 200 else "error")
    fields = {
        "request": g.get("request_id"),
        "endpoint": endpoint,
        "volume": _loggable(body.get("Name")),
        "id": _loggable(body.get("ID")),
        "status": response.status_code,
        "outcome": outcome,
        "ms": round(seconds * 1000, 2),
    }
    if response.status_code != 200:
        fields["err"] = (response.get_json(silent=True) or {}).get("Err")
    requests_log.info(render(fields, log_format))
    metrics.request(endpoint, outcome, seconds)
    if outcome == OperationTimeout.__name__:
        metrics.timeout(endpoint)
    return response


def _loggable(value: object) -> object:
    # A hostile Name must not turn one log line into a megabyte.
    return value if len(repr(value)) <= 256 else shown(value)


def _request(decode: Callable[[Mapping[str, object]], R]) -> R:
    """This request's body, read and decoded by `decode` (a Request's `decode`)."""
    body = parse_body(_read_body())
    g.body = body  # for the log line, even if `decode` refuses it
    return decode(body)


def _read_body() -> bytes:
    sock = request.environ.get("gunicorn.socket")
    if sock is not None:
        sock.settimeout(BODY_TIMEOUT)  # per read; gunicorn resets it for the next request
    try:
        raw: bytes | None = request.get_data(cache=False)
    except (TimeoutError, ClientDisconnected):
        # gunicorn closes the connection once a body read has failed.
        raise InvalidRequest(
            f"request body stopped arriving: nothing for {BODY_TIMEOUT:g}s or the client left"
        ) from None
    except RequestEntityTooLarge:
        raw = None
    # A chunked body has no length to refuse it by, and werkzeug stops reading
    # it at MAX_CONTENT_LENGTH silently: the one byte over shows it was cut.
    if raw is None or len(raw) > MAX_BODY:
        raise InvalidRequest(
            f"request body is larger than {MAX_BODY} bytes; Docker's requests are far smaller"
        )
    return raw


def _caller() -> Caller:
    # gunicorn hands us the connection: its peer is the dockerd (see nfsvol.host.dockerd).
    return caller_of(request.environ.get("gunicorn.socket"))


def _reply(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype=MIMETYPE)


def _error(message: str, status: int = 500) -> Response:
    # dockerd prints Err to the user's terminal as it is: no control characters.
    return _reply({"Err": tag(printable(message), g.get("request_id", "-"))}, status)


def _domain_error(exc: NfsvolError) -> Response:
    # dockerd asks Get about every name it is about to create: a miss is routine.
    level = logging.INFO if isinstance(exc, VolumeNotFound) else logging.WARNING
    log.log(level, "%s %s: %s", request.path, type(exc).__name__, exc)
    g.outcome = type(exc).__name__
    return _error(str(exc))


def _http_error(exc: HTTPException) -> Response:
    return _error(f"{request.method} {request.path}: {exc.description}", exc.code or 500)


def _internal_error(exc: Exception) -> Response:
    log.exception("%s failed (request %s)", request.path, g.get("request_id"))
    g.outcome = "internal"
    return _error(f"internal error in nfsvol ({type(exc).__name__}: {exc}); see the plugin log")
