"""Hostile input (issue 5): malicious or malformed requests change nothing.

Each catalogue case is sent to the real plugin under gunicorn on its unix
socket. Every one must get a clear Err naming the bad value or field, while
no directory, mount or process appears and no share changes. Symlinks that
a container plants on the share get their own tests: they must never steer
Remove or Mount outside the share.
"""

import contextlib
import hashlib
import http.client
import json
import os
import socket
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nfsvol.edge.api import BODY_TIMEOUT, MAX_BODY
from tests.fakes.servers import mounted_below
from tests.support.plugin import ACCEPT

MB = 1024 * 1024
ERR_MAX = 600  # an Err names a hostile value; it never echoes it in full


# Raw HTTP, so that methods, headers and sizes dockerd never sends can be sent.


@dataclass(frozen=True)
class Request:
    """One HTTP request to the plugin, byte for byte."""

    path: str
    body: bytes = b""
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    chunked: bool = False

    def wire(self) -> bytes:
        """The request as sent on the socket."""
        head = [f"{self.method} {self.path} HTTP/1.1", "Host: plugin.moby.localhost"]
        head += [f"Accept: {ACCEPT}", *(f"{k}: {v}" for k, v in self.headers)]
        if self.chunked:  # no length for the plugin to refuse the body by
            head.append("Transfer-Encoding: chunked")
            pieces = [self.body[i : i + MB] for i in range(0, len(self.body), MB)]
            body = b"".join(_chunk(piece) for piece in [*pieces, b""])
        else:
            head.append(f"Content-Length: {len(self.body)}")
            body = self.body
        return "\r\n".join(head).encode() + b"\r\n\r\n" + body


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def post(endpoint: str, **fields: Any) -> Request:
    """A JSON body to /VolumeDriver.<endpoint>, as dockerd sends it."""
    return Request(f"/VolumeDriver.{endpoint}", json.dumps(fields).encode())


def raw(body: bytes, endpoint: str = "Create", **kwargs: Any) -> Request:
    """Arbitrary bytes as the body of /VolumeDriver.<endpoint>."""
    return Request(f"/VolumeDriver.{endpoint}", body, **kwargs)


