# Stage 2, run by busybox init in the real root: network, cgroups, dockerd, exec agent.
. /run/testbed/env
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin
export HOME=/root
hostname "$TB_HOSTNAME"
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t mqueue mqueue /dev/mqueue
# Static QEMU user-net addressing: no DHCP client needed.
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
# cgroup v1, as measured with dockerd 20.10 here.
mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup
for c in $(awk '!/^#/ && $4 == 1 {print $1}' /proc/cgroups); do
    mkdir -p /sys/fs/cgroup/$c
    mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
done
mount --make-rshared /
# nfsvol's and dockerd's logs go to a folder of this boot's on the host, so a
# power-off or a host's own reboot loses none of them.
if grep -q " /run/testbed/keep 9p " /proc/mounts; then
    n=$(($(ls -d /run/testbed/keep/boot-* 2>/dev/null | wc -l) + 1))
    mkdir -p /run/testbed/keep/boot-$n
    for f in nfsvol.log dockerd.log; do ln -sf keep/boot-$n/$f /run/testbed/$f; done
fi
echo "stage2 done at $(cut -d" " -f1 /proc/uptime)s uptime" > /run/testbed/boot.log
# Time for emulated containers to stop and their volumes to be unmounted:
# the default 15 s lets a slow guest force-exit before sending Unmount.
echo '{"shutdown-timeout": 60}' > /run/testbed/daemon.json
# The NFS server guest runs no dockerd (tb.dockerd=0).
if [ "$TB_DOCKERD" = 1 ]; then /bin/busybox sh /run/testbed/dockerd.sh; fi
# -S: the agent needs only the stdlib, and site imports cost seconds under TCG.
setsid "$TB_PYTHON" -I -S /run/testbed/agent.py 7000 </dev/null >/run/testbed/agent.log 2>&1 &
