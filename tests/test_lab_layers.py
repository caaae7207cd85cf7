"""minidocker.lab.layers: the layer walker, the overlay rule and the explorer of notebook 05."""
from __future__ import annotations

import os
import shutil
import stat

import pytest

from minidocker.lab import layers as L
from minidocker.lab.layers import DIR, FILE, SYMLINK, WHITEOUT, Entry


def make(root, files: dict):
    """{relpath: text | None (dir) | ("link", target)} under root."""
    for rel, what in files.items():
        p = os.path.join(root, rel)
        if what is None:
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(what, tuple):
            os.symlink(what[1], p)
        else:
            with open(p, "w") as f:
                f.write(what)
    return str(root)


def test_classify():
    assert L.classify(stat.S_IFCHR | 0o000, 0) == WHITEOUT
    assert L.classify(stat.S_IFCHR | 0o666, os.makedev(1, 3)) == "other"   # /dev/null is no whiteout
    assert L.classify(stat.S_IFDIR | 0o755) == DIR
    assert L.classify(stat.S_IFREG | 0o644) == FILE
    assert L.classify(stat.S_IFLNK | 0o777) == SYMLINK


def test_walk_layer_reads_the_tar_spelling_of_whiteouts(tmp_path):
    d = make(tmp_path, {"etc/passwd": "root:x:0:0\n", "etc/.wh.group": "", "bin/sh": ("link", "busybox"),
                        "app/config/.wh..wh..opq": "", "app/config/prod.conf": "mode=prod\n", "empty": None})
    got = L.walk_layer(d, is_opaque=lambda p: False)
    assert [(e.path, e.kind) for e in got] == [
        ("/app", DIR), ("/app/config", DIR), ("/app/config/prod.conf", FILE), ("/bin", DIR),
        ("/bin/sh", SYMLINK), ("/empty", DIR), ("/etc", DIR), ("/etc/group", WHITEOUT), ("/etc/passwd", FILE)]
    by = {e.path: e for e in got}
    assert by["/app/config"].opaque and not by["/app"].opaque
    assert by["/bin/sh"].target == "busybox" and by["/etc/passwd"].size == 11


def test_walk_layer_asks_for_opaque_xattrs(tmp_path):
    d = make(tmp_path, {"a/x": "1", "b/y": "2"})
    got = L.walk_layer(d, is_opaque=lambda p: p.endswith("/b"))
    assert [e.path for e in got if e.opaque] == ["/b"]


def E(path, kind=FILE, opaque=False):
    return Entry(path, kind, opaque=opaque)


def test_merge_upper_wins_and_whiteouts_hide_subtrees():
    lower = [E("/etc", DIR), E("/etc/group"), E("/etc/passwd"), E("/opt", DIR), E("/opt/x"), E("/opt/y")]
    upper = [E("/etc", DIR), E("/etc/passwd"), E("/etc/group", WHITEOUT), E("/opt", WHITEOUT)]
    view = L.merge([lower, upper])
    assert {p: i for p, (i, _) in view.items()} == {"/etc": 1, "/etc/passwd": 1}


def test_merge_opaque_dir_keeps_only_its_own_children():
    lower = [E("/app", DIR), E("/app/config", DIR), E("/app/config/a"), E("/app/config/b"), E("/app/hello")]
    upper = [E("/app", DIR), E("/app/config", DIR, opaque=True), E("/app/config/c")]
    view = L.merge([lower, upper])
    assert sorted(view) == ["/app", "/app/config", "/app/config/c", "/app/hello"]
    assert view["/app/hello"][0] == 0


def test_merge_type_changes():
    lower = [E("/x", DIR), E("/x/inner"), E("/y")]
    upper = [E("/x"), E("/y", DIR), E("/y/new")]          # a file over a dir, a dir over a file
    view = L.merge([lower, upper])
    assert sorted(view) == ["/x", "/y", "/y/new"] and view["/x"][1].kind == FILE


def test_merge_three_layers_and_a_whiteout_of_nothing():
    l0, l1, l2 = [E("/a"), E("/b")], [E("/b", WHITEOUT), E("/c")], [E("/b"), E("/zz", WHITEOUT)]
    view = L.merge([l0, l1, l2])
    assert {p: i for p, (i, _) in view.items()} == {"/a": 0, "/b": 2, "/c": 1}


def test_changes_like_docker_diff():
    image = L.merge([[E("/etc", DIR), E("/etc/group"), E("/etc/passwd"), E("/tmp", DIR)]])
    upper = [E("/etc", DIR), E("/etc/group"), E("/etc/passwd", WHITEOUT), E("/tmp", DIR), E("/tmp/new"),
             E("/nothing", WHITEOUT)]
    assert L.changes(upper, image) == [("C", "/etc"), ("C", "/etc/group"), ("D", "/etc/passwd"),
                                       ("C", "/tmp"), ("A", "/tmp/new")]


def test_describe_format_and_summary():
    entries = [E("/app", DIR, opaque=True), Entry("/app/a", FILE, size=3), E("/etc/group", WHITEOUT),
               Entry("/bin/sh", SYMLINK, target="busybox")]
    text = L.format_layer(entries)
    assert text.splitlines() == ["dir       /app/   (OPAQUE: hides the layers below)",
                                 "file      /app/a (3 B)",
                                 "WHITEOUT  /etc/group   (deleted from the layers below)",
                                 "symlink   /bin/sh -> busybox"]
    assert L.format_layer(entries, limit=1).splitlines()[-1] == "... and 3 more"
    assert L.summary(entries) == "1 file (3 B), 1 dir, 1 symlink, 1 whiteout, 1 opaque dir"
    assert L.summary([E("/a"), E("/b")]) == "2 files (0 B), 0 dirs"


