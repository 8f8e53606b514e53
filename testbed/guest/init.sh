#!/bin/busybox sh
# Stage 1, PID 1 in the initramfs: load modules, build the root from the host's
# read-only 9p share plus tmpfs/overlay layers, then switch_root to busybox init.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

TB_HOSTNAME=guest; TB_PYTHON=python3; TB_STATE=0; TB_MSIZE=512000; TB_CACHE=loose; TB_REPO=; TB_LOGS=0; TB_ENGINE=; TB_DOCKERD=1
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        tb.hostname=*) TB_HOSTNAME="${arg#tb.hostname=}" ;;
        tb.python=*) TB_PYTHON="${arg#tb.python=}" ;;
        tb.state=*) TB_STATE="${arg#tb.state=}" ;;
        tb.cache=*) TB_CACHE="${arg#tb.cache=}" ;;
        tb.repo=*) TB_REPO="${arg#tb.repo=}" ;;
        tb.logs=*) TB_LOGS="${arg#tb.logs=}" ;;
        tb.engine=*) TB_ENGINE="${arg#tb.engine=}" ;;
        tb.dockerd=*) TB_DOCKERD="${arg#tb.dockerd=}" ;;
    esac
done
# The NFS server guest (no dockerd) also needs its disk and knfsd; the modules
# can load only here, since the real root has none for this kernel.
lists=/modules.list; [ "$TB_DOCKERD" = 0 ] && lists="$lists /server-modules.list"
for m in $(cat $lists); do modprobe "$m" || echo "init: modprobe $m failed"; done

R=/newroot
mkdir -p $R
# The host root is cached (fast exec of dockerd, runc, python); the repo is not,
# so edits on the host show up in the guest at once.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=$TB_MSIZE,cache=$TB_CACHE hostroot $R || exec sh
mount -t tmpfs -o mode=755 run $R/run
mount -t tmpfs -o mode=1777 tmp $R/tmp
mount -t tmpfs -o mode=755 mnt $R/mnt
# Writable copies of host dirs: the host's files show through, guest writes stay in RAM.
for d in etc var root; do
    mkdir -p $R/run/.ov/$d/u $R/run/.ov/$d/w
    mount -t overlay -o lowerdir=$R/$d,upperdir=$R/run/.ov/$d/u,workdir=$R/run/.ov/$d/w ov-$d $R/$d
done
# overlay2 cannot stack on overlayfs, so the docker data root is its own tmpfs.
mkdir -p $R/var/lib/docker $R/var/lib/nfsvol
mount -t tmpfs -o mode=711 docker $R/var/lib/docker
if [ "$TB_STATE" = 1 ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=$TB_MSIZE hoststate $R/var/lib/nfsvol
fi
# Last, so a repo under /tmp or /root is not hidden by the layers above.
if [ -n "$TB_REPO" ]; then
    mkdir -p $R$TB_REPO
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=$TB_MSIZE hostrepo $R$TB_REPO
fi

mkdir -p $R/run/testbed
if [ "$TB_LOGS" = 1 ]; then  # the host keeps these across reboots (see stage2.sh)
    mkdir -p $R/run/testbed/keep
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=$TB_MSIZE hostlogs $R/run/testbed/keep
fi
cp /stage2.sh /dockerd.sh /agent.py $R/run/testbed/
cat > $R/run/testbed/env <<ENV
TB_HOSTNAME=$TB_HOSTNAME
TB_PYTHON=$TB_PYTHON
TB_ENGINE=$TB_ENGINE
TB_DOCKERD=$TB_DOCKERD
ENV
printf '::sysinit:/bin/busybox sh /run/testbed/stage2.sh\n::shutdown:/bin/busybox sync\n' > $R/etc/inittab
echo "$TB_HOSTNAME" > $R/etc/hostname
printf '127.0.0.1 localhost %s\n' "$TB_HOSTNAME" > $R/etc/hosts
rm -f $R/etc/mtab; ln -s /proc/self/mounts $R/etc/mtab

mount --move /proc $R/proc
mount --move /sys $R/sys
mount --move /dev $R/dev
exec switch_root $R /bin/busybox init
