"""The hostile-share catalogue (issue 21, item 10): one table, one check, and a seeded fuzz.

tests/protocol/test_hostile_share.py drives one fresh plugin per case; this
module extends the same catalogue with more kinds of garbage (records and
leases that are not UTF-8, hold NUL bytes or duplicate keys; folders of the
layout replaced by FIFOs and files; volume folders and trash entries that
are links into a canary) and shares one plugin between all of them, the
share put back as it was between cases. Every case, and every fuzz seed,
asserts the same three things:

- a canary tree outside the share and outside state_dir, which the plants
  link into, is byte-identical afterwards (names, contents, modes, links);
- each call answers within BUDGET and never as an internal error;
- a good volume created before the planting keeps working (Get, List,
  Mount, Unmount), and a new volume can be created, mounted and removed.
"""

import contextlib
import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.protocol.conftest import serving
from tests.protocol.test_hostile_share import CASES as FRESH_PLUGIN_CASES

# Every answer here is a few file operations on a local directory, well under
# 0.1 s. Five seconds leaves room for two CPUs shared with other test runs
# and a sync or trash pass running in another worker, while an answer that
# reads a FIFO, follows /dev/zero or walks a huge tree under the lock (the
# bugs this catalogue hunts) blocks far longer or forever.
BUDGET = 5.0
CATALOG_TTL = 0.05  # short: a case waits this long for List to sync the share again
SETTLE = CATALOG_TTL + 0.05
TRASH_WAIT = 30.0  # the janitor deletes trash a budget at a time, in the background
LURE = "lure"  # a valid record for it waits in the canary: only a followed link shows it


# The canary: outside the share and the state dir, with files, a folder, a
# link and distinct modes. Plants link into it; nothing may change it.


def make_canary(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "a.txt": ("canary", 0o640),
        "run.sh": ("#!/bin/sh\n", 0o755),
        "empty": ("", 0o600),
        "sub/b.json": ('{"keep": true}', 0o600),
        "sub/deeper/c": ("c" * 5000, 0o444),
        f"{LURE}.json": (json.dumps(record(LURE)), 0o644),  # a record valid on this share
        "lease.json": (json.dumps(lease("ghost")), 0o644),  # a valid lease of host ghost
    }
    for name, (text, mode) in files.items():
        (root / name).write_text(text)
        (root / name).chmod(mode)
    (root / "link").symlink_to("a.txt")
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    (root / "sub").chmod(0o750)
    (root / "sub" / "deeper").chmod(0o700)


def snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Each entry under `root` (and root itself), links not followed: mode, size, content."""
    entries = {}
    for parent, dirs, files in os.walk(root, followlinks=False):
        for name in ["", *dirs, *files] if parent == str(root) else [*dirs, *files]:
            path = os.path.join(parent, name) if name else parent
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                entries[path] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                entries[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, digest)
            else:
                entries[path] = (st.st_mode, st.st_uid, st.st_gid)
    return entries


def record(name: Any, share: Any = "scratch", **extra: Any) -> dict[str, Any]:
    """A volume record as another host would write it."""
    return {"name": name, "share": share, "created_at": "t", "created_by": "h",
            "options": {"share": "scratch"}, **extra}  # fmt: skip


def lease(host: Any = "ghost", **extra: Any) -> dict[str, Any]:
    """A lease as another host would write it."""
    return {"host": host, "since": "t", "renewed": "t", "ttl": 30, "token": "x", **extra}


@dataclass
class Site:
    """The plugin, its path share, the canary, and the calls made through it."""

    plugin: Any
    root: Path
    canary: Path
    good_record: bytes = b""
    calls: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def meta(self) -> Path:
        return self.root / ".nfsvol"

    def call(self, endpoint: str, **fields: Any) -> tuple[int, Any]:
        """One request, timed: within BUDGET, never an internal error.

        Not "never HTTP 500": the plugin protocol answers every refusal (no
        such volume, unsafe path) with 500 and an Err. What must not happen is
        an unexpected exception, which the plugin answers as "internal error".
        """
        started = time.monotonic()
        status, reply = self.plugin.client.call(endpoint, timeout=BUDGET * 3, **fields)
        took = time.monotonic() - started
        self.calls.append((endpoint, repr(fields.get("Name")), status))
        assert took < BUDGET, (endpoint, fields, took)
        assert "internal error" not in json.dumps(reply), (endpoint, reply)
        assert status == 200 or reply.get("Err"), (endpoint, status, reply)
        return status, reply

    def listed(self) -> set[str]:
        time.sleep(SETTLE)  # past catalog_ttl: this List syncs the share
        status, reply = self.call("List")
        assert status == 200, reply
        return {v["Name"] for v in reply["Volumes"]}


@pytest.fixture(scope="module")
def module_site(tmp_path_factory) -> Iterator[Site]:
    """One plugin on a delete-on-remove path share, a good volume, a canary."""
    tmp = tmp_path_factory.mktemp("catalogue")
    canary = tmp / "canary"
    make_canary(canary)
    shares = {"scratch": {"type": "path", "path": str(tmp / "scratch"), "on_remove": "delete"}}
    config = {"default_share": "scratch", "shares": shares, "lease_ttl": 3}
    with serving(tmp, catalog_ttl=CATALOG_TTL, **config) as plugin:
        plugin.client.ok("Create", Name="good")
        (plugin.scratch / "good" / "data").write_text("mine")
        plugin.client.ok("Create", Name="solo", Opts={"access": "single-host"})
        site = Site(plugin, plugin.scratch, canary)
        site.good_record = (site.meta / "volumes" / "good.json").read_bytes()
        yield site
    subprocess.run(["rm", "-rf", "--one-file-system", str(tmp / "scratch")], check=False)


@pytest.fixture
def site(module_site: Site) -> Iterator[Site]:
    """The shared site with a fresh victim volume `vic`; the share is put back afterwards."""
    module_site.calls.clear()
    status, reply = module_site.call("Create", Name="vic")
    assert status == 200, reply
    yield module_site
    restore(module_site)


def restore(s: Site) -> None:
    """Put the share back as the module fixture made it: good and solo, nothing planted."""
    meta, doomed = s.meta, []
    for path in [meta, *(meta / area for area in ("volumes", "leases", "trash", "archive"))]:
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            path.unlink()
    doomed += [s.root / n for n in os.listdir(s.root) if n not in {"good", "solo", ".nfsvol"}]
    for area in ("leases", "trash", "archive"):
        if (meta / area).is_dir():
            doomed += [meta / area / n for n in os.listdir(meta / area)]
    keep = {"good.json", "solo.json"}
    if (meta / "volumes").is_dir():
        doomed += [meta / "volumes" / n for n in os.listdir(meta / "volumes") if n not in keep]
    doomed += [s.root / "good" / n for n in os.listdir(s.root / "good") if n != "data"]
    if doomed:  # rm, not shutil: planted trees are deeper than Python's recursion limit
        subprocess.run(["rm", "-rf", "--one-file-system", "--", *map(str, doomed)], check=True)
    for area in ("volumes", "leases", "trash", "archive"):
        (meta / area).mkdir(parents=True, exist_ok=True)
    (meta / "volumes" / "good.json").write_bytes(s.good_record)
    (s.root / "good" / "data").write_text("mine")
    s.listed()  # the plugin forgets what it cached of the plants


# Plants. Each returns None, or an undo for a plant that takes the share's
# metadata away (a layout folder replaced): the good volume can be expected
# to work again only once an operator has put it back.

Plant = Callable[[Site], Callable[[], None] | None]


def replace(path: Path) -> None:
    """Make way at `path`: whatever is there goes, links not followed; folders on the way made."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)


def write(path: Path, data: Any) -> None:
    """`data` (bytes, text, or anything JSON) in place of whatever is at `path`."""
    replace(path)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))


def at(relative: str, data: Any) -> Plant:
    """A file at `relative` under the share's root."""
    return lambda s: write(s.root / relative, data)


def fifo(relative: str) -> Plant:
    return lambda s: _special(s.root / relative, os.mkfifo)


def folder(relative: str) -> Plant:
    return lambda s: _special(s.root / relative, Path.mkdir)


def link(relative: str, target: str | Callable[[Site], Any]) -> Plant:
    """A symlink at `relative` to `target` (a string, or a function of the site)."""
    return lambda s: _special(s.root / relative, lambda p: p.symlink_to(_target(s, target)))


def hardlink(relative: str, into_canary: str) -> Plant:
    """A hard link at `relative` to a canary file: writing through it changes the canary."""
    return lambda s: _special(s.root / relative, lambda p: os.link(s.canary / into_canary, p))


def _target(s: Site, target: str | Callable[[Site], Any]) -> str:
    return str(target(s) if callable(target) else target)


