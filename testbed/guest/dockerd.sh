# Start dockerd in the background with the bed's flags; stage2 runs it at boot,
# and DockerHost.restart_dockerd runs it again (daemon.json may change between).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin
# The Engine's folder (testbed/engines.py) comes first: dockerd, containerd and
# the shims from it; runc is this machine's.
. /run/testbed/env
if [ -n "$TB_ENGINE" ]; then PATH=$TB_ENGINE/usr/sbin:$TB_ENGINE/usr/bin:$PATH; fi
# The host's loopback registry (testbed/registry.py) speaks plain HTTP.
setsid dockerd --config-file /run/testbed/daemon.json \
    --tls=false -H tcp://0.0.0.0:2375 -H unix:///var/run/docker.sock \
    --data-root /var/lib/docker --storage-driver overlay2 \
    --bridge=none --iptables=false --ip-masq=false --userland-proxy=false \
    --insecure-registry 10.0.2.2/32 \
    </dev/null >>/run/testbed/dockerd.log 2>&1 &