def send(socket_path: str, request: Request, timeout: float = 30) -> tuple[int, Any]:
    """Send `request` on a new connection; return (status, decoded JSON reply).

    The body is written from a thread: the plugin may answer and hang up
    before reading all of a huge body, and the reply must still be read.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        writer = threading.Thread(target=_send_quietly, args=(sock, request.wire()))
        writer.start()
        try:
            return read_reply(sock, request.method)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # unblocks a writer the plugin stopped reading
            writer.join(timeout)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):  # the plugin refused the rest of a body
        sock.sendall(data)


def read_reply(sock: socket.socket, method: str = "POST") -> tuple[int, Any]:
    """Read one HTTP response from `sock`; return (status, decoded JSON)."""
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        return response.status, json.loads(response.read() or b"null")
    finally:
        response.close()


# The catalogue. Each case is a request and the text its Err must contain:
# the offending value (as Python's repr shows it) or the field at fault.


def bad_name(case_id: str, name: str, endpoint: str = "Create") -> Any:
    """A request whose only fault is its volume name."""
    fields = {"Name": name, "ID": "ctr"} if endpoint in ("Mount", "Unmount") else {"Name": name}
    names = repr(name) if len(name) <= 200 else f"is {len(name)} characters"
    return pytest.param(post(endpoint, **fields), names, id=f"name-{case_id}")


def bad_opts(case_id: str, names: str, **opts: Any) -> Any:
    """A Create of a good new name whose only fault is in its -o options."""
    return pytest.param(post("Create", Name="fresh", Opts=opts), names, id=f"opts-{case_id}")


def bad_body(case_id: str, request: Request, names: str) -> Any:
    """A request that is malformed as HTTP or JSON."""
    return pytest.param(request, names, id=f"body-{case_id}")


NAMES = [
    bad_name("traversal", "../x"),
    bad_name("dotdot", ".."),
    bad_name("deep-traversal", "../../../etc/cron.d/x"),
    bad_name("metadata-dir", ".nfsvol"),
    bad_name("separator", "a/b"),
    bad_name("absolute", "/etc"),
    bad_name("backslash", "a\\b"),
    bad_name("newline", "a\nb"),
    bad_name("carriage-return", "a\rb"),
    bad_name("tab", "a\tb"),
    bad_name("ansi-escape", "a\x1b[31mb"),
    bad_name("delete-char", "a\x7fb"),
    bad_name("nul-inside", "a\x00b"),
    bad_name("nul-only", "\x00"),
    bad_name("leading-dash", "-rf"),
    bad_name("double-dash-option", "--help"),
    bad_name("command-substitution", "$(id)"),
    bad_name("semicolon", "a;reboot"),
    bad_name("backticks", "`id`"),
    bad_name("pipe", "a|sh"),
    bad_name("redirect", "a>/etc/passwd"),
    bad_name("glob", "*"),
    bad_name("tilde", "~root"),
    bad_name("space", "a b"),
    bad_name("leading-space", " data"),
    bad_name("over-long-201", "a" * 201),
    bad_name("over-long-300", "b" * 300),
    bad_name("over-long-64k", "c" * 65536),
    bad_name("fullwidth-solidus", "a\uff0fb"),
    bad_name("division-slash", "a\u2215b"),
    bad_name("fraction-slash", "a\u2044b"),
    bad_name("rtl-override", "a\u202eb"),
    bad_name("zero-width-space", "a\u200bb"),
    bad_name("fullwidth-dots", "\uff0e\uff0e"),
    bad_name("cyrillic-a", "d\u0430ta"),
    bad_name("fullwidth-letters", "\uff44\uff41\uff54\uff41"),
    bad_name("mount-traversal", "../x", "Mount"),
    bad_name("remove-traversal", "../../etc", "Remove"),
    bad_name("path-separator", "a/b", "Path"),
    bad_name("get-dotdot", "..", "Get"),
    bad_name("unmount-dash", "-rf", "Unmount"),
]

OPTIONS = [
    bad_opts("server", "'server'", server="evil.example"),
    bad_opts("servers", "'servers'", servers="evil.example"),
    bad_opts("export", "'export'", export="/"),
    bad_opts("device", "'device'", device="/dev/sda"),
    bad_opts("type", "'type'", type="nfs"),
    bad_opts("path", "'path'", path="/etc"),
    bad_opts("mountpoint", "'mountpoint'", mountpoint="/etc"),
    bad_opts("o-bind", "'o'", o="bind"),
    bad_opts("bind", "'bind'", bind=""),
    bad_opts("suid", "'suid'", suid=""),
    bad_opts("dev", "'dev'", dev=""),
    bad_opts("exec", "'exec'", exec=""),
    bad_opts("addr", "'addr'", addr="10.6.6.6"),
    bad_opts("o-addr-override", "'o'", o="addr=10.6.6.6"),
    bad_opts("o-comma-smuggling", "'o'", o="hard,suid"),
    bad_opts("options-comma-smuggling", "'options'", options="hard,suid"),
    bad_opts("unknown-beside-good", "'o'", share="main", o="suid"),
    bad_opts("key-case", "'SHARE'", SHARE="main"),
    bad_opts("key-trailing-space", "'share '", **{"share ": "main"}),
    bad_opts("share-traversal", "share '../../etc'", share="../../etc"),
    bad_opts("share-absolute", "share '/etc'", share="/etc"),
    bad_opts("share-dotdot-inside", "share 'main/../scratch'", share="main/../scratch"),
    bad_opts("share-comma-smuggling", "share 'main,suid'", share="main,suid"),
    bad_opts("share-unconfigured-server", "share 'nfs3'", share="nfs3"),
    bad_opts("share-case", "share 'MAIN'", share="MAIN"),
    bad_opts("share-newline", "share 'main\\n'", share="main\n"),
    bad_opts("uid-negative", "uid='-1'", uid="-1"),
    bad_opts("uid-no-change-sentinel", "uid='4294967295'", uid="4294967295"),
    bad_opts("uid-huge", "uid='99999999999999999999'", uid="99999999999999999999"),
    bad_opts("uid-5000-digits", "(5002 characters) is not a numeric id", uid="9" * 5000),
    bad_opts("uid-name", "uid='root'", uid="root"),
    bad_opts("uid-hex", "uid='0x10'", uid="0x10"),
    bad_opts("uid-exponent", "uid='1e3'", uid="1e3"),
    bad_opts("uid-plus", "uid='+1'", uid="+1"),
    bad_opts("uid-space", "uid=' 1'", uid=" 1"),
    bad_opts("uid-comma-smuggling", "uid='0,suid'", uid="0,suid"),
    bad_opts("uid-superscript", "uid='\u00b2'", uid="\u00b2"),
    bad_opts(
        "uid-fullwidth-digits", "uid='\uff11\uff10\uff10\uff10'", uid="\uff11\uff10\uff10\uff10"
    ),
    bad_opts("uid-empty", "uid=''", uid=""),
    bad_opts("gid-negative", "gid='-5'", gid="-5"),
    bad_opts("gid-name", "gid='abc'", gid="abc"),
    bad_opts("gid-comma-smuggling", "gid='0,dev'", gid="0,dev"),
    bad_opts("mode-07777", "mode='07777'", mode="07777"),
    bad_opts("mode-setuid", "mode='4755'", mode="4755"),
    bad_opts("mode-8", "mode='8'", mode="8"),
    bad_opts("mode-abc", "mode='abc'", mode="abc"),
    bad_opts("mode-negative", "mode='-755'", mode="-755"),
    bad_opts("mode-python-octal", "mode='0o755'", mode="0o755"),
    bad_opts("mode-comma-smuggling", "mode='0755,suid'", mode="0755,suid"),
    bad_opts("mode-trailing-newline", "mode='0755\\n'", mode="0755\n"),
    bad_opts("uid-int", "uid=0", uid=0),
    bad_opts("mode-int", "mode=493", mode=493),
    bad_opts("share-list", "share=['main']", share=["main"]),
    bad_opts("uid-null", "uid=None", uid=None),
    bad_opts("share-null", "share=None", share=None),
    bad_opts("gid-bool", "gid=True", gid=True),
]

BODIES = [
    bad_body("not-json", raw(b"not json"), "not JSON: b'not json'"),
    bad_body("truncated-json", raw(b'{"Name": "vol"'), """not JSON: b'{"Name": "vol"'"""),
    bad_body("trailing-garbage", raw(b'{"Name": "vol"} rm -rf /'), "rm -rf /'"),
    bad_body("invalid-utf8", raw(b"\xff\xfe\xfd"), "not JSON: b'\\xff\\xfe\\xfd'"),
    bad_body("raw-nul-in-string", raw(b'{"Name": "a\x00b"}'), '"a\\x00b"'),
    bad_body("nested-100k-deep", raw(b"[" * 100_000), "not JSON: b'[[[["),
    bad_body("array", raw(b"[1, 2]"), "must be a JSON object, not b'[1, 2]'"),
    bad_body("string", raw(b'"Name"'), """must be a JSON object, not b'"Name"'"""),
    bad_body("null", raw(b"null"), "must be a JSON object, not b'null'"),
    bad_body("name-int", post("Create", Name=7), "Name, got 7"),
    bad_body("name-list", post("Create", Name=["v"]), "Name, got ['v']"),
    bad_body("name-object", post("Create", Name={"x": 1}), "Name, got {'x': 1}"),
    bad_body("name-null", post("Create", Name=None), "Name, got None"),
    bad_body("name-bool", post("Create", Name=True), "Name, got True"),
    bad_body("name-nan", raw(b'{"Name": NaN}'), "Name, got nan"),
    bad_body("name-empty", post("Create", Name=""), "Name, got ''"),
    bad_body("name-missing", post("Create", Opts={"share": "main"}), "Name, got None"),
    bad_body("name-lowercase-key", post("Create", name="v"), "Name, got None"),
    bad_body("empty-body", raw(b""), "Name, got None"),
    bad_body("opts-list", post("Create", Name="fresh", Opts=["uid=0"]), "Opts must be a JSON object, not ['uid=0']"),
    bad_body("opts-string", post("Create", Name="fresh", Opts="uid=0"), "not 'uid=0'"),
    bad_body("opts-int", post("Create", Name="fresh", Opts=5), "not 5"),
    bad_body("mount-id-int", post("Mount", Name="seed", ID=5), "mount ID must be a string, got 5"),
    bad_body("mount-id-list", post("Mount", Name="seed", ID=["c"]), "got ['c']"),
    bad_body("mount-id-null", post("Mount", Name="seed", ID=None), "got None"),
    bad_body("huge-10mb-name", post("Create", Name="x" * (10 * MB)), f"larger than {MAX_BODY}"),
    bad_body("huge-10mb-garbage", raw(b"\x00" * (10 * MB)), f"larger than {MAX_BODY}"),
    bad_body(
        "huge-10mb-opts",
        post("Create", Name="fresh", Opts={f"k{i}": "v" * 100 for i in range(100_000)}),
        f"larger than {MAX_BODY}",
    ),
    bad_body(
        "huge-chunked-no-length",
        raw(json.dumps({"Name": "y" * (2 * MB)}).encode(), chunked=True),
        f"larger than {MAX_BODY}",
    ),
    bad_body("under-cap-900k-name", post("Create", Name="z" * 900_000), "is 900000 characters"),
    bad_body("form-encoded", raw(b"Name=../x", headers=(("Content-Type", "application/x-www-form-urlencoded"),)), "not JSON: b'Name=../x'"),
    bad_body("name-in-query", Request("/VolumeDriver.Create?Name=../x"), "Name, got None"),
    bad_body("get-create", Request("/VolumeDriver.Create", method="GET"), "GET /VolumeDriver.Create"),
    bad_body("put-create", raw(b'{"Name": "vol"}', method="PUT"), "PUT /VolumeDriver.Create"),
    bad_body("delete-remove", raw(b'{"Name": "seed"}', "Remove", method="DELETE"), "DELETE /VolumeDriver.Remove"),
    bad_body("patch-create", raw(b'{"Name": "vol"}', method="PATCH"), "PATCH /VolumeDriver.Create"),
    bad_body("options-create", raw(b"", method="OPTIONS"), "OPTIONS /VolumeDriver.Create"),
    bad_body("get-activate", Request("/Plugin.Activate", method="GET"), "GET /Plugin.Activate"),
    bad_body("unknown-endpoint", raw(b"{}", "Explode"), "POST /VolumeDriver.Explode"),
    bad_body("endpoint-case", raw(b'{"Name": "vol"}', "create"), "POST /VolumeDriver.create"),
    bad_body("endpoint-trailing-slash", Request("/VolumeDriver.Create/", b'{"Name": "vol"}'), "POST /VolumeDriver.Create/"),
    bad_body("endpoint-traversal", Request("/VolumeDriver.Create/../VolumeDriver.Remove", b'{"Name": "seed"}'), "POST /VolumeDriver.Create/../VolumeDriver.Remove:"),
    bad_body("endpoint-etc-passwd", Request("/../../etc/passwd", b"{}"), "POST /../../etc/passwd:"),
    bad_body("endpoint-root", Request("/", b"{}"), "POST /:"),
    bad_body("endpoint-deactivate", Request("/Plugin.Deactivate", b"{}"), "POST /Plugin.Deactivate"),
]  # fmt: skip

CATALOGUE = NAMES + OPTIONS + BODIES


# What must not change: the storage tree, the mounts, and the helpers run.


@dataclass(frozen=True)
class World:
    """Everything a hostile request could have changed."""

    tree: dict[str, tuple[Any, ...]]
    mounts: list[str]
    mount_calls: list[list[str]]
    umount_calls: list[list[str]]


def tree(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple[Any, ...]]:
    """Every entry under `root`, links not followed: type, mode, owner, and file contents."""
    entries = {}
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(parent, name)
            relative = str(path.relative_to(root))
            if relative not in skip:
                entries[relative] = _describe(path)
    return entries


def _describe(path: Path) -> tuple[Any, ...]:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    owner = (stat.filemode(st.st_mode), st.st_uid, st.st_gid)
    if stat.S_ISREG(st.st_mode):
        return ("file", *owner, hashlib.sha256(path.read_bytes()).hexdigest())
    return ("dir" if stat.S_ISDIR(st.st_mode) else "other", *owner)


def world(plugin: Any) -> World:
    """The plugin's whole world: exports, path share, state dir, mounts, helper calls."""
    root = plugin.state_dir.parent
    return World(
        tree=tree(root, skip=("plugin.log",)),  # the log grows with every request, by design
        mounts=mounted_below(root),
        mount_calls=plugin.servers.calls(),
        umount_calls=plugin.servers.umount_calls(),
    )


