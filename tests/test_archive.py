"""Tests of minidocker.storage.archive: layer tars <-> overlay2 diff directories.

Run as root (mknod, chown, trusted.* xattrs). Every file lives under pytest's tmp_path;
every tar is built here with tarfile, nothing binary is committed.
"""
from __future__ import annotations

import ctypes
import dataclasses
import gzip
import hashlib
import io
import os
import socket
import stat
import tarfile
from typing import Callable

import pytest

from minidocker.storage.archive import (ArchiveError, UnsafeArchiveError, apply_layer, export_dir,
                                        export_layer_with_digest, layer_digest)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, xattrs)")

MTIME = 1_600_000_000

# A valid VFS_CAP_REVISION_2 security.capability value: cap_net_bind_service, effective.
CAP_NET_BIND = ((0x02000001).to_bytes(4, "little") + (1 << 10).to_bytes(4, "little")
                + bytes(12))


# ---------------------------------------------------------------------------
# Building tars
# ---------------------------------------------------------------------------

def _info(name, type_, *, mode=0o644, uid=0, gid=0, mtime=MTIME, linkname="", pax=None,
          major=0, minor=0):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = type_, mode, uid, gid, mtime
    ti.linkname, ti.devmajor, ti.devminor = linkname, major, minor
    ti.pax_headers = dict(pax or {})
    return ti


def reg(name, data=b"x", **kw):
    return _info(name, tarfile.REGTYPE, **kw), data


def dir_(name, **kw):
    kw.setdefault("mode", 0o755)
    return _info(name, tarfile.DIRTYPE, **kw), None


def sym(name, target, **kw):
    return _info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw), None


def hard(name, target, **kw):
    return _info(name, tarfile.LNKTYPE, linkname=target, **kw), None


def chr_(name, major, minor, **kw):
    return _info(name, tarfile.CHRTYPE, major=major, minor=minor, **kw), None


def blk(name, major, minor, **kw):
    return _info(name, tarfile.BLKTYPE, major=major, minor=minor, **kw), None


def fifo(name, **kw):
    return _info(name, tarfile.FIFOTYPE, **kw), None


