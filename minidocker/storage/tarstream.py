"""tarstream: reading a tar archive as a stream, one 512-byte header at a time.

An image layer is a tar (notebooks 05 and 08 open some). A tar is a list of entries, each a
512-byte header block followed by the entry's data, padded to a whole block; a zero block
ends it. The header (POSIX ustar) is fixed-width ASCII:

    offset  size  field                     offset  size  field
       0    100   name                        257     6   magic: "ustar\\0" (POSIX), "ustar " (GNU)
     100      8   mode      (octal)           263     2   version
     108      8   uid       (octal)           265    32   uname
     116      8   gid       (octal)           297    32   gname
     124     12   size      (octal)           329     8   devmajor
     136     12   mtime     (octal)           337     8   devminor
     148      8   checksum  (octal)           345   155   prefix: the name's leading directories
     156      1   typeflag: 0 file, 1 hard link, 2 symlink, 3 char dev, 4 block dev, 5 dir, 6 fifo
     157    100   linkname

Three ways around ustar's limits, all of them met in real layers:
  * GNU 'L' / 'K' entries: their data is the *next* entry's long name / link target;
  * PAX 'x' entries: "len key=value\\n" records for the next entry (path, linkpath, size, uid,
    gid, mtime and atime with nanoseconds, SCHILY.xattr.<name> for extended attributes);
    'g' entries hold records for every entry after them;
  * numbers too big for their octal field: base-256, flagged by the first byte's top bit.

Why not the standard library's `tarfile`? It does all this and much more, and `apply_layer`
used it; but its header parsing, in pure Python behind several layers of file objects, took
as long as GNU tar's whole extraction of the same layer (issue 23). This reader parses what a
layer needs straight from one buffer, and skips data by seeking when the tar is a file. Go's
archive/tar, which Docker uses, is the reference for the edge cases: what ends an archive
(nothing, one zero block, or two then anything), which headers are invalid, which types carry
no data. GNU sparse files are refused: Docker never writes them into a layer.

Pure: no file system access. `Reader(stream)` needs only the stream's `read` (and `seek`,
when a `size` is given).
"""
from __future__ import annotations

import struct
from zlib import adler32

BLOCK = 512
_ZERO = bytes(BLOCK)
_BUFSIZE = 1 << 16
# Extended headers are read into memory: bounded, as Go bounds them (a hostile tar could
# announce a 100 GB 'x' entry).
MAX_META = 1 << 20

REGULAR, HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO = b"0", b"1", b"2", b"3", b"4", b"5", b"6"
_REGULAR_TYPES = (b"0", b"\0", b"7")          # "7" (contiguous) is read as a regular file
_HEADER_ONLY = (HARDLINK, SYMLINK, CHAR, BLOCKDEV, DIRECTORY, FIFO)  # their size carries no data
_META_TYPES = (b"x", b"g", b"L", b"K")
FILE_TYPES = frozenset((*_REGULAR_TYPES, *_HEADER_ONLY))   # the types that make something on disk


class TarError(ValueError):
    """The stream is not a readable tar: the message says what, as Go's archive/tar would."""


class Entry:
    """One entry's header, extended headers applied (the fields `tarfile.TarInfo` has, by the same
    names, so code can use either). `offset` is where the entry starts (at its first extension
    header, if it has any), `offset_data` where its data does."""

    __slots__ = ("name", "linkname", "type", "mode", "uid", "gid", "size", "mtime_ns", "atime_ns",
                 "devmajor", "devminor", "pax_headers", "offset", "offset_data")

    def isreg(self) -> bool:
        return self.type in _REGULAR_TYPES

    def isdir(self) -> bool:
        return self.type == DIRECTORY

    def issym(self) -> bool:
        return self.type == SYMLINK

    def islnk(self) -> bool:
        return self.type == HARDLINK

    def ischr(self) -> bool:
        return self.type == CHAR

    def isblk(self) -> bool:
        return self.type == BLOCKDEV

    def isfifo(self) -> bool:
        return self.type == FIFO

    @property
    def mtime(self) -> float:
        return self.mtime_ns / 1e9

    def __repr__(self) -> str:
        return f"<Entry {self.name!r} type={self.type!r} size={self.size}>"