def settle(plugin: Any, timeout: float = 20) -> None:
    """Wait until no share is mounted, parked or being mounted."""
    record = plugin.state_dir / "mounts" / "main.json"
    deadline = time.monotonic() + timeout
    while mounted_below(plugin.state_dir) or record.exists() or plugin.servers.helpers():
        assert time.monotonic() < deadline, "the plugin never released its share mount"
        time.sleep(0.1)


def assert_clear_err(status: int, reply: Any, names: str) -> str:
    """A failure whose Err names the fault, briefly, with a request ID to grep for."""
    assert status != 200, reply
    err = reply.get("Err") if isinstance(reply, dict) else None
    assert err and names in err, (names, reply)
    assert len(err) < ERR_MAX and err.endswith("]") and "[request " in err, err
    return str(err)


@pytest.fixture(scope="module")
def hostile(served_module):
    """A plugin holding real volumes on both shares, quiet, with its helpers' logs going."""
    client = served_module.client
    client.ok("Create", Name="seed", Opts={"uid": "1000", "mode": "0750"})
    client.ok("Create", Name="local", Opts={"share": "scratch"})
    settle(served_module)
    # The snapshot and the spies must be able to see what a request could do.
    seen = world(served_module)
    assert "exports/nfs1/srv/docker/.nfsvol/volumes/seed.json" in seen.tree
    assert "scratch/local" in seen.tree
    assert seen.mount_calls and seen.umount_calls
    return served_module


