# The managed plugin's root filesystem: Python, nfsvol with its dependencies,
# and mount.nfs. plugin/build turns it into plugin/rootfs.
#
# BASE is the public image users build from; the tests pass a local debootstrap
# of the same Debian release, since their machine reaches no image registry.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS build
# Unset unless given: pip then uses PyPI. The tests point it at a loopback index.
ARG PIP_INDEX_URL
ARG PIP_TRUSTED_HOST
# nfs-common for mount.nfs; netbase for /etc/protocols, where mount.nfs
# looks up proto=tcp (the slim base has none).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv nfs-common netbase \
 && rm -rf /var/lib/apt/lists/*
COPY setup.cfg pyproject.toml README.md /src/
COPY nfsvol /src/nfsvol
# setup.cfg's install_requires is the one list of dependencies; pip itself
# is not needed at run time.
RUN python3 -m venv /opt/nfsvol \
 && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/nfsvol/bin/pip install --no-cache-dir /src \
 && /opt/nfsvol/bin/pip uninstall -y -q pip setuptools
# Every node pulls the plugin: copy out only what it runs (see plugin/slim),
# rather than ship the whole base with apt, perl and coreutils (141 MB).
COPY plugin/slim /src/
RUN /src/slim /rootfs

FROM scratch
COPY --from=build /rootfs /
