"""Docker's volume semantics over real NFS: kernel mounts made by nfsvol in a guest."""

import pytest

from testbed import IMAGE_TAG
from testbed.cluster import SERVER_IP
from tests.hosts.conftest import run, unique, wait_released

pytestmark = pytest.mark.hosts


def test_the_hosts_run_the_chosen_engine_and_its_client(cluster):
    """Every host's dockerd and the client driving it are the bed's Engine (26.1 unless
    NFSVOL_BED_ENGINE says 20.10): every other test here is a claim about that release."""
    for host in cluster.hosts.values():
        engine = host.artifacts.engine
        assert host.engine_version().startswith(f"{engine.version}."), host.name
        client = host.docker("version", "--format", "{{.Client.Version}}").stdout
        assert client.startswith(f"{engine.version}."), host.name


def test_data_lands_on_the_server_and_survives_the_container(cluster):
    """A file written in a container is on ganesha's disk and in the next container."""
    a = cluster.hosts["a"]
    name = unique("named")
    a.docker("volume", "create", "-d", "nfsvol", name)
    run(a, "-v", f"{name}:/data", "echo hello > /data/greeting")
    assert (cluster.export_dir("main") / name / "greeting").read_text() == "hello\n"
    assert run(a, "-v", f"{name}:/data", "cat /data/greeting").stdout == "hello\n"
    wait_released(cluster, "a", "main")  # once the last container left, and idle_unmount


def test_anonymous_volume_and_rm_v(cluster):
    """An anonymous nfsvol volume is made on the server and deleted by docker rm -v."""
    a = cluster.hosts["a"]
    ctr = unique("anon")
    a.docker("run", "--name", ctr, "--network", "none", "--volume-driver", "nfsvol",
             "-v", "/data", IMAGE_TAG, "sh", "-c", "echo x > /data/f")  # fmt: skip
    volume = a.docker("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", ctr).stdout.strip()
    assert (cluster.export_dir("main") / volume / "f").read_text() == "x\n"
    a.docker("rm", "-v", ctr)
    assert not (cluster.export_dir("main") / volume).exists()


def test_read_only_and_volumes_from(cluster):
    """:ro refuses writes over NFS, and --volumes-from reaches the same data."""
    a = cluster.hosts["a"]
    name, writer = unique("rovf"), unique("writer")
    a.docker("run", "--name", writer, "--network", "none", "--volume-driver", "nfsvol",
             "-v", f"{name}:/data", IMAGE_TAG, "sh", "-c", "echo one > /data/f")  # fmt: skip
    assert run(a, "--volumes-from", writer, "cat /data/f").stdout == "one\n"
    denied = run(a, "-v", f"{name}:/data:ro", "echo two > /data/f", check=False)
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr
    assert (cluster.export_dir("main") / name / "f").read_text() == "one\n"
    a.docker("rm", writer)


def test_copy_up_from_the_image(cluster, tmp_path):
    """An image's content at the mount path is copied into a new empty volume."""
    a = cluster.hosts["a"]
    (tmp_path / "seed.txt").write_text("seeded\n")
    (tmp_path / "Dockerfile").write_text(f"FROM {IMAGE_TAG}\nCOPY seed.txt /data/seed.txt\n")
    tag = f"nfsvol-test/seeded:{unique('t')}"
    a.docker("build", "-q", "-t", tag, str(tmp_path), timeout=300)
    name = unique("copyup")
    a.docker("volume", "create", "-d", "nfsvol", name)
    a.docker("run", "--rm", "--network", "none", "-v", f"{name}:/data", tag, "true")
    assert (cluster.export_dir("main") / name / "seed.txt").read_text() == "seeded\n"


