"""A hostile share (issue 21): what any host or container plants there changes nothing outside.

Every host and the server can write a share's .nfsvol folder, and every
container its own volume. Each case plants something on a `path` share
served by the real plugin, then drives List, Get, Mount, Unmount, Remove
and Create. Each must answer within BUDGET and never with "internal error";
a canary tree outside the share must stay byte-identical (names, contents,
modes); and a good volume on the same share must keep working.
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.protocol.conftest import serving
from tests.protocol.test_hostile import tree

BUDGET = 5.0  # seconds for any one answer; the machine running the tests is loaded
OTHERS = [f"other{i}" for i in range(8)]  # volumes another host creates meanwhile


@dataclass
class Site:
    """A plugin on a path share, a canary outside it, and the share's paths."""

    plugin: Any
    root: Path
    canary: Path

    @property
    def meta(self) -> Path:
        """The share's .nfsvol folder."""
        return self.root / ".nfsvol"

    def call(self, endpoint: str, **fields: Any) -> tuple[int, Any]:
        """One request, timed: it must answer within BUDGET and never as an internal error."""
        started = time.monotonic()
        status, reply = self.plugin.client.call(endpoint, timeout=BUDGET * 3, **fields)
        took = time.monotonic() - started
        assert took < BUDGET, (endpoint, fields, took)
        assert "internal error" not in json.dumps(reply), (endpoint, reply)
        return status, reply


def record(name: Any, share: Any = "scratch", **extra: Any) -> dict[str, Any]:
    """A volume record as another host would write it."""
    return {"name": name, "share": share, "created_at": "t", "created_by": "h",
            "options": {"share": "scratch"}, **extra}  # fmt: skip


def lease(host: Any = "ghost", **extra: Any) -> dict[str, Any]:
    """A lease as another host would write it."""
    return {"host": host, "since": "t", "renewed": "t", "ttl": 30, "token": "x", **extra}


@pytest.fixture
def site(tmp_path):
    """A fresh plugin whose only share is a delete-on-remove path share, with a canary."""
    canary = tmp_path / "canary"
    (canary / "sub").mkdir(parents=True)
    (canary / "a.txt").write_text("canary")
    (canary / "sub" / "b.json").write_text('{"keep": true}')
    (canary / "sub").chmod(0o700)
    shares = {"scratch": {"type": "path", "path": str(tmp_path / "scratch"), "on_remove": "delete"}}
    with serving(tmp_path, default_share="scratch", shares=shares, lease_ttl=3) as plugin:
        plugin.client.ok("Create", Name="good")
        (plugin.scratch / "good" / "data").write_text("mine")
        plugin.client.ok("Create", Name="vic")
        plugin.client.ok("Create", Name="solo", Opts={"access": "single-host"})
        yield Site(plugin, plugin.scratch, canary)
    # A tree deeper than Python's recursion limit would break pytest's own clean-up.
    subprocess.run(["rm", "-rf", "--one-file-system", str(tmp_path / "scratch")], check=False)


# Plants: each changes the share and may return a function that undoes a
# change the good volume cannot be expected to survive (its metadata stolen).

Plant = Callable[[Site], Callable[[], None] | None]


