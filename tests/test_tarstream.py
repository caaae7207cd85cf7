"""storage/tarstream.py: the tar header reader, checked against the standard library's tarfile
(the writer of every archive here, in its three formats) and against Go's rules for broken
archives. Pure: no root, no file system but BytesIO."""
from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidocker.storage import tarstream
from minidocker.storage.tarstream import BLOCK, Reader, TarError, parse_number, parse_pax

FORMATS = {"ustar": tarfile.USTAR_FORMAT, "gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT}


def build(entries, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: (name, type, data or linkname, extra TarInfo attributes)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, typ, payload, extra in entries:
            info = tarfile.TarInfo(name)
            info.type = typ
            for k, v in extra.items():
                setattr(info, k, v)
            if typ == tarfile.REGTYPE:
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            else:
                if typ in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                    info.linkname = payload
                tf.addfile(info)
    return buf.getvalue()


def read_all(data: bytes, seek: bool = False):
    """[(entry, its data)] as the reader gives them."""
    f = io.BytesIO(data)
    r = Reader(f, size=len(data)) if seek else Reader(f)
    out = []
    for e in r:
        out.append((e, b"" if seek else r.read(1 << 30)))
    return out


def same_as_tarfile(data: bytes) -> list[tarstream.Entry]:
    ours = read_all(data)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        theirs = [(m, tf.extractfile(m).read() if m.isreg() else b"") for m in tf.getmembers()]
    assert len(ours) == len(theirs)
    for (e, d), (m, md) in zip(ours, theirs):
        assert (e.name.rstrip("/"), e.linkname, e.mode, e.uid, e.gid) == (m.name, m.linkname, m.mode, m.uid, m.gid)
        assert (e.isreg(), e.isdir(), e.issym(), e.islnk(), e.ischr(), e.isblk(), e.isfifo()) == \
               (m.isreg(), m.isdir(), m.issym(), m.islnk(), m.ischr(), m.isblk(), m.isfifo())
        assert (e.size, e.offset, e.offset_data, e.mtime_ns // 10**9) == (m.size, m.offset, m.offset_data, int(m.mtime))
        if e.ischr() or e.isblk():
            assert (e.devmajor, e.devminor) == (m.devmajor, m.devminor)
        assert d == md
    # seeking over the data finds the same headers
    assert [e.offset for e, _ in read_all(data, seek=True)] == [e.offset for e, _ in ours]
    return [e for e, _ in ours]


LONG = "d" * 60 + "/" + "e" * 70 + "/" + "f" * 90          # over 100 bytes: a prefix or an extension
VERY_LONG = "/".join(["x" * 50] * 8)                         # over 255: not even ustar's prefix holds it


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_entry_type_reads_as_tarfile_reads_it(fmt):
    entries = [
        ("etc/", tarfile.DIRTYPE, b"", {"mode": 0o755}),
        ("etc/passwd", tarfile.REGTYPE, b"root:x:0:0\n" * 50, {"mode": 0o644, "mtime": 1_700_000_000}),
        ("bin/su", tarfile.REGTYPE, b"\x7fELF", {"mode": 0o4755, "uid": 1000, "gid": 1000}),
        ("empty", tarfile.REGTYPE, b"", {}),
        ("lib/link", tarfile.SYMTYPE, "../etc/passwd", {}),
        ("hard", tarfile.LNKTYPE, "etc/passwd", {}),
        ("dev/null", tarfile.CHRTYPE, b"", {"devmajor": 1, "devminor": 3}),
        ("dev/sda", tarfile.BLKTYPE, b"", {"devmajor": 8, "devminor": 0}),
        ("run/fifo", tarfile.FIFOTYPE, b"", {}),
        ("block", tarfile.REGTYPE, b"z" * BLOCK, {}),                  # exactly one block: no padding
        (LONG, tarfile.REGTYPE, b"long", {}),
    ]
    if fmt != "ustar":
        entries += [(VERY_LONG, tarfile.REGTYPE, b"very long", {}),
                    ("s/" + "t" * 120, tarfile.SYMTYPE, "/" + "u" * 150, {}),   # a long link target
                    ("big-ids", tarfile.REGTYPE, b"", {"uid": 3_000_000, "gid": 2**31})]  # past 7 octal digits
    got = same_as_tarfile(build(entries, FORMATS[fmt]))
    by_name = {e.name.rstrip("/"): e for e in got}
    assert by_name[LONG].size == 4
    if fmt == "gnu":     # GNU writes ids too big for octal in base-256
        assert (by_name["big-ids"].uid, by_name["big-ids"].gid) == (3_000_000, 2**31)


def test_pax_records_reach_the_entry():
    data = build([("f", tarfile.REGTYPE, b"x", {"pax_headers": {
        "SCHILY.xattr.user.k": "v\u00e9", "mtime": "1700000000.123456789", "atime": "1700000001.5"}})])
    (e, _), = read_all(data)
    assert e.pax_headers["SCHILY.xattr.user.k"] == "v\u00e9"
    assert e.mtime_ns == 1_700_000_000_123_456_789               # exactly: no float on the way
    assert e.atime_ns == 1_700_000_001_500_000_000


def test_global_pax_records_apply_to_what_follows_and_empty_values_undo_them():
    rec = b"30 SCHILY.xattr.user.g=global\n"                       # "<length> key=value\n"
    assert len(rec) == 30
    ghdr = tarfile.TarInfo("pax_global")
    ghdr.type, ghdr.size = tarfile.XGLTYPE, len(rec)
    blob = ghdr.tobuf(tarfile.USTAR_FORMAT) + rec + b"\0" * (BLOCK - len(rec))
    rest = build([("a", tarfile.REGTYPE, b"a", {}),
                  ("b", tarfile.REGTYPE, b"b", {"pax_headers": {"SCHILY.xattr.user.g": ""}})])
    entries = [e for e, _ in read_all(blob + rest)]
    assert entries[0].pax_headers.get("SCHILY.xattr.user.g") == "global"
    assert "SCHILY.xattr.user.g" not in entries[1].pax_headers


@pytest.mark.parametrize("field,value", [
    (b"0000644\0", 0o644), (b"     17 ", 0o17), (b"\0" * 8, 0), (b"0000000000\0 ", 0),
    (b"\0\0" + b"0644" + b"\0\0", 0o644), (b"064\0" + b"7   ", 0o64),  # as Go: NULs around, a NUL ends
    (b"\x80" + (12345).to_bytes(7, "big"), 12345),                 # base-256, positive
    (b"\xff" * 8, -1), (b"\xff" * 7 + b"\xfe", -2),                # base-256, negative
])
def test_numbers(field, value):
    assert parse_number(field) == value
    if value >= 0 and len(field) == 8:  # the header's fast path reads a mode field the same way
        block = bytearray(tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT))
        block[100:108] = field
        block[148:156] = b" " * 8
        block[148:156] = b"%06o\0 " % sum(block)
        assert tarstream.parse_header(bytes(block)).mode == value


@pytest.mark.parametrize("data", [b"", b"3 a\n", b"10 k=v\n", b"9 k=v\nxx", b"7 =v\n", b"x k=v\n", b"6 kv\n"])
def test_bad_pax_records_are_refused(data):
    if data == b"":
        assert parse_pax(data) == {}
        return
    with pytest.raises(TarError, match="invalid PAX record"):
        parse_pax(data)


def test_pax_records_parse():
    assert parse_pax(b"10 path=a\n11 uid=123\n") == {"path": "a", "uid": "123"}
    assert parse_pax(b"11 k=a=b\nc\n") == {"k": "a=b\nc"}          # a value may hold = and newlines


THREE = build([("a", tarfile.REGTYPE, b"a" * 3000, {}), ("b", tarfile.REGTYPE, b"b" * 10, {})],
              tarfile.USTAR_FORMAT)
END = 512 + 3072 + 512 + 512         # where the end-of-archive blocks start


@pytest.mark.parametrize("tail", [b"", b"\0" * 512, b"\0" * 1024, b"\0" * 1024 + b"junk"])
@pytest.mark.parametrize("seek", [False, True])
def test_the_ends_go_accepts(tail, seek):
    assert [e.name for e, _ in read_all(THREE[:END] + tail, seek)] == ["a", "b"]


@pytest.mark.parametrize("data,error", [
    (THREE[:2000], "unexpected end of data"),                      # in a file's data
    (THREE[:512 + 3072 + 300], "unexpected EOF"),                  # in a header
    (THREE[:END] + b"\x01" * 512, "invalid tar header"),           # garbage where a header goes
    (THREE[:END] + b"\0" * 512 + b"junk" * 128, "invalid tar header"),
    (THREE[:END] + b"\0" * 700, "unexpected EOF"),                 # a zero block, then half of one
    (b"", "empty file"),
])
@pytest.mark.parametrize("seek", [False, True])
def test_broken_archives_are_refused(data, error, seek):
    with pytest.raises(TarError, match=error):
        read_all(data, seek)


def test_a_bad_checksum_is_an_invalid_header():
    bad = bytearray(THREE)
    bad[10] ^= 1                                                    # the name changes, the checksum does not
    with pytest.raises(TarError, match="invalid tar header"):
        read_all(bytes(bad))


def _header(name: str, typ: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = typ, size
    return info.tobuf(tarfile.GNU_FORMAT)    # (GNU: a size too big for octal is written in base-256)


def test_a_huge_extended_header_is_refused_before_it_is_read():
    data = _header("x", tarfile.XHDTYPE, 100 * 2**30)              # announces 100 GiB of records
    with pytest.raises(TarError, match="too large"):
        read_all(data)


def test_gnu_sparse_files_are_refused():
    data = _header("sparse", tarfile.GNUTYPE_SPARSE, 0) + b"\0" * 1024
    with pytest.raises(TarError, match="sparse"):
        read_all(data)
    data = build([("f", tarfile.REGTYPE, b"", {"pax_headers": {"GNU.sparse.major": "1"}})])
    with pytest.raises(TarError, match="sparse"):
        read_all(data)


def test_an_extension_without_its_entry_is_truncated():
    data = build([("f" * 200, tarfile.REGTYPE, b"x", {})], tarfile.GNU_FORMAT)
    long_name_only = data[:3 * BLOCK - BLOCK]                      # the 'L' header and its data, then the end
    with pytest.raises(TarError, match="unexpected EOF"):
        read_all(long_name_only + b"\0" * 1024)


def test_a_negative_size_is_refused():
    info = tarfile.TarInfo("neg")
    block = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    block[124:136] = b"\xff" * 12                                   # base-256 -1
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    with pytest.raises(TarError, match="negative"):
        read_all(bytes(block))


def test_header_only_types_carry_no_data_whatever_their_size():
    """Go (and tarfile) skip no data after a link, device, directory or fifo header, even if its
    size field says otherwise: the next header follows at once."""
    link = bytearray(_header("l", tarfile.SYMTYPE, 0))
    link[124:136] = b"%011o\0" % 1024
    link[148:156] = b" " * 8
    link[148:155] = b"%06o\0" % sum(link)
    data = bytes(link) + build([("after", tarfile.REGTYPE, b"x", {})], tarfile.USTAR_FORMAT)
    assert [e.name for e, _ in read_all(data)] == ["l", "after"]


names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="/\\"),
                min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(names, min_size=1, max_size=9).map("/".join),
                          st.binary(max_size=1500), st.integers(0, 0o7777), st.integers(0, 2**21 - 1)),
                min_size=1, max_size=12),
       st.sampled_from(list(FORMATS)))
