"""The values nfsvol falls back to when the operator leaves a setting out, defined once.

The config's frozen objects, its parser, the mount helpers' runner and
the command line import them from here, so that no two of them can drift
apart. What each setting means is in docs/operators.md.
"""

CONFIG_FILE = "/etc/nfsvol/config.yaml"
STATE_DIR = "/var/lib/nfsvol"
MOUNT_HELPER = "/sbin/mount.nfs"
UMOUNT_HELPER = "/bin/umount"
MOUNTINFO = "/proc/self/mountinfo"

# Seconds.
MOUNT_TIMEOUT = 10.0  # per run of the mount or umount helper
CATALOG_TTL = 5.0
IDLE_UNMOUNT = 30.0
LEASE_TTL = 30.0  # a dead host's single-host volume is free this long after
HEALTH_INTERVAL = 15.0  # between probes of each mounted share
PROBE_TIMEOUT = 10.0  # per probe of the operator commands (check, ls, doctor)

NFS_VERSION = "4.1"
ON_REMOVE = "delete"
LOG_LEVEL = "info"
LOG_FORMAT = "json"
ON_FENCE_FAILURE = "reboot"