def build_tar(*members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def tar_members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        return tf.getmembers()


def export_bytes(src, **kw) -> bytes:
    buf = io.BytesIO()
    export_dir(src, buf, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Looking at trees
# ---------------------------------------------------------------------------

def xattrs(path) -> dict[str, bytes]:
    return {k: os.getxattr(path, k, follow_symlinks=False)
            for k in sorted(os.listxattr(path, follow_symlinks=False))
            if not k.startswith("trusted.overlay.")}


def describe(path: str, st: os.stat_result) -> tuple:
    m = st.st_mode
    if stat.S_ISREG(m):
        with open(path, "rb") as f:
            what = hashlib.sha256(f.read()).hexdigest()
    elif stat.S_ISLNK(m):
        what = os.readlink(path)
    elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
        what = (os.major(st.st_rdev), os.minor(st.st_rdev))
    else:
        what = None
    return (stat.S_IFMT(m), stat.S_IMODE(m), st.st_uid, st.st_gid, int(st.st_mtime), what,
            xattrs(path))


def tree(root) -> tuple[dict, set]:
    """{relative path: description} and the hard link groups of a directory tree."""
    out, inodes = {}, {}
    root = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            out[rel] = describe(p, st)
            if not stat.S_ISDIR(st.st_mode):
                inodes.setdefault(st.st_ino, []).append(rel)
    groups = {tuple(sorted(v)) for v in inodes.values() if len(v) > 1}
    return out, groups


def snapshot_outside(top, dest) -> dict:
    """Everything under `top` except `dest`, with full-precision times: the sentinel."""
    out = {}
    dest = os.path.abspath(dest)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != dest]
        st = os.lstat(dirpath)
        out[dirpath] = describe(dirpath, st) + (st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            if p == dest:
                continue
            st = os.lstat(p)
            out[p] = describe(p, st) + (st.st_mtime_ns, st.st_ctime_ns, st.st_nlink)
    return out


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------

def make_tree(src):
    """A tree with one of everything a layer can hold."""
    os.makedirs(src)
    p = lambda *a: os.path.join(src, *a)  # noqa: E731

    os.mkdir(p("bin"))
    with open(p("bin", "suid"), "wb") as f:
        f.write(b"#!/bin/sh\necho setuid\n")
    os.chmod(p("bin", "suid"), 0o4755)
    with open(p("bin", "ping"), "wb") as f:
        f.write(b"\x7fELF pretend")
    os.chmod(p("bin", "ping"), 0o755)
    os.setxattr(p("bin", "ping"), "security.capability", CAP_NET_BIND)

    os.mkdir(p("data"))
    os.chown(p("data"), 1000, 1000)
    os.chmod(p("data"), 0o2775)  # setgid dir (after chown, which clears it)
    os.setxattr(p("data"), "user.dir", b"yes")
    with open(p("data", "a.txt"), "wb") as f:
        f.write(b"hello\n" * 1000)
    os.chown(p("data", "a.txt"), 1000, 1001)
    os.setxattr(p("data", "a.txt"), "user.comment", b"hi there")
    os.setxattr(p("data", "a.txt"), "user.binary", b"\x00\xff\xfe\x80")
    open(p("data", "empty"), "wb").close()
    os.chmod(p("data", "empty"), 0o600)
    with open(p("data", "hard1"), "wb") as f:
        f.write(b"one inode, three names\n")
    os.chown(p("data", "hard1"), 12345, 54321)
    os.link(p("data", "hard1"), p("data", "hard2"))
    os.mkdir(p("data", "sub"))
    os.link(p("data", "hard1"), p("data", "sub", "hard3"))
    with open(p("data", "h\u00e9llo w\u00f6rld.txt"), "wb") as f:
        f.write(b"unicode\n")
    with open(os.path.join(os.fsencode(p("data")), b"latin1-\xe9t\xe9"), "wb") as f:
        f.write(b"not UTF-8 name\n")  # file names are bytes, not text
    long = "x" * 120
    with open(p("data", long), "wb") as f:
        f.write(b"long name\n")

    os.mkdir(p("tmp"))
    os.chmod(p("tmp"), 0o1777)

    os.mkdir(p("links"))
    os.symlink("../data/a.txt", p("links", "rel"))
    os.symlink("/etc/passwd", p("links", "abs"))
    os.symlink("nowhere", p("links", "dangling"))
    os.lchown(p("links", "rel"), 7, 8)

    os.mkdir(p("dev"))
    os.mknod(p("dev", "null"), stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(p("dev", "null"), 0o666)
    os.mknod(p("dev", "loop0"), stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chown(p("dev", "loop0"), 0, 6)
    os.mkfifo(p("dev", "fifo"), 0o620)
    os.chmod(p("dev", "fifo"), 0o620)
    s = socket.socket(socket.AF_UNIX)
    s.bind(p("dev", "sock"))  # sockets are skipped on export
    s.close()

    # Times last, children before their directories.
    for dirpath, dirnames, filenames in os.walk(src, topdown=False):
        for i, n in enumerate(sorted(filenames + dirnames)):
            os.utime(os.path.join(dirpath, n), (MTIME + 5, MTIME + i), follow_symlinks=False)
        os.utime(dirpath, (MTIME, MTIME + 100))


def test_round_trip_preserves_everything(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_tree(str(src))
    data = export_bytes(src)

    names = [m.name for m in tar_members(data)]
    assert "dev/sock" not in names
    assert not any(n.startswith(("/", "./")) for n in names)
    assert names == sorted(names, key=lambda n: n.split("/"))  # dir, then its contents

    written = apply_layer(io.BytesIO(data), dst)
    regular_bytes = sum(m.size for m in tar_members(data) if m.isreg())
    assert written == regular_bytes > 6000

    want, want_links = tree(src)
    del want["dev/sock"]
    got, got_links = tree(dst)
    assert got == want
    assert got_links == want_links == {("data/hard1", "data/hard2", "data/sub/hard3")}
    assert stat.S_IMODE(os.stat(dst / "bin" / "suid").st_mode) == 0o4755
    assert os.getxattr(dst / "bin" / "ping", "security.capability") == CAP_NET_BIND
    assert os.getxattr(dst / "data" / "a.txt", "user.binary") == b"\x00\xff\xfe\x80"

    # Same tree, different inodes and creation order: the very same bytes.
    assert export_bytes(dst) == data


def test_export_is_deterministic(tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    first, second = export_bytes(src), export_bytes(src)
    assert first == second
    assert layer_digest(io.BytesIO(first)) == layer_digest(io.BytesIO(second))
    assert layer_digest(io.BytesIO(first)) == "sha256:" + hashlib.sha256(first).hexdigest()
    for m in tar_members(first):
        assert m.uname == m.gname == ""
        assert "atime" not in m.pax_headers and "ctime" not in m.pax_headers
        assert isinstance(m.mtime, int)

    loose = tar_members(export_bytes(src, deterministic=False))
    root_owned = next(m for m in loose if m.name == "bin/suid")
    assert root_owned.uname == "root" and "atime" in root_owned.pax_headers


def test_export_layer_with_digest(tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    out = tmp_path / "layer.tar"
    diff_id, size = export_layer_with_digest(src, out)
    data = out.read_bytes()
    assert size == len(data) == os.path.getsize(out)
    assert diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert data == export_bytes(src)
    assert export_layer_with_digest(src, tmp_path / "again.tar") == (diff_id, size)
    assert sorted(os.listdir(tmp_path)) == ["again.tar", "layer.tar", "src"]  # no temp left


def test_hard_link_entry_points_to_first_name(tmp_path):
    src = tmp_path / "src"
    make_tree(str(src))
    by_name = {m.name: m for m in tar_members(export_bytes(src))}
    assert by_name["data/hard1"].isreg()
    assert by_name["data/hard2"].islnk() and by_name["data/hard2"].linkname == "data/hard1"
    assert by_name["data/sub/hard3"].linkname == "data/hard1"
    assert by_name["data/a.txt"].pax_headers["SCHILY.xattr.user.comment"] == "hi there"


# ---------------------------------------------------------------------------
# Whiteouts
# ---------------------------------------------------------------------------

WHITEOUT_LAYER = [
    reg("keep", b"kept"),
    reg(".wh.foo", b"", uid=5, gid=6),
    dir_("d/", mode=0o750),
    reg("d/.wh..wh..opq", b""),
    reg("d/new", b"new"),
    dir_("e/"),
    reg("e/.wh.gone", b""),
]


def test_whiteouts_become_overlay_form_and_back(tmp_path):
    diff = tmp_path / "diff"
    apply_layer(io.BytesIO(build_tar(*WHITEOUT_LAYER)), diff, overlay=True)

    assert sorted(os.listdir(diff)) == ["d", "e", "foo", "keep"]
    st = os.lstat(diff / "foo")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert (st.st_uid, st.st_gid) == (5, 6)
    assert os.getxattr(diff / "d", "trusted.overlay.opaque") == b"y"
    assert sorted(os.listdir(diff / "d")) == ["new"]  # the marker is not a file
    assert stat.S_ISCHR(os.lstat(diff / "e" / "gone").st_mode)
    assert os.lstat(diff / "d").st_mtime == MTIME  # set after the marker and d/new

    data = export_bytes(diff)
    by_name = {m.name: m for m in tar_members(data)}
    assert set(by_name) == {"keep", ".wh.foo", "d", "d/.wh..wh..opq", "d/new", "e", "e/.wh.gone"}
    wh = by_name[".wh.foo"]
    assert wh.isreg() and wh.size == 0 and wh.mode == 0o600 and (wh.uid, wh.gid) == (5, 6)
    assert by_name["d/.wh..wh..opq"].isreg() and by_name["d/.wh..wh..opq"].size == 0
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in by_name.values()
                   for k in m.pax_headers)
    names = [m.name for m in tar_members(data)]
    assert names.index("d") + 1 == names.index("d/.wh..wh..opq")

    # and around again: stable bytes
    diff2 = tmp_path / "diff2"
    apply_layer(io.BytesIO(data), diff2)
    assert export_bytes(diff2) == data

    # overlay=False exports the device and drops overlay xattrs
    plain = {m.name: m for m in tar_members(export_bytes(diff, overlay=False))}
    assert plain["foo"].ischr() and "d/.wh..wh..opq" not in plain


def test_overlay_whiteout_shared_inode_is_not_a_hard_link(tmp_path):
    # overlayfs may hard-link one whiteout inode under many names.
    diff = tmp_path / "diff"
    os.mkdir(diff)
    os.mknod(diff / "a", stat.S_IFCHR, os.makedev(0, 0))
    os.link(diff / "a", diff / "b")
    members = tar_members(export_bytes(diff))
    assert [(m.name, m.isreg()) for m in members] == [(".wh.a", True), (".wh.b", True)]


def test_naive_mode_deletes(tmp_path):
    root = tmp_path / "rootfs"
    for d in ("bar/deep", "d/old", "d/kept/older", "e"):
        os.makedirs(root / d)
    for f in ("foo", "bar/deep/f", "d/oldfile", "d/kept/older/f", "e/gone", "e/stays"):
        (root / f).write_bytes(b"lower")

    layer = build_tar(
        reg(".wh.foo", b""),
        reg(".wh.bar", b""),
        reg(".wh.never-existed", b""),
        dir_("d/"),
        reg("d/-early", b"before the marker"),   # '-' sorts before '.'
        reg("d/.wh..wh..opq", b""),
        dir_("d/kept/"),
        reg("d/kept/fresh", b"fresh"),
        reg("d/new", b"new"),
        reg("e/.wh.gone", b""),
    )
    apply_layer(io.BytesIO(layer), root, overlay=False)
    assert sorted(os.listdir(root)) == ["d", "e"]
    assert sorted(os.listdir(root / "d")) == ["-early", "kept", "new"]
    assert sorted(os.listdir(root / "d" / "kept")) == ["fresh"]
    assert sorted(os.listdir(root / "e")) == ["stays"]
    assert not any(n.startswith(".wh.") for _, ds, fs in os.walk(root) for n in ds + fs)
    assert not any(stat.S_ISCHR(os.lstat(os.path.join(p, n)).st_mode)
                   for p, ds, fs in os.walk(root) for n in fs)


def test_naive_opaque_spares_entries_after_it_in_subdirs(tmp_path):
    # d/kept/ is unpacked *after* d's marker, as in a sorted layer: its older contents
    # are from a lower layer and must go when d is opaque.
    root = tmp_path / "rootfs"
    os.makedirs(root / "d" / "kept")
    (root / "d" / "kept" / "old").write_bytes(b"lower")
    layer = build_tar(dir_("d/"), reg("d/.wh..wh..opq", b""), dir_("d/kept/"), reg("d/kept/new"))
    apply_layer(io.BytesIO(layer), root, overlay=False)
    assert sorted(os.listdir(root / "d" / "kept")) == ["new"]


# ---------------------------------------------------------------------------
# Replacing things
# ---------------------------------------------------------------------------

def test_file_replaces_directory_and_directory_replaces_file(tmp_path):
    dest = tmp_path / "dest"
    os.makedirs(dest / "x" / "inner")
    (dest / "x" / "inner" / "f").write_bytes(b"old")
    (dest / "y").write_bytes(b"a file")
    os.symlink("elsewhere", dest / "z")
    layer = build_tar(reg("x", b"now a file"), dir_("y/", mode=0o700), reg("y/z", b"in y"),
                      dir_("z/"))
    apply_layer(io.BytesIO(layer), dest, overlay=False)
    assert (dest / "x").read_bytes() == b"now a file"
    assert os.path.isdir(dest / "y") and (dest / "y" / "z").read_bytes() == b"in y"
    assert stat.S_IMODE(os.lstat(dest / "y").st_mode) == 0o700
    assert stat.S_ISDIR(os.lstat(dest / "z").st_mode)


def test_directory_over_directory_keeps_contents_updates_metadata(tmp_path):
    dest = tmp_path / "dest"
    os.makedirs(dest / "d")
    (dest / "d" / "old").write_bytes(b"still here")
    layer = build_tar(dir_("d/", mode=0o1750, uid=33, gid=44, mtime=MTIME + 7,
                           pax={"SCHILY.xattr.user.tag": "v"}))
    apply_layer(io.BytesIO(layer), dest)
    st = os.lstat(dest / "d")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime) == (0o1750, 33, 44,
                                                                               MTIME + 7)
    assert os.getxattr(dest / "d", "user.tag") == b"v"
    assert (dest / "d" / "old").read_bytes() == b"still here"


def test_root_entry_sets_root_metadata(tmp_path):
    dest = tmp_path / "dest"
    apply_layer(io.BytesIO(build_tar(dir_("./", mode=0o711), reg("./a"))), dest)
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o711
    assert os.listdir(dest) == ["a"]


def test_missing_parents_are_created(tmp_path):
    dest = tmp_path / "dest"
    apply_layer(io.BytesIO(build_tar(reg("a/b/c", b"deep"))), dest)
    assert (dest / "a" / "b" / "c").read_bytes() == b"deep"
    assert stat.S_IMODE(os.lstat(dest / "a").st_mode) == 0o755


# ---------------------------------------------------------------------------
# Input formats
# ---------------------------------------------------------------------------

class PipeLike:
    """Only read(): no seek, no tell, short reads. Like a socket or a pipe."""

    def __init__(self, data: bytes):
        self.buf = io.BytesIO(data)

    def read(self, n=-1):
        return self.buf.read(min(n, 7) if n and n > 0 else n)


def test_gzip_is_autodetected(tmp_path):
    plain = build_tar(dir_("etc/"), reg("etc/hostname", b"box\n"))
    gz = gzip.compress(plain)
    assert gz[:2] == b"\x1f\x8b"
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(gz)
    for i, source in enumerate([path, str(path), io.BytesIO(gz), PipeLike(gz), PipeLike(plain)]):
        dest = tmp_path / f"dest{i}"
        assert apply_layer(source, dest) == 4
        assert (dest / "etc" / "hostname").read_bytes() == b"box\n"


def test_zstd_needs_the_zstandard_module(tmp_path):
    try:
        import zstandard
    except ImportError:
        with pytest.raises(ArchiveError, match="zstandard"):
            apply_layer(io.BytesIO(b"\x28\xb5\x2f\xfd" + bytes(100)), tmp_path / "d")
        return
    data = zstandard.ZstdCompressor().compress(build_tar(reg("z", b"zz")))
    apply_layer(io.BytesIO(data), tmp_path / "d")
    assert (tmp_path / "d" / "z").read_bytes() == b"zz"


def test_garbage_is_an_archive_error(tmp_path):
    with pytest.raises(ArchiveError):
        apply_layer(io.BytesIO(b"\x1f\x8b not really gzip" * 10), tmp_path / "d")
    with pytest.raises(ArchiveError):
        apply_layer(io.BytesIO(b"definitely not a tar" * 40), tmp_path / "e")


# ---------------------------------------------------------------------------
# Hostile layers
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Hostile:
    """members(s) builds the entries; s is the absolute path of the sentinel dir."""
    members: Callable[[str], list]
    raises: type[Exception] | None = UnsafeArchiveError  # None: must be neutralized
    overlay: bool = True
    setup: Callable[[str, str], None] | None = None       # (dest, sentinel) -> None
    check: Callable[[str, str], None] | None = None       # after a neutralized apply


def _pre_symlink(name, target_in_sentinel=""):
    def setup(dest, s):
        os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
        os.symlink(os.path.join(s, target_in_sentinel) if target_in_sentinel else s,
                   os.path.join(dest, name))
    return setup


def _is_regular(name, content):
    def check(dest, s):
        p = os.path.join(dest, name)
        assert stat.S_ISREG(os.lstat(p).st_mode) and open(p, "rb").read() == content
    return check


def _check_absolute(dest, s):
    assert open(os.path.join(dest, s.lstrip("/"), "abs_pwned"), "rb").read() == b"pwned"


def _check_dir_not_symlink(dest, s):
    st = os.lstat(os.path.join(dest, "evil"))
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == 4242


def _check_fifo(dest, s):
    assert stat.S_ISFIFO(os.lstat(os.path.join(dest, "evil")).st_mode)


def _check_hardlink_inside(dest, s):
    inside = os.path.join(dest, s.lstrip("/"), "secret")
    assert os.path.samefile(os.path.join(dest, "h"), inside)
    assert open(inside, "rb").read() == b"copy inside"


def _check_no_overlay_xattrs(dest, s):
    assert not [k for k in os.listxattr(os.path.join(dest, "d")) if k.startswith("trusted.")]


def _check_gone(name):
    def check(dest, s):
        assert not os.path.lexists(os.path.join(dest, name))
    return check


HOSTILE = {
    # ".." that climbs out
    "dotdot-file": Hostile(lambda s: [reg("../escape", b"pwned")]),
    "dotdot-nested": Hostile(lambda s: [dir_("a/"), reg("a/../../escape", b"pwned")]),
    "dotdot-dir": Hostile(lambda s: [dir_("../escape_dir/", mode=0o777)]),
    "dotdot-in-pax-path": Hostile(
        lambda s: [reg("innocent", b"pwned", pax={"path": "../pax_escape"})]),
    # absolute names are re-rooted, like Docker
    "absolute-path": Hostile(lambda s: [reg(s + "/abs_pwned", b"pwned")], raises=None,
                             check=_check_absolute),
    # planting a symlink, then going through it
    "symlink-then-file": Hostile(lambda s: [sym("evil", s), reg("evil/pwned", b"pwned")]),
    "symlink-then-dir": Hostile(lambda s: [sym("evil", s), dir_("evil/newdir/", mode=0o777)]),
    "symlink-then-overwrite-inner": Hostile(
        lambda s: [sym("evil", s), reg("evil/sub/inner", b"pwned")]),
    "symlink-to-slash-then-file": Hostile(
        lambda s: [sym("root", "/"), reg("root" + s + "/pwned", b"pwned")]),
    "symlink-relative-escape": Hostile(lambda s: [sym("evil", "../sentinel")]),
    "symlink-deep-relative-escape": Hostile(
        lambda s: [dir_("a/"), sym("a/evil", "../../sentinel/secret")]),
    # writing onto a symlink replaces it, never writes through it
    "symlink-then-overwrite-file": Hostile(
        lambda s: [sym("evil", s + "/secret"), reg("evil", b"pwned")], raises=None,
        check=_is_regular("evil", b"pwned")),
    "symlink-then-dir-over-it": Hostile(
        lambda s: [sym("evil", s), dir_("evil/", mode=0o777, uid=4242)], raises=None,
        check=_check_dir_not_symlink),
    "symlink-then-fifo-over-it": Hostile(
        lambda s: [sym("evil", s + "/secret"), fifo("evil", mode=0o777)], raises=None,
        check=_check_fifo),
    "existing-symlink-overwritten": Hostile(
        lambda s: [reg("etc/passwd", b"pwned", mode=0o777, uid=4242)], raises=None,
        overlay=False, setup=_pre_symlink("etc/passwd", "secret"),
        check=_is_regular("etc/passwd", b"pwned")),
    "existing-symlink-parent": Hostile(
        lambda s: [reg("lib/pwned", b"pwned")], overlay=False, setup=_pre_symlink("lib")),
    # hard links
    "hardlink-dotdot": Hostile(
        lambda s: [hard("h", "../sentinel/secret"), reg("h", b"pwned")]),
    "hardlink-via-symlink": Hostile(
        lambda s: [sym("evil", s), hard("h", "evil/secret"), reg("h", b"pwned")]),
    "hardlink-absolute-rerooted": Hostile(
        lambda s: [reg(s + "/secret", b"copy inside"), hard("h", s + "/secret")],
        raises=None, check=_check_hardlink_inside),
    "hardlink-absolute-missing": Hostile(
        lambda s: [hard("h", s + "/secret"), reg("h", b"pwned")], raises=ArchiveError),
    "hardlink-to-symlink-then-write": Hostile(
        lambda s: [sym("s", s + "/secret"), hard("h", "s"), reg("h", b"pwned", mode=0o777)],
        raises=None, check=_is_regular("h", b"pwned")),
    "hardlink-to-root": Hostile(lambda s: [hard("h", "/")]),
    # whiteouts
    "whiteout-empty-name": Hostile(lambda s: [reg(".wh.", b"")]),
    "whiteout-dot": Hostile(lambda s: [dir_("a/"), reg("a/.wh..", b"")], overlay=False),
    "whiteout-dotdot": Hostile(lambda s: [dir_("a/"), reg("a/.wh...", b"")], overlay=False),
    "whiteout-parent-escape": Hostile(lambda s: [reg("../.wh.sentinel", b"")], overlay=False),
    "whiteout-via-planted-symlink": Hostile(
        lambda s: [sym("evil", s), reg("evil/.wh.secret", b"")]),
    "whiteout-via-existing-symlink": Hostile(
        lambda s: [reg("lib/.wh.secret", b"")], overlay=False, setup=_pre_symlink("lib")),
    "opaque-via-existing-symlink": Hostile(
        lambda s: [reg("lib/.wh..wh..opq", b"")], overlay=False, setup=_pre_symlink("lib")),
    "opaque-via-planted-symlink-overlay": Hostile(
        lambda s: [sym("evil", s), reg("evil/.wh..wh..opq", b"")]),
    "whiteout-of-symlink-removes-link-only": Hostile(
        lambda s: [reg(".wh.lib", b"")], raises=None, overlay=False,
        setup=_pre_symlink("lib"), check=_check_gone("lib")),
    # devices: allowed, but only inside
    "device-dotdot": Hostile(lambda s: [chr_("../null", 1, 3, mode=0o666)]),
    "device-via-symlink": Hostile(lambda s: [sym("evil", s), blk("evil/sda", 8, 0)]),
    # the root itself
    "root-replaced-by-symlink": Hostile(lambda s: [sym(".", "/")]),
    "root-replaced-by-file": Hostile(lambda s: [reg("/", b"pwned")]),
    # overlayfs' own xattrs may not be smuggled in PAX headers
    "trusted-overlay-xattr-dropped": Hostile(
        lambda s: [dir_("d/", pax={"SCHILY.xattr.trusted.overlay.redirect": s,
                                   "SCHILY.xattr.trusted.overlay.opaque": "y"})],
        raises=None, check=_check_no_overlay_xattrs),
}


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_layer(tmp_path, case: Hostile):
    top = str(tmp_path)
    dest = os.path.join(top, "dest")
    sentinel = os.path.join(top, "sentinel")
    os.makedirs(os.path.join(sentinel, "sub"))
    os.mkdir(dest)
    with open(os.path.join(sentinel, "secret"), "wb") as f:
        f.write(b"secret")
    with open(os.path.join(sentinel, "sub", "inner"), "wb") as f:
        f.write(b"inner")
    os.setxattr(sentinel, "user.marker", b"sentinel")
    if case.setup:
        case.setup(dest, sentinel)
    layer = os.path.join(top, "layer.tar")
    with open(layer, "wb") as f:
        f.write(build_tar(*case.members(sentinel)))

    before = snapshot_outside(top, dest)
    if case.raises is None:
        apply_layer(layer, dest, overlay=case.overlay)
        case.check(dest, sentinel)
    else:
        with pytest.raises(case.raises) as exc:
            apply_layer(layer, dest, overlay=case.overlay)
        assert "'" in str(exc.value)  # the message quotes the entry
    assert snapshot_outside(top, dest) == before


def test_unsafe_error_names_the_entry(tmp_path):
    with pytest.raises(UnsafeArchiveError, match=r"a/\.\./\.\./x"):
        apply_layer(io.BytesIO(build_tar(reg("a/../../x"))), tmp_path / "d")
    assert issubclass(UnsafeArchiveError, ValueError)


# ---------------------------------------------------------------------------
# A real overlay mount
# ---------------------------------------------------------------------------

def test_whiteouts_work_in_a_real_overlay_mount(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    work, merged = tmp_path / "work", tmp_path / "merged"
    for d in (lower / "d" / "sub", work, merged):
        os.makedirs(d)
    for f in ("foo", "keep", "d/old", "d/sub/x"):
        (lower / f).write_bytes(b"lower")
    apply_layer(io.BytesIO(build_tar(*WHITEOUT_LAYER[:5])), upper)

    libc = ctypes.CDLL(None, use_errno=True)
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if libc.mount(b"overlay", str(merged).encode(), b"overlay", 0, opts) != 0:
        pytest.skip(f"cannot mount overlay: {os.strerror(ctypes.get_errno())}")
    try:
        assert sorted(os.listdir(merged)) == ["d", "keep"]  # foo is whited out
        assert not os.path.lexists(merged / "foo")
        assert sorted(os.listdir(merged / "d")) == ["new"]  # opaque: old and sub hidden
        assert (merged / "keep").read_bytes() == b"kept"
    finally:
        libc.umount2(str(merged).encode(), 2)  # MNT_DETACH
