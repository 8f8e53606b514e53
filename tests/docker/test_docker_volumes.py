"""Docker's volume semantics, driven by a real dockerd through nfsvol."""

import os
import re
import time

import pytest

from tests.docker.conftest import DRIVER, unique

pytestmark = pytest.mark.docker


def test_named_volume_data_survives_container_removal(bed):
    """A file written by one container is there for the next, and on the share."""
    name = unique("named")
    bed.docker("volume", "create", "-d", DRIVER, name)
    bed.run("-v", f"{name}:/data", "echo hello > /data/greeting")
    out = bed.run("-v", f"{name}:/data", "cat /data/greeting").stdout
    assert out == "hello\n"
    assert (bed.share / name / "greeting").read_text() == "hello\n"


def test_one_mount_and_one_unmount_per_container_run(bed):
    """As moby's external-driver tests count: one Mount, one Unmount per run."""
    name = unique("count")
    bed.docker("volume", "create", "-d", DRIVER, name)
    bed.run("-v", f"{name}:/data", "true")
    assert (bed.count(name, "Mount"), bed.count(name, "Unmount")) == (1, 1)
    bed.run("-v", f"{name}:/data", "true")
    assert (bed.count(name, "Mount"), bed.count(name, "Unmount")) == (2, 2)


def test_anonymous_volume_is_created_and_removed_with_the_container(bed):
    """--volume-driver with -v /data makes a volume; docker rm -v deletes it."""
    ctr = unique("anon")
    bed.docker("create", "--name", ctr, "--network", "none", "--volume-driver", DRIVER,
               "-v", "/data", bed.image, "sh", "-c", "echo x > /data/f")  # fmt: skip
    bed.docker("start", "-a", ctr)
    mounts = bed.docker("inspect", "-f", "{{range .Mounts}}{{.Name}} {{.Driver}}{{end}}", ctr)
    volume, driver = mounts.stdout.split()
    assert driver == DRIVER and re.fullmatch(r"[0-9a-f]{64}", volume)
    assert (bed.share / volume / "f").read_text() == "x\n"
    bed.docker("rm", "-v", ctr)
    assert not (bed.share / volume).exists()
    assert volume not in bed.docker("volume", "ls", "-q").stdout


def test_read_only_mount_refuses_writes(bed):
    """:ro makes the volume read-only inside the container."""
    name = unique("ro")
    bed.docker("volume", "create", "-d", DRIVER, name)
    result = bed.run("-v", f"{name}:/data:ro", "echo x > /data/f", check=False)
    assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert not (bed.share / name / "f").exists()
    assert bed.count(name, "Unmount") == bed.count(name, "Mount") == 1


def test_chained_volumes_from(bed):
    """--volumes-from through two hops reaches the same data; each holder mounts."""
    name = unique("chain")
    first, second = unique("c1"), unique("c2")
    bed.docker("create", "--name", first, "--network", "none", "-v", f"{name}:/data",
               "--volume-driver", DRIVER, bed.image, "sh", "-c", "echo one > /data/f")  # fmt: skip
    bed.docker("start", "-a", first)
    bed.docker("create", "--name", second, "--network", "none", "--volumes-from", first,
               bed.image, "true")  # fmt: skip
    out = bed.run("--volumes-from", second, "cat /data/f").stdout
    assert out == "one\n"
    bed.docker("rm", first, second)
    assert (bed.count(name, "Mount"), bed.count(name, "Unmount")) == (2, 2)


def test_two_containers_see_each_others_writes(bed):
    """Two live containers share one volume both ways."""
    name = unique("shared")
    a, b = unique("a"), unique("b")
    for ctr in (a, b):
        bed.docker("run", "-d", "--name", ctr, "--network", "none", "--volume-driver", DRIVER,
                   "-v", f"{name}:/data", bed.image, "sleep", "300")  # fmt: skip
    bed.docker("exec", a, "sh", "-c", "echo from-a > /data/a")
    bed.docker("exec", b, "sh", "-c", "echo from-b > /data/b")
    assert bed.docker("exec", b, "cat", "/data/a").stdout == "from-a\n"
    assert bed.docker("exec", a, "cat", "/data/b").stdout == "from-b\n"
    status = bed.client.ok("Get", Name=name)["Volume"]["Status"]
    assert len(status["users"]) == 2
    bed.docker("rm", "-f", a, b)
    assert bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"] == []


def test_image_content_is_copied_up_into_a_new_volume(bed, tmp_path):
    """An empty volume mounted over image content starts with that content."""
    (tmp_path / "seed.txt").write_text("from the image\n")
    (tmp_path / "Dockerfile").write_text(f"FROM {bed.image}\nCOPY seed.txt /data/seed.txt\n")
    tag = f"nfsvol-test/seeded:{unique('t')}"
    bed.docker("build", "-q", "-t", tag, str(tmp_path), timeout=300)
    name = unique("copyup")
    bed.docker("volume", "create", "-d", DRIVER, name)
    out = bed.docker("run", "--rm", "--network", "none", "-v", f"{name}:/data", tag,
                     "cat", "/data/seed.txt").stdout  # fmt: skip
    assert out == "from the image\n"
    assert (bed.share / name / "seed.txt").read_text() == "from the image\n"
    assert bed.count(name, "Mount") == bed.count(name, "Unmount")


