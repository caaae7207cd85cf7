"""tar-split: giving back a layer's tar byte for byte, without keeping a copy of it.

A layer is named by its DiffID, the sha256 of its *uncompressed tar*. When the layer is
unpacked into overlay2/<id>/diff the tar is gone; yet `docker save` and `docker push`
must produce exactly the same bytes again, or the DiffID would not match. Tar writers
differ (header fields, padding, ordering), so re-creating a tar from the files is not enough.

Docker's answer (vbatts/tar-split, stored as layerdb/sha256/<chain>/tar-split.json.gz):
record every byte of the tar *except the contents of regular files* -- headers, padding,
the end-of-archive blocks -- and, for each file, just its path and size. To rebuild the tar,
replay the recorded bytes and read each file's content back from the unpacked layer.

Format here (JSON lines, gzip-compressed), as in tar-split:
    {"type": 2, "payload": "<base64 raw bytes>"}           a segment of tar bytes
    {"type": 1, "name": "etc/passwd", "size": 1234}          the content of one file
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import posixpath

from . import tarstream
from .archive import ArchiveError

FILE, SEGMENT = 1, 2


def _clean(name: str) -> str | None:
    """The path apply_layer() writes a member to, relative to the layer dir (or None)."""
    p = posixpath.normpath("/" + name).lstrip("/")
    return p if p and p != "." and not p.startswith("..") else None


def record(tar_path: str, out_path: str) -> None:
    """Write the tar-split of the (uncompressed) tar file at `tar_path` to `out_path`."""
    try:
        with open(tar_path, "rb") as f:     # headers only: the reader seeks over the data
            members = list(tarstream.Reader(f, size=os.fstat(f.fileno()).st_size))
    except tarstream.TarError as e:
        raise ArchiveError(f"Error processing tar file: {e}") from None
    names = [_clean(m.name) for m in members]
    last_index = {n: i for i, n in enumerate(names) if n}
    spans = []  # (start, end, relpath) of file contents we can read back from disk
    for i, m in enumerate(members):
        # a name seen twice in one layer: only the last copy is on disk; earlier copies
        # stay inline in the segments
        if m.isreg() and m.size > 0 and names[i] and last_index[names[i]] == i:
            spans.append((m.offset_data, m.offset_data + m.size, names[i]))
    size = os.path.getsize(tar_path)
    with open(tar_path, "rb") as src, gzip.open(out_path, "wt", compresslevel=6) as out:
        pos = 0
        for start, end, name in spans:
            if start > pos:
                src.seek(pos)
                _segment(out, src.read(start - pos))
            out.write(json.dumps({"type": FILE, "name": name, "size": end - start}) + "\n")
            pos = end
        if pos < size:
            src.seek(pos)
            _segment(out, src.read(size - pos))


def _segment(out, data: bytes) -> None:
    step = 1 << 20
    for i in range(0, len(data), step):
        out.write(json.dumps({"type": SEGMENT, "payload": base64.b64encode(data[i:i + step]).decode()}) + "\n")


def assemble(tarsplit_path: str, layer_dir: str, out) -> None:
    """Write the original tar to the binary file object `out`, reading file contents from
    `layer_dir` (the layer's diff/). Never follows a symlink out of the layer."""
    root = os.path.realpath(layer_dir)
    with gzip.open(tarsplit_path, "rt") as f:
        for line in f:
            entry = json.loads(line)
            if entry["type"] == SEGMENT:
                out.write(base64.b64decode(entry["payload"]))
                continue
            path = os.path.join(root, entry["name"])
            if os.path.realpath(path) != path:
                raise ArchiveError(f"layer file {entry['name']} is not where the layer put it")
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as src:
                left = entry["size"]
                while left:
                    chunk = src.read(min(left, 1 << 20))
                    if not chunk:
                        raise ArchiveError(f"layer file {entry['name']} is shorter than recorded: "
                                           "the layer was modified")
                    out.write(chunk)
                    left -= len(chunk)