def test_random_archives_read_as_tarfile_reads_them(files, fmt):
    entries = [(name, tarfile.REGTYPE, data, {"mode": mode, "uid": uid}) for name, data, mode, uid in files]
    try:
        data = build(entries, FORMATS[fmt])
    except ValueError:       # ustar cannot store some long names: not the reader's problem
        return
    same_as_tarfile(data)


@pytest.mark.parametrize("name,link", [("a", ""), ("\u00ff" * 50, "\u00fe" * 50), ("x" * 100, "y" * 100)])
def test_checksums_dense_and_sparse_headers(name, link):
    """Most headers are mostly zeros (the fast path); one with over 256 non-zero bytes (here long
    names, user and group names) takes the exact sum. A signed sum (old tars) is accepted too."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = (tarfile.SYMTYPE, link) if link else (tarfile.REGTYPE, "")
    info.uname, info.gname = "u" * 31, "g" * 31
    block = bytearray(info.tobuf(tarfile.USTAR_FORMAT, encoding="utf-8"))
    assert tarstream.checksum_ok(bytes(block))
    block[148:156] = b" " * 8
    signed = sum(block) - 256 * sum(1 for b in block if b & 0x80)
    block[148:156] = b"%06o\0 " % signed
    assert tarstream.checksum_ok(bytes(block))
    block[200] ^= 0x10                                             # one bit off: refused on either path
    assert not tarstream.checksum_ok(bytes(block))
