"""The fencer on real mount namespaces: it finds and kills exactly a volume's users."""

from nfsvol.fence import Fencer
from tests.support.namespaces import user_of


def test_finds_and_kills_only_the_processes_with_the_volume_mounted(tmp_path):
    """Like a container: its own mount namespace with the volume bind-mounted."""
    share = tmp_path / "share"
    (share / "db").mkdir(parents=True)
    (share / "other").mkdir()
    with (
        user_of(share / "db", tmp_path / "c1") as user,
        user_of(share / "other", tmp_path / "c2") as bystander,
    ):
        fencer = Fencer()
        assert fencer.users(str(share / "db")) == [user.pid]
        assert fencer.stop(str(share / "db")) == [user.pid]
        assert user.wait(timeout=10) == -9
        assert bystander.poll() is None
        assert fencer.users(str(share / "db")) == []


def test_a_volume_nobody_mounted_has_no_users(tmp_path):
    """The plugin's own namespace (where the share is mounted) is never a user."""
    (tmp_path / "db").mkdir()
    assert Fencer().users(str(tmp_path / "db")) == []