def _special(path: Path, make: Callable[[Path], Any]) -> None:
    replace(path)
    make(path)


def displaced(relative: str, make: Callable[[Site, Path], None]) -> Plant:
    """The real layout folder moved aside (within the share) and something else in its place."""

    def plant(s: Site) -> Callable[[], None]:
        real, aside = s.root / relative, s.root / f"{relative.replace('/', '-')}-aside"
        real.rename(aside)
        make(s, real)

        def undo() -> None:
            if real.is_dir() and not real.is_symlink():
                shutil.rmtree(real)
            else:
                real.unlink()
            aside.rename(real)

        return undo

    return plant


def as_fifo(s: Site, path: Path) -> None:
    os.mkfifo(path)


def as_file(s: Site, path: Path) -> None:
    path.write_text(json.dumps(record("good")))


def as_link_to_canary(s: Site, path: Path) -> None:
    path.symlink_to(s.canary, target_is_directory=True)


def deep(relative: str, depth: int) -> Plant:
    """A tree `depth` folders deep at `relative`, made through descriptors (past PATH_MAX)."""

    def plant(s: Site) -> None:
        (s.root / relative).mkdir(parents=True)
        fd = os.open(s.root / relative, os.O_RDONLY | os.O_DIRECTORY)
        for i in range(depth):
            os.mkdir("d", dir_fd=fd)
            if i % 100 == 0:  # a link into the canary on the way down
                os.symlink(str(s.canary), "l", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(fd)

    return plant


def links_into_canary(relative: str) -> Plant:
    """A folder at `relative` of links to the canary, its files, its folder and /."""

    def plant(s: Site) -> None:
        base = s.root / relative
        base.mkdir(parents=True)
        for name, target in [("dir", s.canary), ("file", s.canary / "a.txt"),
                             ("sub", s.canary / "sub"), ("root", "/"), ("gone", s.canary / "no")]:  # fmt: skip
            (base / name).symlink_to(target)
        os.mkfifo(base / "fifo")
        (base / "real").mkdir()
        (base / "real" / "up").symlink_to(s.canary / "sub" / "deeper")

    return plant


V, L, T, A = ".nfsvol/volumes", ".nfsvol/leases", ".nfsvol/trash", ".nfsvol/archive"
NESTED_OBJECT = '{"a":' * 50_000 + "1" + "}" * 50_000
DUPLICATE_NAME = '{"name": "dup", "share": "scratch", "created_at": "t", "name": "../dup"}'
DUPLICATE_HOST = (
    '{"host": "ghost", "since": "t", "renewed": "t", "ttl": 30, "token": "x", "ttl": 1e400}'
)

# (id, plant, names the plant invites calls on). Ids start with their category.
# fmt: off
TABLE: list[tuple[str, Plant, tuple[str, ...]]] = [
    # Records: bytes that are not a record, fields of the wrong type, links.
    ("record-not-utf8", at(f"{V}/bad.json", b'{"name": "bad\xff\xfe", "share": "scratch"}'), ("bad",)),
    ("record-nul-bytes", at(f"{V}/bad.json", b"\x00" * 4096), ("bad",)),
    ("record-escaped-nul-in-name", at(f"{V}/bad.json", record("bad\u0000")), ("bad",)),
    ("record-empty-file", at(f"{V}/bad.json", b""), ("bad",)),
    ("record-over-cap", at(f"{V}/bad.json", record("bad", created_by="x" * 70_000)), ("bad",)),
    ("record-nested-objects", at(f"{V}/bad.json", NESTED_OBJECT), ("bad",)),
    ("record-duplicate-keys", at(f"{V}/dup.json", DUPLICATE_NAME), ("dup",)),
    ("record-name-number", at(f"{V}/bad.json", record(7)), ("bad",)),
    ("record-share-list", at(f"{V}/bad.json", record("bad", ["scratch"])), ("bad",)),
    ("record-created-at-object", at(f"{V}/bad.json", record("bad", created_at={})), ("bad",)),
    ("record-option-list", at(f"{V}/bad.json", record("bad", options={"uid": ["0"]})), ("bad",)),
    ("record-null", at(f"{V}/bad.json", "null"), ("bad",)),
    ("record-name-newline", at(f"{V}/bad\n.json", record("bad\n")), ("bad\n",)),
    ("record-name-dotdot-file", at(f"{V}/..json", record("..")), ("..",)),
    ("record-stealing-vic", at(f"{V}/vic.json", record("vic", "../../canary")), ("vic",)),
    ("record-link-into-canary", link(f"{V}/{LURE}.json", lambda s: s.canary / f"{LURE}.json"), (LURE,)),
    ("record-link-to-canary-dir", link(f"{V}/bad.json", lambda s: s.canary), ("bad",)),
    ("record-link-to-root", link(f"{V}/bad.json", "/"), ("bad",)),
    ("record-link-loop", link(f"{V}/bad.json", "bad.json"), ("bad",)),
    ("record-link-dangling", link(f"{V}/bad.json", "/nonexistent/x.json"), ("bad",)),
    ("record-hardlink-into-canary", hardlink(f"{V}/hl.json", "a.txt"), ("hl",)),
    ("record-dir-with-links", links_into_canary(f"{V}/bad.json"), ("bad",)),
    # Leases: the same garbage where a host's or an owner's lease belongs.
    ("lease-not-utf8", at(f"{L}/vic/ghost.json", b'{"host": "\xff"}'), ()),
    ("lease-nul-bytes", at(f"{L}/vic/ghost.json", b"\x00" * 4096), ()),
    ("lease-over-cap", at(f"{L}/vic/ghost.json", lease(token="x" * 70_000)), ()),
    ("lease-nested-objects", at(f"{L}/vic/ghost.json", NESTED_OBJECT), ()),
    ("lease-duplicate-keys", at(f"{L}/vic/ghost.json", DUPLICATE_HOST), ()),
    ("lease-directory", folder(f"{L}/vic/ghost.json"), ()),
    ("lease-link-into-canary", link(f"{L}/vic/ghost.json", lambda s: s.canary / "lease.json"), ()),
    ("lease-owner-link-into-canary", link(f"{L}/solo/owner.7.json", lambda s: s.canary / "lease.json"), ()),
    ("lease-owner-hardlink-into-canary", hardlink(f"{L}/solo/owner.7.json", "lease.json"), ()),
    ("lease-owner-generation-zero", at(f"{L}/solo/owner.0.json", lease()), ()),
    ("lease-owner-generation-negative", at(f"{L}/solo/owner.-3.json", lease()), ()),
    ("lease-owner-generation-leading-zero", at(f"{L}/solo/owner.007.json", lease()), ()),
    ("lease-owner-generation-240-digits", at(f"{L}/solo/owner.{'9' * 240}.json", lease()), ()),
    ("lease-owner-fifo", fifo(f"{L}/solo/owner.2.json"), ()),
    ("lease-leases-fifo", fifo(L), ()),
    ("lease-leases-file", at(L, lease()), ()),
    ("lease-leases-link-to-root", link(L, "/"), ()),
    ("lease-folder-fifo", fifo(f"{L}/vic"), ()),
    ("lease-folder-file", at(f"{L}/vic", lease()), ()),
    ("lease-folder-link-to-root", link(f"{L}/solo", "/"), ()),
    ("lease-folder-link-to-canary-sub", link(f"{L}/vic", lambda s: s.canary / "sub"), ()),
    # The layout's own folders replaced: metadata is gone until an operator puts it back.
    ("layout-nfsvol-fifo", displaced(".nfsvol", as_fifo), ()),
    ("layout-nfsvol-file", displaced(".nfsvol", as_file), ()),
    ("layout-volumes-fifo", displaced(V, as_fifo), ()),
    ("layout-volumes-file", displaced(V, as_file), ()),
    ("layout-trash-fifo", displaced(T, as_fifo), ()),
    ("layout-trash-file", displaced(T, as_file), ()),
    ("layout-archive-link-to-canary", displaced(A, as_link_to_canary), ()),
    ("layout-archive-fifo", displaced(A, as_fifo), ()),
    ("layout-archive-file", displaced(A, as_file), ()),
    # Volume folders: what a container or host leaves where vic's data belongs.
    ("voldir-link-to-canary", link("vic", lambda s: s.canary), ()),
    ("voldir-link-to-root", link("vic", "/"), ()),
    ("voldir-fifo", fifo("vic"), ()),
    ("voldir-file", at("vic", "data"), ()),
    ("voldir-links-inside", links_into_canary("vic/planted"), ()),
    ("voldir-hardlink-into-canary", hardlink("vic/a.txt", "a.txt"), ()),
    ("voldir-link-at-unrecorded-name", link("lost", lambda s: s.canary), ("lost",)),
    # Trash: entries the janitor deletes without following anything.
    ("trash-link-to-canary", link(f"{T}/x-1", lambda s: s.canary), ()),
    ("trash-link-to-root", link(f"{T}/x-2", "/"), ()),
    ("trash-fifo", fifo(f"{T}/x-3"), ()),
    ("trash-links-inside", links_into_canary(f"{T}/x-4"), ()),
    ("trash-deep-with-links", deep(f"{T}/x-5", 1_500), ()),
    ("trash-hardlink-into-canary", hardlink(f"{T}/x-6", "a.txt"), ()),
    ("trash-name-not-utf8", folder(f"{T}/x-\udcff"), ()),
    ("archive-links-inside", links_into_canary(f"{A}/x-7"), ()),
]
# fmt: on
TABLE_IDS = [case_id for case_id, _, _ in TABLE]
CASES = [pytest.param(plant, names, id=case_id) for case_id, plant, names in TABLE]


def exercise(s: Site, names: tuple[str, ...]) -> None:
    """Every verb on the victim, the single-host volume and the planted names."""
    assert LURE not in s.listed()  # a valid record reached only through a link
    for name in ("good", "vic", "solo", *names):
        s.call("Get", Name=name)
    for name in names:  # a write must replace what is planted, never write through it
        s.call("Create", Name=name)
    for name in ("vic", "solo", *names):
        if s.call("Mount", Name=name, ID="ctr")[0] == 200:
            s.call("Unmount", Name=name, ID="ctr")
    for name in ("vic", *names):
        s.call("Remove", Name=name)


def metadata_in_place(s: Site) -> bool:
    """True unless a plant took .nfsvol or .nfsvol/volumes (and the good record) away."""
    return all(p.is_dir() and not p.is_symlink() for p in (s.meta, s.meta / "volumes"))


def assert_good_volume_mounts(s: Site) -> None:
    """The good volume is listed, found, mounted and unmounted."""
    assert "good" in s.listed()
    status, reply = s.call("Get", Name="good")
    assert status == 200 and reply["Volume"]["Status"]["options"] == {"share": "scratch"}, reply
    status, reply = s.call("Mount", Name="good", ID="ctr2")
    pin = s.plugin.state_dir / "vol" / "scratch" / "good"  # the checked directory, bound
    assert status == 200 and reply["Mountpoint"] == str(pin), reply
    assert (pin / "data").read_text() == "mine"
    assert s.call("Unmount", Name="good", ID="ctr2")[0] == 200


def assert_good_volume_works(s: Site) -> None:
    """The good volume mounts, and a new one is created, mounted and removed."""
    assert_good_volume_mounts(s)
    assert s.call("Create", Name="fresh")[0] == 200
    status, reply = s.call("Mount", Name="fresh", ID="ctr3")
    assert status == 200 and reply["Mountpoint"] == str(
        s.plugin.state_dir / "vol" / "scratch" / "fresh"
    ), reply
    assert s.call("Unmount", Name="fresh", ID="ctr3")[0] == 200
    assert s.call("Remove", Name="fresh")[0] == 200
    assert "fresh" not in s.listed()


def assert_trash_emptied(s: Site) -> None:
    """The janitor deletes what is in the trash, planted or not, without following it."""
    trash = s.meta / "trash"
    deadline = time.monotonic() + TRASH_WAIT
    while os.listdir(trash) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert os.listdir(trash) == []


def check(s: Site, plant: Plant, names: tuple[str, ...]) -> None:
    """Plant, drive every verb, and hold the three invariants."""
    before = snapshot(s.canary)
    undo = plant(s)
    exercise(s, names)
    if metadata_in_place(s):  # while the plant stays: only a Create or Remove may be refused
        assert_good_volume_mounts(s)
    if undo is not None:
        undo()
    assert_good_volume_works(s)
    assert_trash_emptied(s)
    assert snapshot(s.canary) == before


@pytest.mark.parametrize(("plant", "names"), CASES)
def test_a_hostile_share_changes_nothing_outside_it(site, plant, names):
    """The canary is untouched, every answer is timely, the good volume works."""
    check(site, plant, names)


def test_the_catalogue_covers_every_category():
    """At least 60 cases here and in the fresh-plugin table, each kind of hostile file covered."""
    ids = TABLE_IDS + [case.id for case in FRESH_PLUGIN_CASES]
    assert len(ids) == len(set(ids)) >= 60
    categories = {"record", "lease", "layout", "voldir", "trash", "archive"}
    assert {i.split("-", 1)[0] for i in TABLE_IDS} == categories


# The fuzz: random things at random places, the same invariants.

SEEDS = [int(s) for s in os.environ.get("NFSVOL_FUZZ_SEEDS", "").split(",") if s.strip()]
SEEDS = SEEDS or [1, 2, 3, 4, 5]
PLANTS_PER_SEED = 80
FOLDERS = [V, f"{L}", f"{L}/vic", f"{L}/solo", f"{L}/pool1", T, A, "vic", "vic/sub", "pool1"]
NAMES = ["vic", "solo", "pool1", "pool2", "ghost", "owner.1", "owner.2", "owner.99999999999",
         ".tmp-1-2-vic", "x\ny", "..", "-", "a" * 200]  # fmt: skip


def fuzz_name(rng: random.Random) -> str:
    name = rng.choice(NAMES)
    name = rng.choice([name, f"{name}.json", f"{name}-{rng.randrange(1000)}"])
    return f"{name}.x" if name == ".." else name  # ".." is the folder above, not a plant


def fuzz_bytes(rng: random.Random, s: Site) -> bytes:
    """Random bytes, or a record or lease with a field or two made wrong."""
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 2048))
    data: dict[str, Any] = (record if kind == 1 else lease)(rng.choice(NAMES))
    junk = [None, 0, -1, 1e308, True, "", "../..", str(s.canary), [], {}, "\x00", "x" * 5000]
    for _ in range(rng.randrange(3)):
        data[rng.choice([*data, "extra"])] = rng.choice(junk)
    text = json.dumps(data)
    if kind == 3:  # cut short, or nested deep
        text = rng.choice([text[: rng.randrange(len(text))], "[" * 5000 + text])
    return text.encode()


