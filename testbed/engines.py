"""The Docker Engines the beds run: 26.1 from Debian 13 (the default) and 20.10 from Debian 12.

Engine 20.10 is this machine's own `docker.io` (scripts/setup installs it).
Engine 26.1 is Debian 13 (trixie)'s `docker.io`, `containerd`, `docker-cli` and
`docker-compose`, fetched once with an apt configuration of its own (so this
machine's bookworm sources stay untouched) and unpacked into the bed's cache.
apt checks each package against the suite's signed index. Trixie's runc needs
a newer glibc, so the machine's runc 1.1.5 (bookworm) runs the containers.

The guests see this machine's root read-only, so an engine is a folder put
first on dockerd's PATH there as here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from testbed._proc import run

ENV_ENGINE = "NFSVOL_BED_ENGINE"  # "26.1" (default) or "20.10"
ENGINES = ("26.1", "20.10")
TRIXIE_PACKAGES = ("docker.io", "containerd", "docker-cli", "docker-compose")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class Engine:
    """One Docker Engine: dockerd, its containerd, and the CLI and Compose that match it."""

    version: str  # "26.1" or "20.10"
    root: Path | None  # the unpacked packages, or None for the machine's own engine

    @property
    def bin_path(self) -> str:
        """Folders that go first on dockerd's PATH (dockerd finds containerd and shims there)."""
        if self.root is None:
            return ""
        return f"{self.root}/usr/sbin:{self.root}/usr/bin"

    @property
    def dockerd(self) -> str:
        return f"{self.root}/usr/sbin/dockerd" if self.root else "/usr/sbin/dockerd"

    @property
    def docker(self) -> str:
        """The CLI of the same release (the machine's /usr/local/bin/docker may be another)."""
        return f"{self.root}/usr/bin/docker" if self.root else "/usr/bin/docker"

    @property
    def compose(self) -> list[str]:
        """argv of Compose: v2 (a CLI plugin, run directly) for 26.1, v1 for 20.10.

        Run directly, the plugin takes `docker-compose up`; `compose` after it
        would be read as `docker compose compose` and refused.
        """
        if self.root:
            return [f"{self.root}/usr/libexec/docker/cli-plugins/docker-compose"]
        return ["/usr/bin/docker-compose"]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose PATH finds this engine's binaries first."""
        env = dict(os.environ if base is None else base)
        if self.bin_path:
            env["PATH"] = f"{self.bin_path}:{env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        return env


def chosen(cache: Path, mirror: str) -> Engine:
    """The engine NFSVOL_BED_ENGINE names (26.1 unless set), fetched if missing."""
    version = os.environ.get(ENV_ENGINE, ENGINES[0])
    if version not in ENGINES:
        raise RuntimeError(f"{ENV_ENGINE}={version!r}: use one of {', '.join(ENGINES)}")
    return engine(version, cache, mirror)


def engine(version: str, cache: Path, mirror: str) -> Engine:
    """Engine `version`; 26.1 is fetched into cache/engine-trixie once."""
    if version == "20.10":
        return Engine("20.10", None)
    return Engine("26.1", _trixie_tree(cache, mirror))


def _trixie_tree(cache: Path, mirror: str) -> Path:
    root = cache / "engine-trixie"
    if (root / ".done").exists():
        return root
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        debs = _download(Path(tmp), mirror)
        shutil.rmtree(root, ignore_errors=True)
        for deb in debs:
            run(["dpkg-deb", "-x", str(deb), str(root)], timeout=300)
    _check_version(root)
    (root / ".done").write_text("".join(f"{d.name}\n" for d in debs))
    return root


def _download(tmp: Path, mirror: str) -> list[Path]:
    """`apt-get download` of the trixie packages, with a sources list of their own."""
    for sub in ("lists/partial", "cache/archives/partial", "debs"):
        (tmp / sub).mkdir(parents=True)
    sources = tmp / "sources.list"
    sources.write_text(f"deb [signed-by={KEYRING}] {mirror} trixie main\n")
    apt = [
        "apt-get", "-q",
        "-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=/dev/null",
        "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache={tmp / 'cache'}",
        "-o", "Dir::State::status=/dev/null", "-o", "APT::Sandbox::User=root",
    ]  # fmt: skip
    run([*apt, "update"], timeout=600)
    run([*apt, "download", *TRIXIE_PACKAGES], timeout=900, cwd=str(tmp / "debs"))
    debs = sorted((tmp / "debs").glob("*.deb"))
    if len(debs) != len(TRIXIE_PACKAGES):
        raise RuntimeError(f"expected {len(TRIXIE_PACKAGES)} packages, got {debs}")
    return debs


def _check_version(root: Path) -> None:
    out = subprocess.run(
        [f"{root}/usr/sbin/dockerd", "--version"], capture_output=True, text=True, timeout=60
    ).stdout
    if "version 26." not in out:
        raise RuntimeError(f"trixie's dockerd is not Engine 26: {out.strip()!r}")
