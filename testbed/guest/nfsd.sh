# Start Linux's NFS server (knfsd) in the server guest, as Debian's
# nfs-server.service does, on the ext4 disk /dev/vda. Idempotent: it starts
# only what is not running, so it serves both a boot and a restart of nfsd.
# $1: the NFSv4 grace period in seconds ("" keeps the kernel's, 90);
#     it and lockd's take effect only while nfsd is stopped (EBUSY otherwise).
set -e
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
GRACE=$1
mkdir -p /srv /run/rpc_pipefs
# The disk holds the exports and the server's own state (/var/lib/nfs: the
# clients nfsdcld knows, statd's monitor list), so a reboot keeps both.
mountpoint -q /srv || mount -t ext4 -o data=ordered /dev/vda /srv
mountpoint -q /var/lib/nfs || mount --bind /srv/state /var/lib/nfs
mountpoint -q /proc/fs/nfsd || mount -t nfsd nfsd /proc/fs/nfsd
mountpoint -q /run/rpc_pipefs || mount -t rpc_pipefs sunrpc /run/rpc_pipefs
if [ "$(cat /proc/fs/nfsd/threads)" = 0 ] && [ -n "$GRACE" ]; then
    echo "$GRACE" > /proc/fs/nfsd/nfsv4gracetime
    echo "$GRACE" > /proc/sys/fs/nfs/nlm_grace_period
fi
# Export paths are relative to /srv (nfs.conf's [exports] rootdir), so NFSv3
# and NFSv4 clients mount the same path, as on a server whose root is exportable.
printf '[general]\npipefs-directory=/run/rpc_pipefs\n[exports]\nrootdir=/srv\n' > /etc/nfs.conf
pidof rpcbind >/dev/null || rpcbind
pidof rpc.statd >/dev/null || rpc.statd
pidof nfsdcld >/dev/null || nfsdcld
exportfs -ra
pidof rpc.mountd >/dev/null || rpc.mountd --manage-gids
rpc.nfsd 8