def fuzz_plant(rng: random.Random, s: Site) -> None:
    """One random file, link, FIFO or folder at a random place under the share."""
    # The janitor may be emptying the trash meanwhile: a plant it took away is gone, not an error.
    with contextlib.suppress(FileNotFoundError):
        _fuzz_plant(rng, s)


def _fuzz_plant(rng: random.Random, s: Site) -> None:
    parent = s.root / rng.choice(FOLDERS)
    path = parent / fuzz_name(rng)
    if path.name in ("good.json", "solo.json") or path.is_symlink() or path.exists():
        return  # the good volumes' records are not the fuzz's to break
    if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
        return
    parent.mkdir(parents=True, exist_ok=True)
    kind = rng.randrange(5)
    if kind == 0:
        path.write_bytes(fuzz_bytes(rng, s))
    elif kind == 1:
        targets = [s.canary, s.canary / "a.txt", s.canary / f"{LURE}.json", s.canary / "lease.json",
                   "/", "/dev/zero", "..", "../../..", "/nonexistent", path.name]  # fmt: skip
        path.symlink_to(rng.choice(targets))
    elif kind == 2:
        os.mkfifo(path)
    elif kind == 3:
        path.mkdir()
    else:
        sub = path
        for _ in range(rng.randrange(1, 30)):
            sub = sub / rng.choice(["d", "e"])
        sub.mkdir(parents=True)
        (sub / "in").symlink_to(s.canary)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed-{seed}" for seed in SEEDS])
def test_a_fuzzed_share_changes_nothing_outside_it(site, seed):
    """Random plants, then random verbs on good and planted names: the same three invariants."""
    rng = random.Random(seed)  # noqa: S311  (reproducible plants, not secrets)
    before = snapshot(site.canary)
    site.call("Create", Name="pool1")
    for _ in range(PLANTS_PER_SEED):
        fuzz_plant(rng, site)
    exercise(site, tuple(n for n in rng.sample(NAMES, 6) if n != "solo"))
    for _ in range(30):
        verb = rng.choice(["Get", "Path", "Mount", "Unmount", "Remove", "Create"])
        name = rng.choice([n for n in NAMES if n != "solo"])
        site.call(verb, Name=name, **({"ID": "fz"} if verb in ("Mount", "Unmount") else {}))
    for name in NAMES:  # nothing of this seed stays mounted for the next case
        site.call("Unmount", Name=name, ID="fz")
    assert_good_volume_works(site)
    assert_trash_emptied(site)
    assert snapshot(site.canary) == before
