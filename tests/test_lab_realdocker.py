"""lab/realdocker.py's clean-up of stale private-daemon bridges, without root: it must never
delete the bridge of a daemon that is starting at the same moment (found by notebook 07, whose
private dockerd failed with "bridge device with non default name ... must be created manually"
while tests started theirs)."""
from __future__ import annotations

import os
import tempfile

from minidocker.lab import realdocker
from minidocker.network import bridge


def test_a_bridge_made_while_the_stale_ones_are_looked_for_is_not_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    starting = tmp_path / "realdocker-starting"   # a daemon being started: no bridge name written yet
    starting.mkdir()
    stale = tmp_path / "realdocker-dead"          # a daemon killed long ago
    stale.mkdir()
    (stale / "bridge").write_text("mdrd-dead00")
    (stale / "dockerd.pid").write_text("999999999")
    os.utime(stale, (0, 0))
    deleted = []

    def links(prefixes):
        # the starting daemon writes its bridge's name, then makes the bridge: from here on the
        # bridge exists (and is listed), so its name is on disk already
        (starting / "bridge").write_text("mdrd-new000")
        return ["mdrd-dead00", "mdrd-new000"]

    monkeypatch.setattr(bridge, "links", links)
    monkeypatch.setattr(bridge, "delete_link", deleted.append)
    realdocker.remove_stale_bridges()
    assert deleted == ["mdrd-dead00"]
