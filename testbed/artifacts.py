"""Build, once, the guest kernel, a small initramfs, a busybox image tarball and the Engine."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testbed._proc import run
from testbed.engines import Engine, chosen

DEFAULT_CACHE = Path("/var/cache/nfsvol-testbed")
BUSYBOX = "/usr/bin/busybox"
GUEST_DIR = Path(__file__).parent / "guest"
IMAGE_TAG = "nfsvol-test/busybox:latest"
# A local stand-in for the public Debian image the plugin's Dockerfile builds FROM.
BOOKWORM_TAG = "nfsvol-test/bookworm:latest"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# What the public debian:bookworm-slim image leaves out, so the stand-in is as small.
SLIM_EXCLUDES = ("usr/share/doc", "usr/share/info", "usr/share/locale", "usr/share/man")
# Load order matters only for readability: modprobe pulls dependencies itself.
MODULES = (
    "virtio_pci",
    "virtio_net",
    "virtio_rng",
    "9pnet_virtio",
    "9p",
    "overlay",
    "sunrpc",
    "grace",
    "lockd",
    "nfs_acl",
    "dns_resolver",
    "fscache",
    "netfs",
    "nfs",
    "nfsv3",
    "nfsv4",
    # In-guest DNAT gives each extra NFS server its own guest-side address.
    # libcrc32c (under nf_nat) needs crc32c only as a softdep, which busybox's
    # modprobe skips; and the guest has no /lib/modules to load the rest on demand.
    "crc32c_generic",
    "ip_tables",
    "iptable_nat",
    "xt_nat",
    "xt_tcpudp",
    # The lease tests cut a host off from the server with a DROP rule.
    "iptable_filter",
    # sock_diag, for the fence's SOCK_DESTROY of the server's connections.
    "inet_diag",
    "tcp_diag",
)
# Loaded only in the NFS server guest (see guest/init.sh): its disk and knfsd.
SERVER_MODULES = ("virtio_blk", "ext4", "nfsd")


@dataclass(frozen=True)
class Artifacts:
    """Paths of everything a guest boots from."""

    kernel: Path
    initramfs: Path
    busybox_tar: Path
    kernel_version: str
    engine: Engine


def prepare(cache_dir: str | Path = DEFAULT_CACHE) -> Artifacts:
    """Return the artifacts, building only what is missing or stale (idempotent)."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    kroot = _kernel_tree(cache)
    kver = _kernel_version(kroot)
    initramfs = _initramfs(cache, kroot, kver)
    return Artifacts(
        kernel=kroot / "boot" / f"vmlinuz-{kver}",
        initramfs=initramfs,
        busybox_tar=_busybox_tar(cache),
        kernel_version=kver,
        engine=chosen(cache, apt_mirror()),
    )


def _kernel_tree(cache: Path) -> Path:
    """Download and unpack Debian's linux-image-amd64 once into cache/kernel."""
    kroot = cache / "kernel"
    if (kroot / ".done").exists():
        return kroot
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        deps = run(["apt-cache", "depends", "linux-image-amd64"], timeout=60).stdout
        # The meta package is empty; the kernel lives in the linux-image-X.Y.Z package.
        pkgs = [
            line.split()[-1]
            for line in deps.splitlines()
            if line.strip().startswith("Depends: linux-image-")
        ]
        if not pkgs:
            raise RuntimeError("apt-cache knows no linux-image-amd64: run apt-get update")
        run(["apt-get", "download", *pkgs], timeout=600, cwd=tmp)
        shutil.rmtree(kroot, ignore_errors=True)
        for deb in Path(tmp).glob("linux-image-*.deb"):
            run(["dpkg-deb", "-x", str(deb), str(kroot)], timeout=300)
    kver = _kernel_version(kroot)
    run(["depmod", "-b", str(kroot), kver], timeout=300)
    (kroot / ".done").write_text(kver)
    return kroot


def _kernel_version(kroot: Path) -> str:
    versions = sorted(p.name for p in (kroot / "lib" / "modules").iterdir())
    if len(versions) != 1:
        raise RuntimeError(f"expected one kernel in {kroot}, found {versions}")
    return versions[0]


