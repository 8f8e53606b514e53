"""This host: its kernel (mounts, /proc, netlink), its processes, and crash-safe files.

Every call that can block on a dead server runs under a deadline
(nfsvol.host.deadline) or as a child killed at its timeout (nfsvol.host.mounter).
"""
