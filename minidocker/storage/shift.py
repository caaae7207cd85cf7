"""Files shifted on disk, for a state root made by `--userns-remap` (engine/remap.py).

In such a root every file belongs to the mapped ids: a layer's file owned by 0 in the image
is owned by 100000 in overlay2/<id>/diff, a new volume by 100000 too, so that root in the
container (100000 on the host) owns them. What leaves the root (export, commit, cp) is
shifted back (storage/archive.py's export_dir(idmaps=...)).
"""
from __future__ import annotations

import json
import os
import stat

from .. import fsutil
from ..core import userns

RECORD = "userns.json"  # in the remapped state root: its maps, for every process that opens it


def idmaps(root: str) -> tuple[userns.IdMap, userns.IdMap] | None:
    """The maps of state root `root` (None: not a remapped one)."""
    text = fsutil.read_text(os.path.join(root, RECORD), "")
    if not text:
        return None
    record = json.loads(text)
    return userns.IdMap.from_oci(record["uidMappings"]), userns.IdMap.from_oci(record["gidMappings"])


def shift_tree(path: str, uids: userns.IdMap, gids: userns.IdMap) -> None:
    """chown every entry under `path` (and `path`) from container ids to host ids. chown(2)
    clears set-user-ID bits: each mode is put back after. (Hard links share one inode: once.)"""
    done: set[tuple[int, int]] = set()

    def shift(p: str, st: os.stat_result) -> None:
        if (st.st_dev, st.st_ino) in done:
            return
        done.add((st.st_dev, st.st_ino))
        os.lchown(p, uids.to_host(st.st_uid), gids.to_host(st.st_gid))
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & 0o6000:
            os.chmod(p, stat.S_IMODE(st.st_mode))

    shift(path, os.lstat(path))
    for top, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(top, name)
            shift(p, os.lstat(p))