# ---------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------

def parse_number(field: bytes) -> int:
    """A numeric header field: octal text, or base-256 (two's complement, big-endian) when the
    first byte's top bit is set (GNU tar and Go write large uids, sizes and times that way)."""
    if field and field[0] & 0x80:
        n = int.from_bytes(field, "big") & ((1 << (8 * len(field) - 1)) - 1)   # without the flag bit
        if field[0] & 0x40:                    # negative (0xff...)
            n -= 1 << (8 * len(field) - 1)
        return n
    # (as Go: NULs and spaces around the digits go, and a NUL ends them)
    text = field.strip(b" \0").split(b"\0", 1)[0]
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarError(f"archive/tar: invalid tar header (a number field holds {text!r})") from None


def _text(field: bytes) -> str:
    # Names are bytes to the kernel: surrogateescape gives the same bytes back to os.* calls.
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def checksum_ok(block: bytes, want: int | None = None) -> bool:
    """The checksum is the sum of the header's bytes, its own field counted as 8 spaces. Old
    tars summed signed bytes: both are accepted, as Go and tarfile do. (`want`: the checksum
    field, if the caller has read it already.)"""
    if want is None:
        try:
            want = _num(block[148:156])
        except TarError:
            return False
    # What the whole block, as it is, must sum to.
    expected = want - 8 * 32 + sum(block[148:156])
    # sum() over 512 bytes was a third of the time spent per header, so the common case asks
    # zlib instead: adler32's low half is 1 + (the byte sum mod 65521). That is exact when at
    # least half the bytes are zero (true of nearly every header): the sum is then at most
    # 256 * 255 < 65521.
    if block.count(0) >= 256:
        unsigned = (adler32(block) & 0xFFFF) - 1
    else:
        unsigned = sum(block)
    if unsigned == expected:
        return True
    high = sum(1 for b in block[:148] + block[156:] if b & 0x80)
    return sum(block) - 256 * high == expected


def parse_pax(data: bytes) -> dict[str, str]:
    """PAX records, "<length> <key>=<value>\\n" each (the length counts the whole record)."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 20)
        try:
            n = int(data[pos:space]) if space > pos else 0
        except ValueError:
            n = 0
        end = pos + n
        if n < 5 or end > len(data) or data[end - 1:end] != b"\n":
            raise TarError("archive/tar: invalid PAX record")
        key, eq, value = data[space + 1:end - 1].partition(b"=")
        if not eq or not key or b"\0" in key:
            raise TarError("archive/tar: invalid PAX record")
        try:
            k = key.decode("utf-8")
        except UnicodeDecodeError:
            raise TarError("archive/tar: invalid PAX record") from None
        out[k] = value.decode("utf-8", "surrogateescape")
        pos = end
    return out


def _pax_ns(value: str) -> int:
    """A PAX time ("1700000000.123456789", maybe negative) in nanoseconds, exactly."""
    sign = -1 if value.startswith("-") else 1
    whole, _, frac = value.lstrip("-").partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise TarError(f"archive/tar: invalid PAX time {value!r}")
    return sign * (int(whole) * 1_000_000_000 + int((frac + "000000000")[:9]))


def _pax_int(headers: dict[str, str], key: str, default: int) -> int:
    value = headers.get(key)
    if value is None:
        return default
    if not value.isdigit():
        raise TarError(f"archive/tar: invalid PAX {key} {value!r}")
    return int(value)


# name, mode, uid, gid, size, mtime, checksum, type, linkname, magic+version, uname, gname,
# devmajor, devminor, prefix (and 12 unused bytes): the table above, as one struct.
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s8s32s32s8s8s155s12x")


def _num(field: bytes) -> int:
    """parse_number's common case inline (octal digits ended by a NUL or a space) and the
    rest through it; ~20 k headers in a layer make this the reader's hottest line."""
    try:
        return int(field.rstrip(b"\0 ") or b"0", 8)
    except ValueError:
        return parse_number(field)


_NUL_TO_SPACE = bytes.maketrans(b"\0", b" ")


