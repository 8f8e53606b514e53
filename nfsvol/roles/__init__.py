"""The driver's roles, one job each, built in one place (nfsvol.roles.build) and handed to it.

From the bottom up:

    shares.py    reaching a share: mount, park, release, slots, ESTALE
    cache.py     this host's mirror of the shares' records
    holds.py     leases and Remove markers across hosts, and fencing
    leaked.py    which Mounts a dead dockerd left behind
    mountids.py  who holds each volume here; letting go after the last
    removal.py   the on_remove policy, and emptying the trash
    monitor.py   probing mounted shares
    status.py    what `docker volume inspect` shows under Status
    periodic.py  the two background threads that run them
"""
