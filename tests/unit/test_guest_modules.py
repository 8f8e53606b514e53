"""The test bed's initramfs: which kernel modules it packs for the guests."""

import pytest

from testbed.artifacts import _module_closure


@pytest.fixture
def moddir(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/nfs/nfsv4.ko: kernel/fs/nfs/nfs.ko kernel/net/sunrpc/sunrpc.ko\n"
        "kernel/fs/nfs/nfs.ko: kernel/net/sunrpc/sunrpc.ko\n"
        "kernel/net/sunrpc/sunrpc.ko:\n"
        "kernel/net/netfilter/xt_tcpudp.ko:\n"
        "kernel/crypto/crc32c-generic.ko:\n"
    )
    (tmp_path / "modules.builtin").write_text("kernel/fs/overlayfs/overlay.ko\n")
    return tmp_path


@pytest.mark.parametrize(
    ("names", "packed"),
    [
        (("nfsv4",), ["kernel/fs/nfs/nfs.ko", "kernel/fs/nfs/nfsv4.ko", "kernel/net/sunrpc/sunrpc.ko"]),
        (("crc32c_generic",), ["kernel/crypto/crc32c-generic.ko"]),  # modprobe's spelling
        (("overlay", "xt_tcpudp"), ["kernel/net/netfilter/xt_tcpudp.ko"]),  # built in: nothing to pack
    ],
)  # fmt: skip
def test_packs_each_module_with_its_dependencies(moddir, names, packed):
    assert _module_closure(moddir, names) == packed


def test_a_module_the_kernel_lacks_is_named_at_build_time(moddir):
    """Not at the guests' boot, where only a failed iptables or mount shows it."""
    with pytest.raises(RuntimeError, match="has no module iptable_gone, loadable or built in"):
        _module_closure(moddir, ("nfsv4", "iptable_gone"))
