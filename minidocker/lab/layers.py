"""Looking inside image layers: what each `diff/` holds, and what the union shows.

The logic behind notebook 05's layer explorer, as plain functions (the widget only calls them):

    walk_layer(diff_dir)        -> [Entry]   one layer's files, whiteouts and opaque dirs marked
    merge([layer0, layer1,...]) -> {path: (layer index, Entry)}
                                   what overlayfs would show for these layers, bottom first
    changes(upper, lower_view)  -> [("A"|"C"|"D", path)]   `docker diff` of a writable layer
    format_layer(entries)       -> text, one line per entry (a hard link names its first name)
    summary(entries)            -> '6 files (1.99 MB), 14 dirs', hard links counted once, as du does
    explorer(choices)           -> an ipywidgets box: a dropdown of layers and their files, from a
                                   snapshot taken when it is built (so it still shows the layers
                                   after the notebook's clean-up has removed them, and says so)

Whiteouts come in two spellings (runtime-facts.md, section 2):
  * on overlay (a layer unpacked for overlayfs, or a container's upper dir): a character
    device 0/0 named like the deleted file; an opaque directory has the xattr
    trusted.overlay.opaque=y;
  * in a layer tar (the OCI/AUFS form): an empty file `.wh.<name>`; `.wh..wh..opq` inside a
    directory makes it opaque.
walk_layer() understands both and reports the deleted *name*, so both look the same.
"""
from __future__ import annotations

import dataclasses
import html
import os
import stat
import re
import time

from ..compat.cli.format import human_size as format_size
from ..core.overlay2 import is_opaque
from ..storage.archive import WHITEOUT_OPAQUE as WH_OPAQUE, WHITEOUT_PREFIX as WH_PREFIX

DIR, FILE, SYMLINK, WHITEOUT, OTHER = "dir", "file", "symlink", "whiteout", "other"


@dataclasses.dataclass(frozen=True)
class Entry:
    path: str            # absolute inside the image, e.g. "/etc/passwd"
    kind: str            # dir, file, symlink, whiteout, other
    size: int = 0
    target: str = ""     # a symlink's target
    opaque: bool = False  # a directory that hides the same directory in the layers below
    dev: int = 0          # a file's (st_dev, st_ino): hard links share them; 0, 0 = unknown
    ino: int = 0


def classify(mode: int, rdev: int = 0) -> str:
    """The kind of a directory entry from its st_mode (and st_rdev)."""
    if stat.S_ISCHR(mode) and rdev == 0:  # (core.overlay2.is_whiteout, on the two numbers)
        return WHITEOUT  # overlayfs' whiteout: a 0/0 character device
    if stat.S_ISDIR(mode):
        return DIR
    if stat.S_ISREG(mode):
        return FILE
    if stat.S_ISLNK(mode):
        return SYMLINK
    return OTHER


def walk_layer(diff_dir: str, is_opaque=is_opaque) -> list[Entry]:
    """Every entry of one layer directory, sorted by path. `is_opaque(path)` is injectable
    (reading trusted.* xattrs needs root)."""
    out: list[Entry] = []

    def visit(rel: str, full: str) -> None:
        try:
            names = sorted(os.listdir(full))
        except OSError:
            return
        opaque_here = WH_OPAQUE in names
        if opaque_here and rel:
            # tar form: the marker file makes its directory opaque
            out[:] = [dataclasses.replace(e, opaque=True) if e.path == rel else e for e in out]
        for name in names:
            if name == WH_OPAQUE:
                continue
            p = os.path.join(full, name)
            st = os.lstat(p)
            if name.startswith(WH_PREFIX):
                out.append(Entry(f"{rel}/{name[len(WH_PREFIX):]}", WHITEOUT))
                continue
            kind = classify(st.st_mode, st.st_rdev)
            e = Entry(f"{rel}/{name}", kind,
                      size=st.st_size if kind == FILE else 0,
                      target=os.readlink(p) if kind == SYMLINK else "",
                      opaque=kind == DIR and is_opaque(p),
                      dev=st.st_dev if kind == FILE else 0, ino=st.st_ino if kind == FILE else 0)
            out.append(e)
            if kind == DIR:
                visit(f"{rel}/{name}", p)

    visit("", diff_dir)
    return sorted(out, key=lambda e: e.path)