def put(path: Path, data: Any) -> None:
    """Write `data` as JSON at `path`, making folders on the way."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def volume_file(name: str, data: Any) -> Plant:
    """A file .nfsvol/volumes/<name> holding `data` (callable: given the site)."""
    return lambda s: put(s.meta / "volumes" / name, data(s) if callable(data) else data)


def lease_file(volume: str, name: str, data: Any) -> Plant:
    """A file .nfsvol/leases/<volume>/<name> holding `data`."""
    return lambda s: put(s.meta / "leases" / volume / name, data)


def special(where: Callable[[Site], Path], make: Callable[[Path], None]) -> Plant:
    """Something that is not a regular file at `where`."""

    def plant(s: Site) -> None:
        path = where(s)
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)

    return plant


def stolen(relative: str) -> Plant:
    """The real folder moved into the canary and a link left in its place."""

    def plant(s: Site) -> Callable[[], None]:
        real, moved = s.meta / relative, s.canary / f"stolen-{relative.replace('/', '-')}"
        shutil.move(real, moved)
        real.symlink_to(moved, target_is_directory=True)

        def undo() -> None:
            real.unlink()
            shutil.move(moved, real)

        return undo

    return plant


def linked_to_canary(relative: str) -> Plant:
    """A link at .nfsvol/<relative> to a folder in the canary holding files."""

    def plant(s: Site) -> None:
        target = s.canary / f"target-{relative.replace('/', '-')}"
        target.mkdir()
        (target / "vic").mkdir()  # what a link at .nfsvol/leases leads vic's leases to
        for folder in (target, target / "vic"):  # not leases: nothing refuses a Remove
            (folder / "keep.txt").write_text("canary")
        path = s.meta / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        path.symlink_to(target, target_is_directory=True)

    return plant


def deep_tree(depth: int) -> Plant:
    """A tree `depth` folders deep in volume vic, made through descriptors (past PATH_MAX)."""

    def plant(s: Site) -> None:
        fd = os.open(s.root / "vic", os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)

    return plant


def many_files(count: int) -> Plant:
    """`count` empty files in volume vic."""

    def plant(s: Site) -> None:
        for i in range(count):
            os.close(os.open(s.root / "vic" / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))

    return plant


def sparse(path: Path) -> None:
    """An 8 GiB file that takes no space: a reader that trusts it reads 8 GiB."""
    with path.open("wb") as f:
        f.truncate(8 << 30)


def zero(path: Path) -> None:
    """A link to /dev/zero."""
    path.symlink_to("/dev/zero")


CANARY_NAME = lambda s: record("../../../canary/planted")  # noqa: E731  state/cache/scratch/..
CASES = [
    # Records with planted fields: the cache write must not leave the state dir.
    pytest.param(volume_file("evil.json", CANARY_NAME), "sync", id="record-name-dotdot"),
    pytest.param(
        volume_file("evil.json", lambda s: record(str(s.canary / "planted"))),
        "sync",
        id="record-name-absolute",
    ),
    pytest.param(
        volume_file("evil.json", record("evil", "../../canary")), "sync", id="record-share-dotdot"
    ),
    pytest.param(
        volume_file("evil.json", lambda s: record("evil", str(s.canary))),
        "sync",
        id="record-share-absolute",
    ),
    pytest.param(
        volume_file("evil.json", record("good", options={"share": "scratch", "uid": "4"})),
        "sync",
        id="record-name-not-its-file",
    ),
    pytest.param(volume_file("zz.json", record("zz", "main")), "sync", id="record-other-share"),
    # Records that are not records: the sync skips them and sees the rest.
    pytest.param(
        special(lambda s: s.meta / "volumes" / "fifo.json", os.mkfifo), "sync", id="record-fifo"
    ),
    pytest.param(volume_file("bad.json", "{not json"), "sync", id="record-malformed-json"),
    pytest.param(volume_file("bad.json", "[]"), "sync", id="record-array"),
    pytest.param(volume_file("bad.json", "[" * 30_000), "sync", id="record-nested-too-deep"),
    pytest.param(volume_file("bad.json", {"name": "bad"}), "sync", id="record-missing-fields"),
    pytest.param(
        volume_file("bad.json", record("bad", options="xyz")),
        "sync",
        id="record-options-not-an-object",
    ),
    pytest.param(
        special(lambda s: s.meta / "volumes" / "huge.json", sparse), "sync", id="record-huge-sparse"
    ),
    pytest.param(
        special(lambda s: s.meta / "volumes" / "zero.json", zero),
        "sync",
        id="record-link-to-dev-zero",
    ),
    pytest.param(
        special(lambda s: s.meta / "volumes" / "dir.json", Path.mkdir),
        "sync",
        id="record-directory",
    ),
    # Links at each level of .nfsvol, and at a volume's lease folder.
    pytest.param(stolen(""), "vic", id="link-at-nfsvol"),
    pytest.param(stolen("volumes"), "vic", id="link-at-volumes"),
    pytest.param(linked_to_canary("leases"), "vic", id="link-at-leases"),
    pytest.param(linked_to_canary("leases/vic"), "vic", id="link-at-lease-folder"),
    pytest.param(linked_to_canary("trash"), "vic", id="link-at-trash"),
    # Lease records of the wrong shape.
    pytest.param(lease_file("vic", "ghost.json", "{}"), "vic", id="lease-empty-object"),
    pytest.param(lease_file("vic", "ghost.json", "[]"), "vic", id="lease-array"),
    pytest.param(lease_file("vic", "ghost.json", dict.fromkeys(lease())), "vic", id="lease-nulls"),
    pytest.param(lease_file("vic", "ghost.json", lease(ttl="soon")), "vic", id="lease-ttl-text"),
    pytest.param(lease_file("vic", "ghost.json", lease(ttl=1e308)), "vic", id="lease-ttl-absurd"),
    pytest.param(lease_file("vic", "ghost.json", "{bad"), "vic", id="lease-malformed"),
    pytest.param(
        special(lambda s: s.meta / "leases" / "vic" / "ghost.json", os.mkfifo),
        "vic",
        id="lease-fifo",
    ),
    pytest.param(
        special(lambda s: s.meta / "leases" / "vic" / "ghost.json", zero),
        "vic",
        id="lease-link-to-dev-zero",
    ),
    pytest.param(
        lease_file("solo", "owner.999999999999.json", lease()),
        "solo",
        id="lease-owner-absurd-generation",
    ),
    pytest.param(lease_file("solo", "owner.1.json", {"host": 5}), "solo", id="lease-owner-junk"),
    # Trees a container leaves in its volume for Remove.
    pytest.param(deep_tree(3_000), "vic", id="tree-3000-deep"),
    pytest.param(many_files(20_000), "vic", id="tree-20000-files"),
]


def other_host_creates(s: Site) -> None:
    """Volumes another host records on the share meanwhile: a sync must find them."""
    for name in OTHERS:
        (s.root / name).mkdir()
        put(s.meta / "volumes" / f"{name}.json", record(name))


def exercise(s: Site, target: str) -> None:
    """Every verb: syncs, the target volume's Mount/Unmount/Remove, a Create."""
    time.sleep(1.2)  # past catalog_ttl: the next List syncs
    s.call("List")
    s.call("Get", Name=OTHERS[-1])
    if target != "sync":
        status, _ = s.call("Mount", Name=target, ID="ctr")
        if status == 200:
            time.sleep(1.5)  # the keeper renews a lease (lease_ttl 3)
            s.call("Unmount", Name=target, ID="ctr")
        s.call("Remove", Name=target)
    s.call("Create", Name="fresh")


