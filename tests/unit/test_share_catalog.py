"""A share's catalog and trash on a real temporary directory (issue 21)."""

import json
import logging

from nfsvol.catalog import ShareCatalog


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
    with caplog.at_level(logging.WARNING, logger="nfsvol.sharefs"):
        assert catalog.names() == [long_name]
        assert catalog.read(long_name) is None
    lines = [r.getMessage() for r in caplog.records]
    assert f"share {share}: ignoring .nfsvol/volumes/{long_name}.json: share " in lines[-1], lines
    forged = [line for line in lines if "evil" in line]
    assert forged == [
        f"share {share}: ignoring .nfsvol/volumes/evil\\nforged\\x1b[2J.json: not a volume name"
    ]
    assert not any(str(tmp_path) in line for line in lines), lines