def test_layer_choices_and_render_html(tmp_path):
    d0 = make(tmp_path / "l0", {"etc/group": "g", "a<b>.txt": "x"})
    d1 = make(tmp_path / "l1", {"etc/.wh.group": ""})
    choices = L.layer_choices([{"diff_id": "sha256:" + "ab" * 32, "diff_dir": d0},
                               {"diff_id": "sha256:" + "cd" * 32, "diff_dir": d1}],
                              extra=[("container x: writable layer", d1)])
    assert [c[1] for c in choices] == [d0, d1, d1]
    assert choices[0][0] == "layer 0: abababababab  (2 files (2 B), 1 dir)"
    assert choices[2][0] == "container x: writable layer  (0 files (0 B), 1 dir, 1 whiteout)"
    html = L.render_html(d1)
    assert "color:#c00" in html and "WHITEOUT  /etc/group" in html
    assert "a&lt;b&gt;.txt" in L.render_html(d0)


def test_human_size_uses_docker_s_decimal_units():
    # 1e+03 kB: Go's %.3g, as `docker images` prints 999 999 bytes
    assert [L.human_size(n) for n in (0, 26, 999, 1000, 4100, 999_999, 1_982_763, 12_345_678_901)] == [
        "0 B", "26 B", "999 B", "1 kB", "4.1 kB", "1e+03 kB", "1.98 MB", "12.3 GB"]


def test_hard_links_count_once_like_du(tmp_path):
    """busybox's layer: one 1.98 MB binary under some 270 names must not read as 270 files."""
    d = make(tmp_path, {"bin/busybox": "x" * 1000, "etc/passwd": "root:x:0:0\n"})
    for name in ("ls", "sh", "[", "cat"):
        os.link(f"{d}/bin/busybox", f"{d}/bin/{name}")
    got = L.walk_layer(d, is_opaque=lambda p: False)
    assert L.file_count(got) == (6, 2, 1011)
    assert L.summary(got) == "6 names for 2 files (1.01 kB), 2 dirs"
    assert L.hard_links(got) == {"/bin/busybox": "/bin/[", "/bin/cat": "/bin/[", "/bin/ls": "/bin/[",
                                 "/bin/sh": "/bin/["}
    lines = L.format_layer(got).splitlines()
    assert "file      /bin/[ (1000 B)" in lines and "file      /bin/sh (hard link to /bin/[)" in lines
    assert "hard link to /bin/[" in L.render_html(d)
    # without inode numbers (entries made by hand) every name is a file of its own
    assert L.file_count([Entry("/a", FILE, size=5), Entry("/b", FILE, size=5)]) == (2, 2, 10)
    # the same inode number on another device is another file
    twins = [Entry("/a", FILE, size=5, dev=1, ino=7), Entry("/b", FILE, size=5, dev=2, ino=7)]
    assert L.file_count(twins) == (2, 2, 10) and L.hard_links(twins) == {}


def test_snapshot_outlives_the_layers_and_says_so(tmp_path):
    d0 = make(tmp_path / "l0", {"etc/group": "g"})
    snap = L.snapshot([("zero", d0)])
    shutil.rmtree(d0)                                   # what the notebook's clean-up does
    assert L.render_html(d0).startswith("<b>0 files (0 B), 0 dirs</b>")   # reading it now: nothing
    page = L.render_entries(snap[d0], note=L.snapshot_note(d0, "12:00:00"))
    assert "file      /etc/group (1 B)" in page and "1 file (1 B), 1 dir" in page
    assert "12:00:00" in page and "gone now" in page
    assert "gone" not in L.snapshot_note("/x", "12:00:00", exists=lambda p: True)


def test_explorer_widget_shows_the_picked_layer(tmp_path):
    pytest.importorskip("ipywidgets")
    d0 = make(tmp_path / "l0", {"only-in-0": "x"})
    d1 = make(tmp_path / "l1", {".wh.only-in-0": ""})
    box = L.explorer([("zero", d0), ("one", d1)])
    pick, view = box.children
    assert "only-in-0 (1 B)" in view.value and "gone" not in view.value
    shutil.rmtree(tmp_path / "l0")
    shutil.rmtree(tmp_path / "l1")                      # the layers go; the explorer still shows them
    pick.value = d1
    assert "WHITEOUT  /only-in-0" in view.value and "gone now" in view.value
    pick.value = d0
    assert "only-in-0 (1 B)" in view.value


@pytest.mark.root
def test_walk_and_merge_agree_with_the_kernel(tmp_path):
    """The overlay form (0/0 device, trusted xattr) and merge() checked against a real mount."""
    from minidocker.core.linux import syscalls as sc
    lower = make(tmp_path / "lower", {"keep": "k", "gone": "g", "dir/a": "a", "dir/b": "b"})
    upper, work, merged = (str(tmp_path / n) for n in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        os.mkdir(d)
    sc.mount("overlay", merged, "overlay", 0, f"lowerdir={lower},upperdir={upper},workdir={work}")
    try:
        os.remove(f"{merged}/gone")
        for n in ("a", "b"):
            os.remove(f"{merged}/dir/{n}")
        os.rmdir(f"{merged}/dir")
        os.mkdir(f"{merged}/dir")
        open(f"{merged}/dir/c", "w").close()
        up = L.walk_layer(upper)
        assert {(e.path, e.kind, e.opaque) for e in up} == {
            ("/gone", WHITEOUT, False), ("/dir", DIR, True), ("/dir/c", FILE, False)}
        view = L.merge([L.walk_layer(lower), up])
        assert sorted(view) == [e.path for e in L.walk_layer(merged)] == ["/dir", "/dir/c", "/keep"]
    finally:
        sc.umount2(merged, sc.MNT_DETACH)