def parse_header(block: bytes) -> Entry:
    """The fields of one 512-byte header block (no extended headers applied yet)."""
    (name, mode, uid, gid, size, mtime, _, typ, linkname, magic,
     _, _, major, minor, prefix) = _HEADER.unpack(block)
    # The six numbers, in the common case: octal digits with NULs or spaces around them. With
    # the NULs made spaces (one C call for the block), int() reads each field as it is, and
    # ~20 k headers in a layer make this the reader's hottest line. The rest (empty fields,
    # base-256) goes through _num.
    t = block.translate(_NUL_TO_SPACE)
    try:
        numbers = (int(t[100:108], 8), int(t[108:116], 8), int(t[116:124], 8), int(t[124:136], 8),
                   int(t[136:148], 8), int(t[148:156], 8))
    except ValueError:
        numbers = None
    if not checksum_ok(block, numbers[5] if numbers else None):
        raise TarError("archive/tar: invalid tar header")
    if numbers is None:
        numbers = (_num(mode), _num(uid), _num(gid), _num(size), _num(mtime))
    e = Entry()
    e.type = typ
    e.name = _text(name)
    e.linkname = _text(linkname) if linkname[0] else ""
    e.mode, e.uid, e.gid, e.size, mtime_s = numbers[:5]
    e.mtime_ns = mtime_s * 1_000_000_000
    e.atime_ns = None
    e.devmajor = e.devminor = 0
    if typ == CHAR or typ == BLOCKDEV:
        e.devmajor, e.devminor = _num(major), _num(minor)
    # POSIX ustar keeps the leading directories of a long name in `prefix`; GNU's format uses
    # that space for other things, so only "ustar\0" + "00" has one.
    if prefix[0] and magic == b"ustar\x0000":
        e.name = _text(prefix) + "/" + e.name
    if min(e.mode, e.uid, e.gid, e.size) < 0:   # (int() takes a sign; a header has none)
        raise TarError("archive/tar: invalid tar header (a negative number)")
    return e


def _apply_pax(e: Entry, headers: dict[str, str]) -> None:
    if "path" in headers:
        e.name = headers["path"]
    if "linkpath" in headers:
        e.linkname = headers["linkpath"]
    e.size = _pax_int(headers, "size", e.size)
    e.uid = _pax_int(headers, "uid", e.uid)
    e.gid = _pax_int(headers, "gid", e.gid)
    if "mtime" in headers:
        e.mtime_ns = _pax_ns(headers["mtime"])
    if "atime" in headers:
        e.atime_ns = _pax_ns(headers["atime"])
    if any(k.startswith("GNU.sparse.") for k in headers):
        raise TarError(f"{e.name!r}: GNU sparse files are not supported in a layer")


def check_end(block: bytes, next_block) -> None:
    """What follows the last entry, as Go's archive/tar (and so Docker) accepts it: nothing, a
    zero block and then nothing, or two zero blocks (then anything at all). `block` is the first
    512 bytes after the last entry (fewer at the stream's end), `next_block()` reads the next.
    (Python's tarfile ends an archive quietly at the first block it cannot read: a truncated
    header, garbage, a lone zero block.)"""
    for _ in range(2):
        if not block:
            return                              # the stream ends right there: tolerated
        if len(block) < BLOCK:
            raise TarError("unexpected EOF (the archive is truncated)")
        if block != _ZERO:
            raise TarError("archive/tar: invalid tar header")
        block = next_block()


# ---------------------------------------------------------------------------
# The reader
# ---------------------------------------------------------------------------