def _under(path: str, top: str) -> bool:
    return path.startswith(top.rstrip("/") + "/")


def merge(layers: list[list[Entry]]) -> dict[str, tuple[int, Entry]]:
    """What the union of `layers` (bottom first) shows, as overlayfs decides it:
    the uppermost layer that has a path wins; a whiteout hides the path (and everything
    under it) from the layers below; an opaque directory hides everything the layers below
    have under it; a file replacing a directory hides the directory's contents."""
    view: dict[str, tuple[int, Entry]] = {}
    for i, layer in enumerate(layers):
        for e in layer:  # first what this layer takes away from the layers below
            below = view.get(e.path)
            if e.kind == WHITEOUT or (e.kind == DIR and e.opaque) or \
                    (below and below[1].kind == DIR and e.kind != DIR):
                for p in [p for p in view if _under(p, e.path)]:
                    del view[p]
            if e.kind == WHITEOUT:
                view.pop(e.path, None)
        for e in layer:  # then what it adds
            if e.kind != WHITEOUT:
                view[e.path] = (i, e)
    return dict(sorted(view.items()))


def changes(upper: list[Entry], lower_view: dict[str, tuple[int, Entry]]) -> list[tuple[str, str]]:
    """`docker diff`: A(dded), C(hanged) or D(eleted) for each entry of a writable layer,
    judged against the image (lower_view, from merge())."""
    out = []
    for e in upper:
        if e.kind == WHITEOUT:
            if e.path in lower_view:
                out.append(("D", e.path))
        else:
            out.append(("C" if e.path in lower_view else "A", e.path))
    return out


def hard_links(entries: list[Entry]) -> dict[str, str]:
    """{path: the first path (in the listing's order) of the same file} for every file that is
    a further name of a file listed before it (a hard link: same device and inode)."""
    first: dict[tuple[int, int], str] = {}
    out = {}
    for e in entries:
        if e.kind != FILE or not e.ino:
            continue
        key = (e.dev, e.ino)
        if key in first:
            out[e.path] = first[key]
        else:
            first[key] = e.path
    return out


def describe(e: Entry, link_to: str = "") -> str:
    """One line for an entry; `link_to`: the first name of the file this one is a hard link of."""
    if e.kind == WHITEOUT:
        return f"WHITEOUT  {e.path}   (deleted from the layers below)"
    if e.kind == DIR:
        return f"dir       {e.path}/" + ("   (OPAQUE: hides the layers below)" if e.opaque else "")
    if e.kind == SYMLINK:
        return f"symlink   {e.path} -> {e.target}"
    if e.kind == FILE:
        if link_to:
            return f"file      {e.path} (hard link to {link_to})"
        return f"file      {e.path} ({e.size} B)"
    return f"{e.kind:<9} {e.path}"


def _lines(entries: list[Entry], limit: int | None) -> list[str]:
    links = hard_links(entries)
    shown = entries if limit is None else entries[:limit]
    lines = [describe(e, links.get(e.path, "")) for e in shown]
    if limit is not None and len(entries) > limit:
        lines.append(f"... and {len(entries) - limit} more")
    return lines


def format_layer(entries: list[Entry], limit: int | None = None) -> str:
    """One line per entry; with `limit`, the first entries and a count of the rest.
    A further name of a file (a hard link) says which file it names, not its size again."""
    return "\n".join(_lines(entries, limit))


