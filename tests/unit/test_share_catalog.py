"""A share's catalog and trash on a real temporary directory (issue 21)."""

import json
import logging
import os

from nfsvol.share.catalog import ShareCatalog, TrashKeeper


def record(name: str, share: str) -> dict[str, object]:
    return {"name": name, "share": share, "created_at": "t", "created_by": "h", "options": {}}


def test_a_skipped_record_is_logged_whole_relative_to_its_share(tmp_path, caplog):
    """The log line names the share and the file's whole path under the root, on one line."""
    share = f"s-{tmp_path.name}"  # lines are rate-limited per share and path, across tests
    catalog = ShareCatalog(tmp_path, share)
    catalog.ensure_layout()
    volumes = tmp_path / ".nfsvol" / "volumes"
    long_name = "v" * 150 + "-tail"
    (volumes / f"{long_name}.json").write_text(json.dumps(record(long_name, "elsewhere")))
    (volumes / "evil\nforged\x1b[2J.json").write_text("{}")
    with caplog.at_level(logging.WARNING, logger="nfsvol.share.sharefs"):
        assert catalog.names() == [long_name]
        assert catalog.read(long_name) is None
    lines = [r.getMessage() for r in caplog.records]
    assert f"share {share}: ignoring .nfsvol/volumes/{long_name}.json: share " in lines[-1], lines
    forged = [line for line in lines if "evil" in line]
    assert forged == [
        f"share {share}: ignoring .nfsvol/volumes/evil\\nforged\\x1b[2J.json: not a volume name"
    ]
    assert not any(str(tmp_path) in line for line in lines), lines


def test_a_large_trash_is_emptied_a_bounded_pass_at_a_time(tmp_path):
    """20,000 files: a pass with a tiny budget returns with work left; more passes finish it."""
    catalog, keeper = ShareCatalog(tmp_path, "t"), TrashKeeper()
    catalog.ensure_layout()
    tree = tmp_path / ".nfsvol" / "trash" / "vol-1"
    (tree / "sub").mkdir(parents=True)
    for i in range(20_000):
        folder = tree if i % 2 else tree / "sub"
        os.close(os.open(folder / f"f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
    keeper.mark("t")
    keeper.empty(catalog, 0.001)
    assert keeper.pending() == ["t"]  # returned with work left
    assert catalog.trash_entries() == ["vol-1"]
    passes = 1
    while keeper.pending() and passes < 1_000:
        keeper.empty(catalog, 0.001)
        passes += 1
    assert keeper.pending() == [] and catalog.trash_entries() == [], passes
    assert catalog.purge_trash(0.001) is True  # an empty trash is done at once