@pytest.mark.parametrize(("request_", "names"), CATALOGUE)
def test_hostile_request_changes_nothing(hostile, request_, names):
    """The request gets a clear Err; no directory, mount or process appears; no share changes."""
    before = world(hostile)
    status, reply = send(hostile.process.socket_path, request_)
    assert_clear_err(status, reply, names)
    after = world(hostile)
    assert after.tree == before.tree
    assert after.mounts == before.mounts
    assert after.mount_calls == before.mount_calls
    assert after.umount_calls == before.umount_calls


def test_catalogue_is_large_and_covers_every_category():
    """At least 40 distinct cases, in each category the issue names."""
    ids = [case.id for case in CATALOGUE]
    assert len(ids) == len(set(ids)) >= 40
    assert {i.split("-", 1)[0] for i in ids} == {"name", "opts", "body"}
    assert len({case.values[0] for case in CATALOGUE}) == len(ids)


def test_hostile_values_are_not_copied_into_the_log(hostile):
    """A 900 KB name costs the log one short line, not a megabyte."""
    log = hostile.process.log_path
    size = log.stat().st_size
    status, reply = send(hostile.process.socket_path, post("Create", Name="n" * 900_000))
    assert_clear_err(status, reply, "is 900000 characters")
    assert 0 < log.stat().st_size - size < 4096


