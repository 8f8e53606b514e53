"""Real-NFS test bed for nfsvol: ganesha servers on loopback and QEMU Docker hosts."""

from testbed.artifacts import IMAGE_TAG, Artifacts, prepare
from testbed.dockerhost import DockerHost, Forward, GuestResult, boot_all
from testbed.nfs import NfsServer, ensure_rpcbind

__all__ = [
    "IMAGE_TAG",
    "Artifacts",
    "DockerHost",
    "Forward",
    "GuestResult",
    "NfsServer",
    "boot_all",
    "ensure_rpcbind",
    "prepare",
]