class Reader:
    """for entry in Reader(stream): ... -- the entries of a tar, in order.

    While an entry is current, `read(n)` gives its data; whatever is left unread is skipped
    when the next entry is asked for. After the last entry, `end` is the offset of the block
    that ended the archive (or of the end of the stream), and what follows it has been checked.
    With `size` (the stream is a seekable file of that many bytes), data is skipped by seeking.
    Raises TarError for a stream that is not a complete, valid tar."""

    def __init__(self, stream, size: int | None = None):
        self._read = stream.read
        self._seek = stream.seek if size is not None else None
        self._size = size
        self._buf = b""
        self._pos = 0            # the next unread byte in _buf
        self._base = 0           # the stream offset of _buf[0]
        self._left = 0           # the current entry's data not read yet
        self._pad = 0            # and the padding after it
        self._global: dict[str, str] = {}
        self.end: int | None = None

    def tell(self) -> int:
        return self._base + self._pos

    def _take(self, n: int) -> bytes:
        """n bytes of the stream (fewer only at its end)."""
        pos = self._pos
        if pos + n <= len(self._buf):
            self._pos = pos + n
            return self._buf[pos:pos + n]
        parts = [self._buf[pos:]] if pos < len(self._buf) else []
        need = n - (len(parts[0]) if parts else 0)
        self._base += len(self._buf)
        self._buf, self._pos = b"", 0
        while need > 0:
            chunk = self._read(max(need, _BUFSIZE))
            if not chunk:
                break
            if len(chunk) > need:          # keep the rest for the next calls
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                break
            parts.append(chunk)
            self._base += len(chunk)
            need -= len(chunk)
        # (a big file's data usually arrives as one chunk: returned as it is, not copied again)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _skip(self, n: int) -> None:
        if self._pos + n <= len(self._buf):
            self._pos += n
            return
        if self._seek is not None:
            target = self.tell() + n
            if target > self._size:
                raise TarError("unexpected end of data")
            self._seek(target)
            self._base, self._buf, self._pos = target, b"", 0
            return
        while n > 0:
            got = len(self._take(min(n, 1 << 20)))
            if not got:
                raise TarError("unexpected end of data")
            n -= got

    def read(self, n: int) -> bytes:
        """Up to n bytes of the current entry's data (b"" once it is all read)."""
        n = min(n, self._left)
        if n <= 0:
            return b""
        data = self._take(n)
        if len(data) < n:
            raise TarError("unexpected end of data")
        self._left -= n
        return data

    def __iter__(self):
        return self

    def __next__(self) -> Entry:
        if self.end is not None:
            raise StopIteration
        self._skip(self._left + self._pad)
        self._left = self._pad = 0
        pax: dict[str, str] = {}
        long_name = long_link = None
        pending = False                       # an extended header waits for its entry
        first = self.tell()                   # (an entry starts at its first extension header)
        while True:
            start = self.tell()
            block = self._take(BLOCK)
            if len(block) < BLOCK or block == _ZERO:
                if pending or block and len(block) < BLOCK:
                    raise TarError("unexpected EOF")
                if not block and start == 0:
                    raise TarError("empty file")
                self.end = start
                check_end(block, lambda: self._take(BLOCK))
                raise StopIteration
            e = parse_header(block)
            if e.type in _META_TYPES:
                if e.size > MAX_META:
                    raise TarError(f"archive/tar: a {e.type.decode()!r} header of {e.size} bytes is too large")
                data = self._take(e.size)
                if len(data) < e.size:
                    raise TarError("unexpected end of data")
                self._skip(-e.size % BLOCK)
                if e.type == b"x":
                    pax.update(parse_pax(data))
                elif e.type == b"g":
                    self._global.update(parse_pax(data))
                elif e.type == b"L":
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                pending = True
                continue
            if e.type == b"S":
                raise TarError(f"{e.name!r}: GNU sparse files are not supported in a layer")
            headers = {**self._global, **pax} if self._global else pax
            if headers:
                # An empty PAX value removes the key (it can undo a global record).
                headers = {k: v for k, v in headers.items() if v != ""}
                _apply_pax(e, headers)
            e.pax_headers = headers
            if long_name is not None:         # Go lets a GNU long name win over PAX's path
                e.name = long_name
            if long_link is not None:
                e.linkname = long_link
            if e.type == b"\0" and e.name.endswith("/"):
                e.type = DIRECTORY            # the old V7 way to say "directory"
            e.offset = first
            e.offset_data = self.tell()
            data_size = 0 if e.type in _HEADER_ONLY else e.size
            self._left, self._pad = data_size, -data_size % BLOCK
            return e