def test_slow_clients_are_dropped_while_others_are_served(hostile):
    """Clients that send half a body and stall are dropped within the bound; others get answers."""
    before = world(hostile)
    body = json.dumps({"Name": "slow", "Opts": {"share": "main"}}).encode()
    wire = Request("/VolumeDriver.Create", body).wire()
    half = len(wire) - len(body) // 2
    stalled = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(4)]
    with contextlib.ExitStack() as stack:
        for sock in stalled:
            stack.enter_context(sock)
            sock.settimeout(BODY_TIMEOUT + 15)
            sock.connect(hostile.process.socket_path)
            sock.sendall(wire[:half])
        started = time.monotonic()
        for _ in range(5):  # served meanwhile, from a cached record: no mount
            assert hostile.client.ok("Get", Name="seed")["Volume"]["Name"] == "seed"
            assert hostile.client.ok("Capabilities") == {"Capabilities": {"Scope": "global"}}
        answered = time.monotonic() - started
        replies = [read_reply(sock) for sock in stalled]
        dropped = time.monotonic() - started
        closed = [sock.recv(1) for sock in stalled]
    assert answered < BODY_TIMEOUT / 2, answered
    assert BODY_TIMEOUT - 2 < dropped < BODY_TIMEOUT + 10, dropped
    for status, reply in replies:
        assert_clear_err(
            status, reply, f"request body stopped arriving: nothing for {BODY_TIMEOUT:g}s"
        )
    assert closed == [b""] * len(stalled)
    assert world(hostile) == before


def test_plugin_serves_normally_after_the_catalogue(hostile):
    """After the whole catalogue, sent again all at once, a good volume's life is normal."""
    before = world(hostile)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(
            pool.map(lambda c: send(hostile.process.socket_path, c.values[0]), CATALOGUE)
        )
    for case, (status, reply) in zip(CATALOGUE, replies, strict=True):
        assert_clear_err(status, reply, case.values[1])
    assert world(hostile) == before
    assert_good_volume_lifecycle(hostile)