def assert_good_volume_works(s: Site) -> None:
    """The good volume and the other host's ones are listed, found, mounted and unmounted."""
    time.sleep(1.2)
    names = {v["Name"] for v in s.call("List")[1]["Volumes"]}
    assert {"good", *OTHERS} <= names, names
    status, reply = s.call("Get", Name="good")
    assert status == 200 and reply["Volume"]["Status"]["options"] == {"share": "scratch"}, reply
    status, reply = s.call("Mount", Name="good", ID="ctr2")
    pin = s.plugin.state_dir / "vol" / "scratch" / "good"
    assert status == 200 and reply["Mountpoint"] == str(pin), reply
    assert (pin / "data").read_text() == "mine"
    assert s.call("Unmount", Name="good", ID="ctr2")[0] == 200


@pytest.mark.parametrize(("plant", "target"), CASES)
def test_a_hostile_share_changes_nothing_outside_it(site, plant, target):
    """Nothing outside the share changes, every answer is timely, the good volume works."""
    pristine = tree(site.canary)
    undo = plant(site)
    other_host_creates(site)
    before = tree(site.canary)
    exercise(site, target)
    assert tree(site.canary) == before
    assert not [f for _, _, files in os.walk(site.plugin.state_dir) for f in files
                if f.startswith("planted")]  # fmt: skip
    if undo is not None:
        undo()
    assert_good_volume_works(site)
    assert tree(site.canary) == (before if undo is None else pristine)
    assert_trash_emptied(site)


def assert_trash_emptied(s: Site, wait: float = 60) -> None:
    """Whatever Remove put in the trash is deleted in the background."""
    trash = s.meta / "trash"
    if trash.is_symlink():
        return  # planted: Remove refused to move anything there
    deadline = time.monotonic() + wait
    while os.listdir(trash) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert os.listdir(trash) == []


def test_catalogue_covers_every_hole():
    """At least 30 cases, over records, links, leases and trees."""
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 30
    assert {i.split("-", 1)[0] for i in ids} == {"record", "link", "lease", "tree"}


def test_single_host_owner_keeps_its_lease_past_a_planted_generation(site):
    """owner.999999999999.json planted beside a live owner neither ends its lease nor blocks it."""
    site.call("Mount", Name="solo", ID="c1")
    put(site.meta / "leases" / "solo" / "owner.999999999999.json", lease())
    time.sleep(3)  # two renewals at lease_ttl 3
    status = site.call("Get", Name="solo")[1]["Volume"]["Status"]
    assert "lease" not in status, status
    assert status["holders"] and status["holders"][0]["host"] != "ghost", status
    assert site.call("Unmount", Name="solo", ID="c1")[0] == 200


@pytest.mark.parametrize("depth_or_files", [("deep", 3_000), ("files", 20_000)])
def test_remove_of_a_huge_tree_answers_and_leaves_no_trash(site, depth_or_files):
    """Remove answers in time, the name is free at once, and the janitor empties the trash."""
    kind, n = depth_or_files
    (deep_tree(n) if kind == "deep" else many_files(n))(site)
    status, reply = site.call("Remove", Name="vic")
    assert status == 200, reply
    assert not (site.root / "vic").exists()
    assert "vic" not in {v["Name"] for v in site.call("List")[1]["Volumes"]}
    assert_trash_emptied(site)
    assert site.call("Create", Name="vic")[0] == 200  # the name is usable again


def test_create_over_an_existing_directory_applies_owner_and_mode(site):
    """Create with uid/gid/mode over a directory already there gives it that owner and mode."""
    (site.root / "pre").mkdir(mode=0o700)
    status, reply = site.call("Create", Name="pre", Opts={"uid": "4", "gid": "5", "mode": "0750"})
    assert status == 200, reply
    st = (site.root / "pre").stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4, 5, 0o750)


def test_create_over_a_file_refuses_naming_it(site):
    """Create over a regular file in place of the directory refuses, naming it, and keeps it."""
    (site.root / "pref").write_text("not a dir")
    status, reply = site.call("Create", Name="pref")
    assert status != 200 and "'pref'" in reply["Err"], reply
    assert (site.root / "pref").read_text() == "not a dir"
