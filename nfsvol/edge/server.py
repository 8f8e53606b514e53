"""Real defaults, built in one place, and gunicorn serving them on a socket."""

import atexit
import contextlib
import ctypes
import gc
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from nfsvol.clock import utc_now
from nfsvol.config import Config, ShareType
from nfsvol.driver import Driver, Host
from nfsvol.edge import logs, metrics
from nfsvol.edge.api import create_app
from nfsvol.host.mounter import SubprocessMounter
from nfsvol.roles.build import build_roles
from nfsvol.share import sharefs
from nfsvol.share.pathshare import unprotected
from nfsvol.state import HostState

log = logging.getLogger("nfsvol.edge.server")
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter, from malloc.h
LARGE_BLOCK = 128 * 1024  # glibc's default threshold, kept fixed


def this_host() -> Host:
    """This machine's name and current boot."""
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return Host(name=socket.gethostname(), boot_id=boot_id)


def build_driver(
    config: Config,
    helpers: SubprocessMounter,
    recorder: metrics.Recorder | None = None,
    share_slots: int = 64,
) -> Driver:
    """A driver wired to `helpers`, the real state directory and clock."""
    mounter = metrics.CountingMounter(helpers, recorder or metrics.NoMetrics())
    state = HostState(config.state_dir, config.share_names, config.lock_timeout)
    host, clock = this_host(), utc_now
    roles = build_roles(config, mounter, state, host.name, clock, share_slots=share_slots)
    return Driver(config, mounter, state, host, roles, clock)


def warn_unprotected(config: Config) -> None:
    """Log an error for each path share whose mount allows setuid binaries or devices.

    Serving goes on: refusing would take every volume of a working host away
    at a restart, for a hazard the operator fixes with one remount.
    """
    for share in config.shares.values():
        hazard = unprotected(share) if share.type == ShareType.PATH else None
        if hazard:
            log.error("%s", hazard)


class PluginServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn running one preloaded Flask app on a unix socket."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self._app = app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        """Hand our options to gunicorn instead of its command line."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """The app every worker serves."""
        return self._app


def enable_metrics(config: Config) -> metrics.Recorder:
    """Metrics shared by every worker, served from this (the master) process; or none.

    Must run before the app is built and workers fork: prometheus_client picks
    its multiprocess mode from PROMETHEUS_MULTIPROC_DIR when first imported.
    """
    if config.metrics is None:
        return metrics.NoMetrics()
    # Not under state_dir: the values are mmapped, which some filesystems
    # (9p, some NFS) refuse, and they are worth nothing after a restart.
    directory = Path(tempfile.mkdtemp(prefix="nfsvol-metrics-"))
    atexit.register(_remove_in, os.getpid(), directory)
    metrics.prepare_dir(directory)
    recorder = metrics.PrometheusMetrics()
    sharefs.on_skip(lambda share, path, why: recorder.share_file_skipped(share))
    state = HostState(config.state_dir, config.share_names, config.mount_timeout)
    metrics.start_exporter(config.metrics, metrics.registry(state, config.share_names))
    return recorder


def _remove_in(pid: int, directory: Path) -> None:
    # Workers inherit atexit handlers and exit on their own: only the master cleans up.
    if os.getpid() == pid:
        shutil.rmtree(directory, ignore_errors=True)


def _worker_exited(server: object, worker: Any) -> None:
    metrics.worker_exited(worker.pid)


def _ending_helpers(helpers: SubprocessMounter) -> Callable[[object, Any], None]:
    """gunicorn's worker_exit hook: a worker that exits kills its mount helpers.

    Stopped, restarted or timed out, it would otherwise leave them running
    in their own sessions, mounting after nobody waits (SIGKILL skips this;
    a service manager's cgroup or the managed plugin's container ends them).
    gunicorn also calls the hook in the master for a worker already gone.
    """

    def hook(_server: object, worker: Any) -> None:
        if worker.pid == os.getpid():
            helpers.stop()

    return hook


# Threads per worker that never wait on a share: Get, List and Path always
# find one, however many Mounts a dead server holds up.
FREE_THREADS = 4
WARM_WAIT = 10.0  # seconds; dockerd gives a managed plugin's Activate 30 s


def return_large_blocks() -> None:
    """Have glibc map each large block on its own and unmap it when freed.

    By default glibc raises its mmap threshold whenever such a block is
    freed; after that, the buffers a List of 10,000 volumes builds stay
    resident in the arena of each request thread that built one. Measured:
    eight clients listing at once left the plugin 37 MB larger, and 15 MB
    with this. A no-op where malloc is not glibc's.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK)


def serve(config: Config, socket_path: str, workers: int = 2, threads: int = 32) -> None:
    """Reconcile this host's mounts, then serve the plugin until stopped."""
    logs.configure(config.log_level)
    warn_unprotected(config)
    recorder = enable_metrics(config)
    helpers = SubprocessMounter(config.mount_helper, config.umount_helper, config.mount_timeout)
    driver = build_driver(config, helpers, recorder, share_slots=max(1, threads - FREE_THREADS))
    driver.reconcile()
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    options = {
        "bind": f"unix:{socket_path}",
        "umask": 0o077,  # socket and state files: root only
        "workers": workers,
        "threads": threads,
        "worker_class": "nfsvol.edge.worker.HeaderDeadlineWorker",  # gthread, headers bounded
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": None,
        "loglevel": config.log_level,
        "worker_exit": _ending_helpers(helpers),
    }
    if config.metrics is not None:
        options["child_exit"] = _worker_exited
    # Docker's first Get after a reboot or reinstall must not answer from an
    # empty cache; capped so a dead server delays serving, never blocks it.
    # In each worker, not the master: a sync still stuck at the fork would
    # leave its share's flock held by an fd every worker inherits.
    options["post_worker_init"] = lambda _worker: driver.warm_cache(
        wait=min(config.mount_timeout, WARM_WAIT)
    )
    app = create_app(driver, config.log_format, recorder)
    return_large_blocks()  # before the workers fork: they inherit the setting
    # What exists now lives as long as the process. Frozen, the collector in
    # each worker never writes to it, so its pages stay shared with the
    # master instead of being copied into every worker.
    gc.freeze()
    PluginServer(app, options).run()