def assert_good_volume_lifecycle(plugin: Any) -> None:
    """Create, mount, write, unmount and remove a volume, as a container run does."""
    c = plugin.client
    c.ok("Create", Name="good", Opts={"uid": "33", "mode": "0750"})
    mountpoint = Path(c.ok("Mount", Name="good", ID="ctr")["Mountpoint"])
    assert mountpoint == plugin.state_dir / "vol" / "main" / "good"
    (mountpoint / "hello").write_text("hi")
    assert (plugin.export / "good" / "hello").read_text() == "hi"
    c.ok("Unmount", Name="good", ID="ctr")
    assert plugin.wait_unmounted() == []
    c.ok("Remove", Name="good")
    assert not (plugin.export / "good").exists()
    assert "good" not in [v["Name"] for v in c.ok("List")["Volumes"]]


# Symlinks a container plants on the share, before Remove, Mount and Create.


@pytest.fixture
def outside(tmp_path):
    """A directory outside every share, with a canary file that links point at."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "canary").write_text("still here")
    return path


def plant_inside(volume: Path, outside: Path) -> None:
    """Links inside the volume to the outside directory and file, and a hard link."""
    (volume / "escape").symlink_to(outside)
    (volume / "canary-link").symlink_to(outside / "canary")
    (volume / "deep" / "er").mkdir(parents=True)
    (volume / "deep" / "er" / "escape").symlink_to(outside, target_is_directory=True)
    os.link(outside / "canary", volume / "hardlink")


def plant_in_place(volume: Path, outside: Path) -> None:
    """The volume's directory itself replaced by a link to the outside directory."""
    volume.rmdir()
    volume.symlink_to(outside, target_is_directory=True)


PLANTS = [
    pytest.param(plant_inside, "main", id="inside-nfs-share"),
    pytest.param(plant_in_place, "main", id="in-place-nfs-share"),
    pytest.param(plant_inside, "scratch", id="inside-path-share"),
    pytest.param(plant_in_place, "scratch", id="in-place-path-share"),
]


def share_root(plugin: Any, share: str) -> Path:
    """Where the share's volumes live, as a container on it sees them."""
    return plugin.export if share == "main" else plugin.scratch


@pytest.mark.parametrize(("plant", "share"), PLANTS)
def test_remove_never_deletes_through_a_planted_link(served, outside, plant, share):
    """Remove succeeds, and everything outside the share survives it."""
    served.client.ok("Create", Name="vol", Opts={"share": share})
    plant(share_root(served, share) / "vol", outside)
    before = tree(outside)
    served.client.ok("Remove", Name="vol")
    assert (outside / "canary").read_text() == "still here"
    assert tree(outside) == before
    assert served.client.ok("List")["Volumes"] == []
    assert served.wait_unmounted() == []
    assert_good_volume_lifecycle(served)


@pytest.mark.parametrize(("plant", "share"), PLANTS)
def test_mount_never_hands_docker_a_path_outside_the_share(served, outside, plant, share):
    """Mount answers Err, or the volume's real directory inside the share."""
    served.client.ok("Create", Name="vol", Opts={"share": share})
    plant(share_root(served, share) / "vol", outside)
    before = tree(outside)
    status, reply = served.client.call("Mount", Name="vol", ID="ctr")
    if plant is plant_in_place:
        assert_clear_err(status, reply, "'vol'")
    else:
        assert status == 200, reply
        mountpoint = Path(reply["Mountpoint"])
        assert mountpoint == served.state_dir / "vol" / share / "vol" and mountpoint.is_dir()
        assert mountpoint.resolve() == mountpoint  # no link on the way
        assert os.path.samestat(mountpoint.stat(), (share_root(served, share) / "vol").lstat())
        served.client.ok("Unmount", Name="vol", ID="ctr")
    assert tree(outside) == before
    assert served.wait_unmounted() == []
    assert_good_volume_lifecycle(served)


@pytest.mark.parametrize("share", ["main", "scratch"])
def test_create_never_chmods_through_a_planted_link(served, outside, share):
    """Create over a link in place of the new volume refuses, and leaves the target alone."""
    (share_root(served, share) / "vol").symlink_to(outside, target_is_directory=True)
    before = (_describe(outside), tree(outside))
    err = served.client.err("Create", Name="vol", Opts={"share": share, "mode": "0777", "uid": "4"})
    assert "'vol'" in err and "symlink" in err
    assert (_describe(outside), tree(outside)) == before  # mode and owner too
    assert "vol" not in [v["Name"] for v in served.client.ok("List")["Volumes"]]
    assert served.wait_unmounted() == []