def _module_closure(moddir: Path, names: tuple[str, ...]) -> list[str]:
    """Relative paths of the named modules and everything they depend on."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[_module_name(path)] = path
    builtin = {_module_name(line) for line in (moddir / "modules.builtin").read_text().split()}
    unknown = [n for n in names if n not in by_name and n not in builtin]
    if unknown:  # else the guests fail later, at boot, far from the cause
        raise RuntimeError(
            f"kernel {moddir.name} has no module {', '.join(unknown)}, loadable or built in: "
            "a Debian kernel update renamed or merged it; fix MODULES in testbed/artifacts.py"
        )
    todo = [by_name[n] for n in names if n in by_name]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(deps[path])
    return sorted(seen)


def _module_name(path: str) -> str:
    """kernel/fs/nfs/nfs-foo.ko -> nfs_foo, as modprobe spells it."""
    return Path(path).name.removesuffix(".ko").replace("-", "_")


def _inputs_digest(kver: str) -> str:
    """Digest of everything the initramfs is built from, to detect staleness."""
    h = hashlib.sha256(json.dumps([kver, MODULES, SERVER_MODULES]).encode())
    for name in ("init.sh", "stage2.sh", "dockerd.sh", "agent.py"):
        h.update((GUEST_DIR / name).read_bytes())
    h.update(Path(BUSYBOX).read_bytes())
    return h.hexdigest()[:16]


def _initramfs(cache: Path, kroot: Path, kver: str) -> Path:
    """Build cache/initramfs-DIGEST.gz with busybox, the scripts and the needed modules."""
    out = cache / f"initramfs-{_inputs_digest(kver)}.gz"
    if out.exists():
        return out
    for stale in cache.glob("initramfs-*.gz"):
        stale.unlink()
    moddir = kroot / "lib" / "modules" / kver
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp)
        for d in ("bin", "proc", "sys", "dev", "newroot", f"lib/modules/{kver}"):
            (root / d).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        shutil.copy2(GUEST_DIR / "init.sh", root / "init")
        (root / "init").chmod(0o755)
        for name in ("stage2.sh", "dockerd.sh", "agent.py"):
            shutil.copy2(GUEST_DIR / name, root / name)
        (root / "modules.list").write_text("\n".join(MODULES) + "\n")
        (root / "server-modules.list").write_text("\n".join(SERVER_MODULES) + "\n")
        for rel in _module_closure(moddir, MODULES + SERVER_MODULES):
            dest = root / "lib" / "modules" / kver / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(moddir / rel, dest)
        for meta in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
            shutil.copy2(moddir / meta, root / "lib" / "modules" / kver / meta)
        run(["depmod", "-b", str(root), kver], timeout=120)
        _pack_cpio(root, out)
    return out


def _pack_cpio(root: Path, out: Path) -> None:
    """Pack root as a gzip newc cpio archive, atomically."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    proc = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        cwd=root,
        input="\n".join(names).encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(proc.stdout)
    tmp.rename(out)


def _busybox_tar(cache: Path) -> Path:
    """A rootfs tarball for `docker import`: static busybox plus one symlink per applet."""
    out = cache / "busybox-rootfs.tar"
    if out.exists():
        return out
    applets = run([BUSYBOX, "--list"], timeout=30).stdout.split()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "data"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755, 0
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                info = tarfile.TarInfo(f"bin/{applet}")
                info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 0
                tar.addfile(info)
        passwd = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size, info.mode, info.mtime = len(passwd), 0o644, 0
        tar.addfile(info, io.BytesIO(passwd))
    tmp.rename(out)
    return out


def apt_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line format)."""
    for path in sources:
        text = path.read_text() if path.exists() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and not words[1].rstrip("/").endswith("-security"):
                return words[1]
            if words[:1] == ["deb"] and "bookworm" in words:
                return next(w for w in words[1:] if "://" in w)
    raise RuntimeError(f"no Debian mirror found in {', '.join(map(str, sources))}")


def bookworm_tar(cache_dir: str | Path = DEFAULT_CACHE) -> Path:
    """A minimal Debian bookworm rootfs tarball for `docker import` (debootstrap, once)."""
    cache = Path(cache_dir)
    out = cache / "bookworm-minbase.tar"
    if out.exists():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        root = Path(tmp) / "root"
        argv = ["debootstrap", "--variant=minbase", "bookworm", str(root), apt_mirror()]
        run(argv, timeout=1800)
        _slim(root)
        tar = Path(tmp) / "rootfs.tar"
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(tar), "."], timeout=600)
        tar.rename(out)
    return out


def _slim(root: Path) -> None:
    """Drop downloaded packages and docs, and keep later installs from adding docs."""
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists", *SLIM_EXCLUDES):
        for path in (root / sub).glob("*"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.name != "lock":
                path.unlink()
    rules = "".join(f"path-exclude /{sub}/*\n" for sub in SLIM_EXCLUDES)
    (root / "etc/dpkg/dpkg.cfg.d/slim").write_text(rules)


def main(cache_dir: str | Path = DEFAULT_CACHE) -> None:
    """Prepare and print the artifacts with the time taken."""
    start = time.monotonic()
    art = prepare(cache_dir)
    print(f"artifacts ready in {time.monotonic() - start:.1f}s: {art}")