def _n(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def human_size(n: int) -> str:
    """Bytes as `docker images` shows them (go-units' decimal units, compat/cli/format.py), with
    a space for reading: 26 B, 4.1 kB, 1.98 MB (and, as Docker, 1e+03 kB for 999 999 bytes)."""
    return re.sub(r"([kMGTPEZY]?B)$", r" \1", format_size(n))


def file_count(entries: list[Entry]) -> tuple[int, int, int]:
    """(names, files, bytes) of the regular files, the way `du` counts: a file with several
    names (hard links) is one file, and its size counts once."""
    names, seen, size = 0, set(), 0
    for e in entries:
        if e.kind != FILE:
            continue
        names += 1
        key = (e.dev, e.ino) if e.ino else ("name", e.path)
        if key not in seen:
            seen.add(key)
            size += e.size
    return names, len(seen), size


def summary(entries: list[Entry]) -> str:
    """'3 files (26 B), 2 dirs, 1 whiteout, 1 opaque dir' (kinds that are absent are left out,
    files and dirs excepted). Hard links count once: busybox's layer is
    '271 names for 6 files (1.99 MB), 14 dirs', not 271 files of 1.98 MB each."""
    n = {k: sum(1 for e in entries if e.kind == k) for k in (DIR, SYMLINK, WHITEOUT)}
    names, files, size = file_count(entries)
    counted = f"{_n(files, 'file')} ({human_size(size)})"
    parts = [counted if names == files else f"{names} names for {counted}", _n(n[DIR], "dir")]
    if n[SYMLINK]:
        parts.append(_n(n[SYMLINK], "symlink"))
    if n[WHITEOUT]:
        parts.append(_n(n[WHITEOUT], "whiteout"))
    opaque = sum(1 for e in entries if e.opaque)
    if opaque:
        parts.append(_n(opaque, "opaque dir"))
    return ", ".join(parts)


def layer_choices(image_layers: list[dict], extra: list[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """Dropdown options (label, diff dir) for an image's layers, as `Image.layers()` lists
    them (bottom first), then any `extra` (label, dir) pairs, e.g. a container's layers."""
    out = []
    for i, layer in enumerate(image_layers):
        digest = layer["diff_id"].split(":", 1)[-1][:12]
        out.append((f"layer {i}: {digest}  ({summary(walk_layer(layer['diff_dir']))})",
                    layer["diff_dir"]))
    for label, d in extra:
        out.append((f"{label}  ({summary(walk_layer(d))})", d))
    return out


def render_entries(entries: list[Entry], limit: int = 400, note: str = "") -> str:
    """The file list of one layer as HTML: whiteouts in red, opaque dirs in orange, then `note`."""
    links = hard_links(entries)
    rows = []
    for e in entries[:limit]:
        text = html.escape(describe(e, links.get(e.path, "")))
        if e.kind == WHITEOUT:
            text = f'<span style="color:#c00;font-weight:bold">{text}</span>'
        elif e.opaque:
            text = f'<span style="color:#d60;font-weight:bold">{text}</span>'
        rows.append(text)
    if len(entries) > limit:
        rows.append(f"... and {len(entries) - limit} more")
    return (f"<b>{html.escape(summary(entries))}</b>"
            + (f"<br><i>{html.escape(note)}</i>" if note else "")
            + "<pre style='max-height:20em;overflow:auto'>" + "\n".join(rows) + "</pre>")


def render_html(diff_dir: str, limit: int = 400) -> str:
    """The file list of one layer directory as it is now, as HTML (see render_entries)."""
    return render_entries(walk_layer(diff_dir), limit)


def snapshot(choices: list[tuple[str, str]]) -> dict[str, list[Entry]]:
    """{diff dir: its entries now} for the (label, diff dir) choices: what the explorer shows."""
    return {d: walk_layer(d) for _, d in choices}


def snapshot_note(diff_dir: str, taken: str, exists=os.path.isdir) -> str:
    """What the explorer says under a layer's summary: when its list was read, and whether the
    directory has gone since (a notebook's clean-up removes every layer)."""
    if exists(diff_dir):
        return f"as read at {taken}, when the explorer was built (re-run its cell to read it again)"
    return (f"as read at {taken}, when the explorer was built: the directory is gone now "
            "(removed by the clean-up), so this is a record of what it held")


def explorer(choices: list[tuple[str, str]], snap: dict[str, list[Entry]] | None = None):
    """A dropdown of layers (label, diff dir) and the chosen layer's files. The files are read
    once, here (or given as `snap`, from snapshot()): the explorer keeps showing them after the
    layers are removed, and says they are gone."""
    import ipywidgets as w
    snap = snapshot(choices) if snap is None else snap
    taken = time.strftime("%H:%M:%S")

    def page(d: str) -> str:
        return render_entries(snap.get(d, []), note=snapshot_note(d, taken))

    pick = w.Dropdown(options=choices, description="layer", layout=w.Layout(width="95%"))
    view = w.HTML(value=page(pick.value) if choices else "")

    def show(change) -> None:
        view.value = page(change["new"])

    pick.observe(show, names="value")
    return w.VBox([pick, view])
