"""nfsvol: a Docker volume plugin that keeps volumes on NFS shares."""

__version__ = "0.1.0"