def test_docker_cp_in_and_out(bed, tmp_path):
    """docker cp reaches the volume in running and stopped containers alike."""
    name = unique("cp")
    ctr = unique("cp")
    bed.docker("run", "-d", "--name", ctr, "--network", "none", "--volume-driver", DRIVER,
               "-v", f"{name}:/data", bed.image, "sleep", "300")  # fmt: skip
    src = tmp_path / "in.txt"
    src.write_text("copied in\n")
    bed.docker("cp", str(src), f"{ctr}:/data/in.txt")
    assert bed.docker("exec", ctr, "cat", "/data/in.txt").stdout == "copied in\n"
    bed.docker("stop", "-t", "1", ctr)
    bed.docker("cp", f"{ctr}:/data/in.txt", str(tmp_path / "out.txt"))
    assert (tmp_path / "out.txt").read_text() == "copied in\n"
    bed.docker("rm", ctr)
    assert bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"] == []
    assert bed.count(name, "Mount") == bed.count(name, "Unmount")


def test_inspect_shows_status(bed):
    """docker volume inspect carries the plugin's Status and CreatedAt."""
    name = unique("inspect")
    bed.docker("volume", "create", "-d", DRIVER, "-o", "mode=0750", name)
    fmt = "{{.Driver}} {{.Scope}} {{.Status.share}} {{.Status.type}} {{.Status.mounted}} {{.CreatedAt}}"
    out = bed.docker("volume", "inspect", "-f", fmt, name).stdout.split()
    assert out[:5] == [DRIVER, "global", "main", "path", "false"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out[5])


def test_bad_options_are_refused_through_docker(bed):
    """The plugin's error, with the allowed options, reaches the docker user."""
    result = bed.docker(
        "volume", "create", "-d", DRIVER, "-o", "server=evil", unique("bad"), check=False
    )
    assert result.returncode != 0
    assert "allowed options are: share, uid, gid, mode" in result.stderr


def test_failed_mount_gets_no_unmount(bed):
    """When Mount fails, dockerd sends no Unmount, and nfsvol holds nothing."""
    name = unique("fail")
    bed.docker("volume", "create", "-d", DRIVER, name)
    (bed.share / name).rmdir()
    result = bed.run("-v", f"{name}:/data", "true", check=False)
    assert result.returncode != 0 and "no directory on share" in result.stderr
    assert bed.count(name, "Mount", ok_only=False) == 1
    assert bed.count(name, "Unmount", ok_only=False) == 0
    assert bed.client.ok("Get", Name=name)["Volume"]["Status"]["users"] == []


def test_volume_rm_refused_while_in_use(bed):
    """docker volume rm -f of a volume in use fails and keeps the data."""
    name = unique("inuse")
    ctr = unique("holder")
    bed.docker("run", "-d", "--name", ctr, "--network", "none", "--volume-driver", DRIVER,
               "-v", f"{name}:/data", bed.image, "sh", "-c", "echo x > /data/f; sleep 300")  # fmt: skip
    deadline = time.monotonic() + 10
    while not (bed.share / name / "f").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    result = bed.docker("volume", "rm", name, check=False)
    assert result.returncode != 0 and "in use" in result.stderr
    bed.docker("rm", "-f", ctr)
    bed.docker("volume", "rm", name)
    assert not (bed.share / name).exists()


def test_volumes_are_listed_after_a_dockerd_restart(bed):
    """dockerd forgets nothing: every nfsvol volume is listed after a restart."""
    names = [unique("restart") for _ in range(3)]
    for name in names:
        bed.docker("volume", "create", "-d", DRIVER, name)
    elsewhere = unique("other-host")  # made by another host: only the plugin knows it
    bed.client.ok("Create", Name=elsewhere)
    names.append(elsewhere)
    bed.daemon.restart()
    listed = bed.docker("volume", "ls", "-q", "--filter", f"driver={DRIVER}").stdout.split()
    assert set(names) <= set(listed)
    assert bed.run("-v", f"{names[0]}:/data", "touch /data/ok").returncode == 0


def test_a_volume_swapped_for_a_link_on_the_share_steers_no_container(bed, tmp_path):
    """A share writer replaces a mounted volume's directory with a link to host data:
    the running container keeps the volume, and no container gets the link's target."""
    name = unique("pinned")
    holder = unique("holder")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret").write_text("host data\n")
    bed.docker("run", "-d", "--name", holder, "--network", "none", "--volume-driver", DRIVER,
               "-v", f"{name}:/data", bed.image, "sleep", "300")  # fmt: skip
    bed.docker("exec", holder, "sh", "-c", "echo mine > /data/mine")
    (bed.share / name).rename(bed.share / f"{name}-moved")
    os.symlink(victim, bed.share / name)
    bed.docker("exec", holder, "sh", "-c", "echo later > /data/later")
    assert (bed.share / f"{name}-moved" / "later").read_text() == "later\n"
    # Every Mount checks the share afresh, held or not, and refuses the link.
    for _ in ("held", "after"):
        refused = bed.run("--volume-driver", DRIVER, "-v", f"{name}:/data",
                          "ls /data; echo planted > /data/new", check=False)  # fmt: skip
        assert refused.returncode != 0 and "no directory" in refused.stderr
        assert sorted(os.listdir(victim)) == ["secret"]
        bed.docker("rm", "-f", holder, check=False)