def test_containers_share_writes_and_one_mount_serves_many_volumes(cluster):
    """Two volumes used by three containers: one NFS mount; writes seen across containers."""
    a = cluster.hosts["a"]
    shared, other = unique("shared"), unique("other")
    ctrs = [unique("c") for _ in range(3)]
    volumes = [shared, shared, other]
    try:
        for ctr, vol in zip(ctrs, volumes, strict=True):
            a.docker("run", "-d", "--name", ctr, "--network", "none", "--volume-driver", "nfsvol",
                     "-v", f"{vol}:/data", IMAGE_TAG, "sleep", "600")  # fmt: skip
        a.docker("exec", ctrs[0], "sh", "-c", "echo from-0 > /data/zero")
        a.docker("exec", ctrs[2], "sh", "-c", "echo from-2 > /data/two")
        assert a.docker("exec", ctrs[1], "cat", "/data/zero").stdout == "from-0\n"
        assert a.docker("exec", ctrs[1], "ls", "/data").stdout.split() == ["zero"]
        assert a.docker("exec", ctrs[2], "ls", "/data").stdout.split() == ["two"]
        mounts = cluster.nfs_mounts("a", "main")
        assert len(mounts) == 1, mounts
        assert mounts[0].split()[0] == f"{SERVER_IP}:/export/main"
        assert {"nosuid", "nodev", "hard"} <= set(mounts[0].split()[3].split(","))
    finally:
        a.docker("rm", "-f", *ctrs)
    wait_released(cluster, "a", "main")


def test_web_server_serves_pages_from_a_volume(cluster):
    """busybox httpd serves a site whose files live on an nfsvol volume."""
    a = cluster.hosts["a"]
    site, web = unique("site"), unique("web")
    run(
        a,
        "--volume-driver",
        "nfsvol",
        "-v",
        f"{site}:/www",
        "echo '<h1>nfsvol</h1>' > /www/index.html",
    )
    a.docker("run", "-d", "--name", web, "--network", "none", "--volume-driver", "nfsvol",
             "-v", f"{site}:/www:ro", IMAGE_TAG, "httpd", "-f", "-p", "127.0.0.1:80", "-h", "/www")  # fmt: skip
    try:
        page = a.docker("exec", web, "wget", "-qO-", "http://127.0.0.1/index.html").stdout
        assert page == "<h1>nfsvol</h1>\n"
    finally:
        a.docker("rm", "-f", web)


def test_nfs_version_3_share(cluster):
    """A share served over NFSv3 works end to end and is mounted with vers=3."""
    a = cluster.hosts["a"]
    name, ctr = unique("v3"), unique("v3c")
    a.docker("volume", "create", "-d", "nfsvol", "-o", "share=v3", name)
    a.docker("run", "-d", "--name", ctr, "--network", "none", "-v", f"{name}:/data",
             IMAGE_TAG, "sh", "-c", "echo three > /data/f; sleep 600")  # fmt: skip
    try:
        mounts = cluster.nfs_mounts("a", "v3")
        assert len(mounts) == 1 and "vers=3" in mounts[0], mounts
        assert a.docker("exec", ctr, "cat", "/data/f").stdout == "three\n"
    finally:
        a.docker("rm", "-f", ctr)
    assert (cluster.export_dir("v3") / name / "f").read_text() == "three\n"


def test_first_server_down_falls_through_to_the_second(cluster):
    """With the first listed server refusing, the share mounts from the next one."""
    a = cluster.hosts["a"]
    name, ctr = unique("ft"), unique("ftc")
    a.docker("volume", "create", "-d", "nfsvol", "-o", "share=ft", name)
    a.docker("run", "-d", "--name", ctr, "--network", "none", "-v", f"{name}:/data",
             IMAGE_TAG, "sleep", "600")  # fmt: skip
    try:
        status = a.docker("volume", "inspect", "-f", "{{.Status.server}} {{.Status.mounted}}", name)
        assert status.stdout.split() == [SERVER_IP, "true"]
    finally:
        a.docker("rm", "-f", ctr)


def test_a_second_host_sees_and_uses_the_same_volume(cluster):
    """Host b lists a volume made on host a and reads what a wrote."""
    a, b = cluster.hosts["a"], cluster.hosts["b"]
    name = unique("both")
    a.docker("volume", "create", "-d", "nfsvol", name)
    run(a, "-v", f"{name}:/data", "echo from-a > /data/f")
    # No `docker volume ls` on b first: its dockerd asks nfsvol's Get, which
    # looks the name up on the share (issue 22), or it makes a local volume.
    assert run(b, "-v", f"{name}:/data", "cat /data/f").stdout == "from-a\n"
