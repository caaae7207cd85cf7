"""archive: Docker/OCI layer tarballs <-> directories of the overlay2 store.

An image layer is a tar file (often gzip-compressed) holding the files that the layer
adds or changes. Deletions cannot be written as "a file that is not there", so the
OCI image spec (inherited from Docker's old AUFS driver) uses *whiteout* entries:

    dir/.wh.name        "name" existed in a lower layer and is deleted here
    dir/.wh..wh..opq    "dir" is opaque: hide everything lower layers had in it

overlayfs has its own way to say the same things inside an upper (diff/) directory:

    dir/name            a character device 0/0 means "deleted"
    dir                 the xattr trusted.overlay.opaque=y means "opaque"

This module translates between the two (moby/go-archive does the same in Go):

    apply_layer(tar, diff_dir)                 tar entries -> files, whiteouts -> overlay form
    apply_layer(tar, rootfs, overlay=False)    "naive" mode: whiteouts delete for real
                                               (used to flatten an image, e.g. for export)
    export_dir(diff_dir, out)                  files -> tar, overlay form -> whiteout entries
    export_layer_with_digest(diff_dir, path)   the same, plus the layer's DiffID

Safety first. A layer tar comes from the network: every entry is hostile until proven
otherwise. Nothing an entry says may create, change or delete anything outside the
destination directory. The rules used below:

  * names are cleaned lexically: a leading "/" is dropped (like Docker), and a ".." that
    would climb above the root is refused;
  * we never follow a symlink while going down to an entry's parent directory: every
    directory is opened relative to its parent with O_NOFOLLOW, and all file operations
    use those directory file descriptors (the `dir_fd=` arguments of `os`), so a symlink
    planted by an earlier entry (`evil -> /etc`, then `evil/passwd`) is refused;
  * an entry that lands on an existing non-directory first removes it, then creates its
    file with O_CREAT|O_EXCL|O_NOFOLLOW: we never write *through* a symlink or hard link.

Docker additionally runs the whole extraction in a chroot; we do not need one because no
path is ever resolved by the kernel starting anywhere but our own directory fds.
"""
from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import lzma
import os
import stat
import tarfile
import zlib

from ..core.overlay2 import is_opaque, is_whiteout, opaque_xattr
from ..core.userns import running_in_user_namespace
from ..errors import MinidockerError
from . import tarstream

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."      # AUFS bookkeeping (.wh..wh.plnk, ...): skipped
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_XATTR_PREFIX = ("trusted.overlay.", "user.overlay.")  # overlayfs' own (user.*: userxattr)
PAX_XATTR_PREFIX = "SCHILY.xattr."      # how GNU tar, Go and Docker store xattrs in PAX headers

# Open a directory, refusing symlinks: the building block of every path walk below.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20


class ArchiveError(MinidockerError, ValueError):
    """A layer we cannot apply: corrupt tar, unsupported entry, missing decompressor.

    A MinidockerError (the CLI prints it as one line, `load`/`import` exit 1, `run` 125), and
    still a ValueError for callers that catch that."""

    exit_code = 1


class UnsafeArchiveError(ArchiveError):
    """A hostile entry: it would reach outside the destination directory.

    The message names the offending entry.
    """


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------

def _clean_path(name: str, entry: str) -> list[str]:
    """Split a tar path into clean components, relative to the layer root.

    "/etc/passwd" -> ["etc", "passwd"]   (a leading "/" means the layer root, as in Docker)
    "a/./b/../c"  -> ["a", "c"]
    "a/../../x"   -> UnsafeArchiveError  (climbs above the root)
    "." or "/"    -> []                  (the root itself)
    """
    if "\x00" in name:
        raise UnsafeArchiveError(f"{entry!r}: NUL byte in path")
    parts = name.split("/")
    if parts[0] == "." and len(parts) > 1:
        del parts[0]                # "./etc/passwd", as `tar -C dir -cf - .` writes names
    if "" not in parts and "." not in parts and ".." not in parts:
        return parts                # already clean: nearly every name (the loop below costs)
    parts = []
    for comp in name.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not parts:
                raise UnsafeArchiveError(f"{entry!r}: path escapes the layer root")
            parts.pop()
        else:
            parts.append(comp)
    return parts


def _symlink_escapes(link_parts: list[str], target: str) -> bool:
    """Does a *relative* symlink at `link_parts` point above the layer root?

    Docker refuses these ("invalid symlink"). Absolute targets are fine: inside a
    container they are resolved from the container's root, never the host's.
    """
    if target.startswith("/"):
        return False
    where = link_parts[:-1]  # a relative target starts from the link's directory
    for comp in target.split("/"):
        if comp in ("", "."):
            continue
        if comp == "..":
            if not where:
                return True
            where.pop()
        else:
            where.append(comp)
    return False


def _pax_xattrs(member: tarstream.Entry):
    """(name, value) of the xattrs stored in a member's PAX headers, sorted by name."""
    if not member.pax_headers:
        return
    for key, value in sorted(member.pax_headers.items()):
        if not key.startswith(PAX_XATTR_PREFIX):
            continue
        name = key[len(PAX_XATTR_PREFIX):]
        # trusted.overlay.* steers overlayfs itself (redirect, metacopy, ...): a layer may
        # only say "opaque", and only with a .wh..wh..opq marker.
        if not name or name.startswith(OVERLAY_XATTR_PREFIX):
            continue
        # PAX values are decoded with surrogateescape: this gets the bytes back.
        yield name, value.encode("utf-8", "surrogateescape")


def _times_ns(member: tarstream.Entry) -> tuple[int, int]:
    """(atime, mtime) in ns. Like Docker: atime is never before mtime."""
    mtime = member.mtime_ns
    atime = mtime if member.atime_ns is None else member.atime_ns
    return max(atime, mtime), mtime


# ---------------------------------------------------------------------------
# Safe filesystem steps, all relative to directory file descriptors
# ---------------------------------------------------------------------------

def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove_all(dir_fd: int, name: str) -> None:
    """`rm -rf dir/name`, never following a symlink (a symlink is removed, not its target)."""
    st = _lstat_at(dir_fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            _remove_all(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _set_xattr(target, name: str, value: bytes, **kw) -> None:
    try:
        os.setxattr(target, name, value, **kw)
    except OSError as e:
        # Like Docker: not every filesystem takes every namespace (user.* on a symlink,
        # security.* without the LSM...). Losing such an xattr is not fatal.
        if e.errno not in (errno.ENOTSUP, errno.EPERM):
            raise


# ---------------------------------------------------------------------------
# Applying a layer
# ---------------------------------------------------------------------------

_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"BZh", "bzip2"),
]


class _Prepend:
    """A read-only stream: `head` first, then the rest of `raw`.

    We read a few bytes to sniff the compression; this gives them back, so even a pipe
    (which cannot seek) can be a layer source.
    """

    def __init__(self, head: bytes, raw):
        self.head, self.raw = head, raw

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            data, self.head = self.head + self.raw.read(), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        if len(data) < n:
            data += self.raw.read(n - len(data))
        return data


def _seekable(f) -> bool:
    try:
        return f.seekable()
    except (AttributeError, ValueError, OSError):
        return False


def _decompressed(raw, stack: contextlib.ExitStack):
    """Wrap a binary stream so that reading it yields the plain tar bytes."""
    head = b""
    while len(head) < 6:  # a pipe may return fewer bytes than asked
        more = raw.read(6 - len(head))
        if not more:
            break
        head += more
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "tar")
    if kind == "tar" and _seekable(raw):
        raw.seek(-len(head), os.SEEK_CUR)       # a file: read it again from the start, directly
        return raw
    stream = _Prepend(head, raw)
    if kind == "gzip":
        return stack.enter_context(gzip.GzipFile(fileobj=stream, mode="rb"))
    if kind == "bzip2":
        return stack.enter_context(bz2.BZ2File(stream, mode="rb"))
    if kind == "xz":
        return stack.enter_context(lzma.LZMAFile(stream, mode="rb"))
    if kind == "zstd":
        try:
            import zstandard  # optional: not in the standard library
        except ImportError:
            raise ArchiveError("layer is zstd-compressed, but the 'zstandard' Python module "
                               "is not installed (pip install zstandard)") from None
        return stack.enter_context(zstandard.ZstdDecompressor().stream_reader(stream))
    return stream


# ---------------------------------------------------------------------------
# Is the tar complete? Python's tarfile ends an archive quietly at the first header it
# cannot read (a truncated header, garbage, a lone zero block); Go's archive/tar, which
# Docker uses, calls that "unexpected EOF" / "invalid tar header" (tarstream.check_end has the
# rule). Layers are read by tarstream, which checks it itself; image archives and build
# contexts, read with tarfile, go through TailReader and check_end.
# ---------------------------------------------------------------------------

_BLOCK = tarfile.BLOCKSIZE
TAR_ERRORS = (tarfile.TarError, tarstream.TarError, EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError)


class TailReader:
    """A read-through wrapper that counts the bytes and keeps the last ones, so that the
    blocks after the last tar entry can be looked at once tarfile has stopped."""

    KEEP = 1 << 16

    def __init__(self, raw):
        self.raw, self.pos, self.tail = raw, 0, bytearray()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.pos += len(data)
        self.tail += data
        if len(self.tail) > 2 * self.KEEP:
            del self.tail[:len(self.tail) - self.KEEP]
        return data

    def bytes_at(self, offset: int, n: int) -> bytes:
        """Bytes [offset, offset+n) of the stream (fewer at its end), reading on if needed."""
        while self.pos < offset + n:
            if not self.read(min(offset + n - self.pos, _CHUNK)):
                break
        start = self.pos - len(self.tail)
        if offset < start:
            raise ArchiveError("Error processing tar file: cannot check the end of the archive")
        return bytes(self.tail[offset - start:offset - start + n])


def check_end(bytes_at, offset: int) -> None:
    """Raise ArchiveError unless what follows the last entry (at `offset`) ends the archive
    the way Go's archive/tar accepts (tarstream.check_end). `bytes_at(offset, n)` reads the
    uncompressed tar."""
    try:
        tarstream.check_end(bytes_at(offset, _BLOCK), lambda: bytes_at(offset + _BLOCK, _BLOCK))
    except tarstream.TarError as e:
        raise ArchiveError(f"Error processing tar file: {e}") from None


def check_tar_file(path) -> None:
    """Is the (uncompressed) tar file at `path` a complete, readable archive? ArchiveError if
    not: a truncated entry or header, garbage between entries, or not a tar at all."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if not size:
            raise ArchiveError("Error processing tar file: the archive is empty")
        try:
            for _ in tarstream.Reader(f, size=size):   # headers only: the data is seeked over
                pass
        except tarstream.TarError as e:
            raise ArchiveError(f"Error processing tar file: {e}") from None


@contextlib.contextmanager
def open_layer_stream(path_or_fileobj):
    """with open_layer_stream(p) as f: f.read() gives the plain tar bytes, whatever the
    compression (used to compute a layer's DiffID, the digest of the *uncompressed* tar)."""
    with contextlib.ExitStack() as stack:
        if isinstance(path_or_fileobj, (str, bytes, os.PathLike)):
            raw = stack.enter_context(open(path_or_fileobj, "rb"))
        else:
            raw = path_or_fileobj
        yield _decompressed(raw, stack)


def apply_layer(tar_stream_or_path, dest_dir, *, overlay: bool = True) -> int:
    """Unpack a layer tar into `dest_dir`; return the bytes of file content written.

    `tar_stream_or_path` is a path or a readable binary file object (need not be
    seekable). gzip, bzip2 and xz are detected by their magic bytes; zstd too, if the
    `zstandard` module is importable. Anything else is read as a plain tar.

    overlay=True:  `dest_dir` is an overlay2 `diff/` dir: whiteouts become 0/0 character
                   devices and opaque markers the xattr trusted.overlay.opaque=y.
    overlay=False: "naive" mode on an ordinary directory holding the lower layers:
                   `.wh.x` removes x, `.wh..wh..opq` removes whatever in its directory
                   this layer did not itself unpack.

    Raises UnsafeArchiveError for an entry that would reach outside `dest_dir` (entries
    before it have been applied), ArchiveError for an unreadable or unsupported layer.
    """
    os.makedirs(dest_dir, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if isinstance(tar_stream_or_path, (str, bytes, os.PathLike)):
            raw = stack.enter_context(open(tar_stream_or_path, "rb"))
        else:
            raw = tar_stream_or_path
        root_fd = os.open(dest_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, root_fd)
        try:
            # Read once from start to end, never seeking back: the reader also checks the
            # archive's end (a truncated layer is no layer).
            reader = tarstream.Reader(_decompressed(raw, stack))
            return _LayerApplier(root_fd, overlay).apply(reader)
        except (*TAR_ERRORS, OSError) as e:
            if isinstance(e, OSError) and e.errno is not None:
                raise  # a real I/O error; (bz2 says "Invalid data stream" with an OSError, no errno)
            raise ArchiveError(f"cannot read layer: {e}") from e


class _LayerApplier:
    """The state of one apply_layer() call."""

    def __init__(self, root_fd: int, overlay: bool):
        self.root_fd = root_fd
        self.overlay = overlay
        self.written = 0
        # Paths this layer created (kept in naive mode only: an opaque marker spares them).
        self.unpacked: set[str] = set()
        # Directory times, set last: writing into a directory changes its mtime.
        self.dir_times: list[tuple[list[str], tuple[int, int]]] = []
        # The directory the last entry went into, kept open: a tar lists a directory's entries
        # together, and walking down from the root for each one cost 40% of the time. Forgotten
        # whenever this layer removes a directory (it could be this one, or above it).
        self._parent: tuple[tuple[str, ...], int] | None = None
        # Forgotten directory fds, closed once the entry that may still use one is done.
        self._stale: list[int] = []

    def apply(self, reader: tarstream.Reader) -> int:
        try:
            for member in reader:
                try:
                    self._entry(reader, member)
                finally:
                    self._close_stale()
        finally:
            self._forget()
            self._close_stale()
        for parts, times in reversed(self.dir_times):
            try:
                fd = self._open_dir(parts, "/".join(parts), create=False)
            except (FileNotFoundError, ArchiveError):
                continue  # replaced or removed by a later entry of this layer
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)
        return self.written

    # --- walking down, safely ---

    def _open_dir(self, parts: list[str], entry: str, *, create: bool) -> int:
        """Open the directory root/parts[0]/parts[1]/... one level at a time.

        Each level is opened with O_NOFOLLOW relative to the previous one, so the walk
        can never leave the root through a symlink, whoever planted it. Missing levels are
        created (mode 0755, like Docker) when `create`, else FileNotFoundError.
        """
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(part, 0o755, dir_fd=fd)
                    self.unpacked.add("/".join(parts[:i + 1]))
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                        raise
                    where = "/".join(parts[:i + 1])
                    st = _lstat_at(fd, part)
                    if st is not None and stat.S_ISLNK(st.st_mode):
                        raise UnsafeArchiveError(
                            f"{entry!r}: refusing to go through the symlink {where!r}") from None
                    raise ArchiveError(f"{entry!r}: {where!r} is not a directory") from None
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _parent_dir(self, parts: list[str], entry: str) -> int:
        """_open_dir(parts, create=True), through the cache. The fd stays ours (the caller does
        not close it) and open until the current entry is done, even if forgotten meanwhile."""
        key = tuple(parts)
        if self._parent is None or self._parent[0] != key:
            fd = self._open_dir(parts, entry, create=True)
            self._forget()
            self._parent = (key, fd)
        return self._parent[1]

    def _forget(self) -> None:
        if self._parent is not None:
            self._stale.append(self._parent[1])
            self._parent = None

    def _close_stale(self) -> None:
        while self._stale:
            os.close(self._stale.pop())

    def _remove(self, dir_fd: int, name: str) -> None:
        """_remove_all, forgetting the cached directory if a directory goes."""
        st = _lstat_at(dir_fd, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            self._forget()
        _remove_all(dir_fd, name)

    # --- one tar entry ---

    def _entry(self, reader: tarstream.Reader, member: tarstream.Entry) -> None:
        entry = member.name
        parts = _clean_path(member.name, entry)
        name = "/".join(parts)
        base = parts[-1] if parts else ""

        # AUFS' own bookkeeping at the top of the layer: not files of the image.
        if parts and parts[0].startswith(WHITEOUT_META_PREFIX) and name != WHITEOUT_OPAQUE:
            return

        if base == WHITEOUT_OPAQUE:
            self._opaque(parts[:-1], entry, member)
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = base[len(WHITEOUT_PREFIX):]
            if target in ("", ".", ".."):
                raise UnsafeArchiveError(f"{entry!r}: invalid whiteout name")
            self._whiteout(parts[:-1], target, entry, member)
            return

        if member.type not in tarstream.FILE_TYPES:
            raise ArchiveError(f"{entry!r}: unsupported tar entry type {member.type!r}")

        if not parts:  # "./": the root itself. Only its metadata can change.
            if not member.isdir():
                raise UnsafeArchiveError(f"{entry!r}: would replace the layer root")
            self._directory(None, "", [], entry, member)
            return

        parent_fd = self._parent_dir(parts[:-1], entry)
        if member.isdir():
            self._directory(parent_fd, base, parts, entry, member)
        elif member.isreg():
            self._regular(reader, parent_fd, base, member)
        elif member.issym():
            if _symlink_escapes(parts, member.linkname):
                raise UnsafeArchiveError(
                    f"{entry!r}: symlink target {member.linkname!r} escapes the layer root")
            try:
                os.symlink(member.linkname, base, dir_fd=parent_fd)
            except FileExistsError:
                self._remove(parent_fd, base)
                os.symlink(member.linkname, base, dir_fd=parent_fd)
            self._metadata(member, parent_fd=parent_fd, name=base)
        elif member.islnk():
            self._hardlink(parent_fd, base, parts, entry, member)
        else:  # devices and fifos. Docker allows device nodes too (we are root).
            if not member.isfifo() and running_in_user_namespace():
                return  # rootless: mknod is refused in a user namespace; skipped, as moby does
            self._remove(parent_fd, base)
            if member.isfifo():
                os.mkfifo(base, 0o600, dir_fd=parent_fd)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor),
                         dir_fd=parent_fd)
            self._metadata(member, parent_fd=parent_fd, name=base)
        if not self.overlay:
            self.unpacked.add(name)

    def _directory(self, parent_fd, base, parts, entry, member) -> None:
        if parts:
            st = _lstat_at(parent_fd, base)
            if st is None or not stat.S_ISDIR(st.st_mode):
                # a directory over a file or symlink: remove it first
                self._remove(parent_fd, base)
                os.mkdir(base, 0o700, dir_fd=parent_fd)
            # else: a directory over a directory is merged: keep it, update its metadata
            fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
        else:
            fd = os.dup(self.root_fd)
        try:
            self._metadata(member, fd=fd)
        finally:
            os.close(fd)
        self.dir_times.append((parts, _times_ns(member)))

    def _regular(self, reader, parent_fd, base, member) -> None:
        # O_EXCL|O_NOFOLLOW make sure we create a fresh file: whatever is there (a symlink or
        # hard link must be replaced, never written through) goes first, then we try again.
        # (Trying first saves a stat per file: in a new layer, nothing is ever there.)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        except FileExistsError:
            self._remove(parent_fd, base)
            fd = os.open(base, flags, 0o600, dir_fd=parent_fd)
        try:
            self._copy_data(reader, member, fd)
            self._metadata(member, fd=fd)
        finally:
            os.close(fd)

    def _copy_data(self, reader: tarstream.Reader, member: tarstream.Entry, fd: int) -> None:
        # Straight from the stream to the file: a buffered writer around each small file would
        # cost more than the copy. (The reader skips the padding to the next header.)
        left = member.size
        while left:
            chunk = reader.read(min(left, _CHUNK))
            n = os.write(fd, chunk)
            if n < len(chunk):          # (a short write: go on with the rest)
                view = memoryview(chunk)[n:]
                while view:
                    view = view[os.write(fd, view):]
            left -= len(chunk)
        self.written += member.size

    def _hardlink(self, parent_fd, base, parts, entry, member) -> None:
        # The target is a path in this layer, like any entry name: cleaned the same
        # way, and reached the same way (no symlinks on the way, nothing created).
        target = _clean_path(member.linkname, entry)
        if not target:
            raise UnsafeArchiveError(f"{entry!r}: hard link to the layer root")
        try:
            target_dir = self._open_dir(target[:-1], entry, create=False)
        except FileNotFoundError:
            raise ArchiveError(
                f"{entry!r}: hard link target {member.linkname!r} not found") from None
        try:
            st = _lstat_at(target_dir, target[-1])
            if st is None:
                raise ArchiveError(f"{entry!r}: hard link target {member.linkname!r} not found")
            if stat.S_ISDIR(st.st_mode):
                raise ArchiveError(f"{entry!r}: hard link to a directory")
            if target == parts:
                return  # a link to itself: nothing to do
            self._remove(parent_fd, base)
            # follow_symlinks=False: if the target is a symlink, link the symlink itself.
            os.link(target[-1], base, src_dir_fd=target_dir, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        finally:
            os.close(target_dir)
        # No metadata: a hard link shares its inode, already set up by its target.

    def _metadata(self, member, *, fd: int | None = None, parent_fd: int | None = None,
                  name: str | None = None) -> None:
        """Owner, mode, xattrs and (except for directories) times of a new entry.

        Through `fd` when we have the object open (files, dirs), else by `name` in
        `parent_fd` without following symlinks. The order matters: chown(2) clears the
        setuid/setgid bits and security.capability, so it comes first.
        """
        mode = member.mode & 0o7777
        if fd is not None:
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, mode)
        else:
            os.chown(name, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            if not member.issym():  # Linux symlinks have no mode of their own
                # chmod cannot refuse symlinks; `name` is the device/fifo we just made.
                os.chmod(name, mode, dir_fd=parent_fd)
        for key, value in _pax_xattrs(member):
            if fd is not None:
                _set_xattr(fd, key, value)
            else:
                # setxattr has no dir_fd form; /proc/self/fd/N/name names `name` in the
                # directory we hold open, and follow_symlinks=False acts on it, not its target.
                _set_xattr(f"/proc/self/fd/{parent_fd}/{name}", key, value, follow_symlinks=False)
        if member.isdir():
            return  # directories get their times at the very end
        if fd is not None:
            os.utime(fd, ns=_times_ns(member))
        else:
            os.utime(name, ns=_times_ns(member), dir_fd=parent_fd, follow_symlinks=False)

    # --- whiteouts ---

    def _whiteout(self, dir_parts, target, entry, member) -> None:
        """`.wh.<target>`: <target> was deleted in this layer."""
        if self.overlay:
            parent_fd = self._parent_dir(dir_parts, entry)
            self._remove(parent_fd, target)
            # overlayfs' whiteout: a character device with device number 0/0
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent_fd)
            os.chown(target, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
            os.utime(target, ns=_times_ns(member), dir_fd=parent_fd, follow_symlinks=False)
            return
        try:
            parent_fd = self._open_dir(dir_parts, entry, create=False)
        except FileNotFoundError:
            return  # nothing there to delete
        try:
            self._remove(parent_fd, target)
        finally:
            os.close(parent_fd)

    def _opaque(self, dir_parts, entry, member) -> None:
        """`<dir>/.wh..wh..opq`: <dir> hides everything the lower layers had in it."""
        self._forget()  # (naive mode removes what is below: maybe the cached directory)
        fd = self._open_dir(dir_parts, entry, create=True)
        try:
            if self.overlay:
                os.setxattr(fd, opaque_xattr(), b"y")
            else:
                self._remove_not_unpacked(fd, dir_parts)
        finally:
            os.close(fd)

    def _remove_not_unpacked(self, dir_fd: int, dir_parts: list[str]) -> None:
        for child in os.listdir(dir_fd):
            if "/".join(dir_parts + [child]) not in self.unpacked:
                _remove_all(dir_fd, child)
                continue
            st = _lstat_at(dir_fd, child)
            if st is not None and stat.S_ISDIR(st.st_mode):
                # kept, but it may still hold older entries of its own
                fd = os.open(child, _DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self._remove_not_unpacked(fd, dir_parts + [child])
                finally:
                    os.close(fd)


# ---------------------------------------------------------------------------
# Exporting a directory
# ---------------------------------------------------------------------------

def _walk(src_dir: str):
    """Yield (name, path, lstat) for everything below src_dir, depth first.

    Each directory's names are sorted by their bytes and a directory comes right before
    its contents (as Go's filepath.Walk does): the same tree always gives the same order.
    Symlinks are reported, never followed. (An explicit stack, not recursion: an image may
    hold a tree thousands of directories deep.)
    """
    stack = [("", src_dir, iter(sorted(os.listdir(src_dir), key=os.fsencode)))]
    while stack:
        rel, path, names = stack[-1]
        n = next(names, None)
        if n is None:
            stack.pop()
            continue
        r = f"{rel}/{n}" if rel else n
        p = os.path.join(path, n)
        st = os.lstat(p)
        yield r, p, st
        if stat.S_ISDIR(st.st_mode):
            stack.append((r, p, iter(sorted(os.listdir(p), key=os.fsencode))))


def _read_xattrs(path: str) -> dict[str, str]:
    """PAX records for the xattrs of `path` (not following symlinks), sorted by name."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return {}
        raise
    records = {}
    for key in sorted(names):
        if key.startswith(OVERLAY_XATTR_PREFIX):
            continue  # overlayfs' own state (opaque is turned into a marker entry instead)
        value = os.getxattr(path, key, follow_symlinks=False)
        records[PAX_XATTR_PREFIX + key] = value.decode("utf-8", "surrogateescape")
    return records


def _owner_names(info: tarfile.TarInfo) -> None:
    import grp
    import pwd
    with contextlib.suppress(KeyError):
        info.uname = pwd.getpwuid(info.uid).pw_name
    with contextlib.suppress(KeyError):
        info.gname = grp.getgrgid(info.gid).gr_name


def export_dir(src_dir, out_fileobj, *, overlay: bool = True, deterministic: bool = True,
               idmaps=None) -> None:
    """Write an uncompressed PAX tar of everything below `src_dir` to `out_fileobj`.

    Names are relative ("etc/passwd", directories "etc/"); the root itself is not an
    entry. Entries come in sorted order with uid, gid, mode (with setuid/setgid/sticky),
    mtime (whole seconds, as Docker), xattrs (PAX SCHILY.xattr.*), symlinks, devices and
    fifos; sockets are skipped. A file with several names is stored once, then as hard
    link entries pointing to the first name.

    overlay=True: `src_dir` is an overlay upper dir: a 0/0 character device becomes an
    empty `.wh.<name>` file, and an opaque directory gets a `<dir>/.wh..wh..opq` entry.

    deterministic=True (the default, needed for a reproducible DiffID): user/group
    names are left empty and no atime/ctime is stored, so the bytes depend only on the
    tree. deterministic=False adds names from the passwd/group files and atime/ctime.

    idmaps: (uid map, gid map) of a --userns-remap state root (core/userns.IdMap): owners are
    written as the container sees them (100000 on disk -> 0 in the tar), as Docker's are.
    """
    seen: dict[tuple[int, int], str] = {}  # (st_dev, st_ino) -> first name, for hard links
    with tarfile.open(fileobj=out_fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name, path, st in _walk(os.fspath(src_dir)):
            mode = st.st_mode
            if stat.S_ISSOCK(mode):
                continue  # a socket is a live endpoint, not data
            info = tarfile.TarInfo(name)
            info.mode = stat.S_IMODE(mode)
            info.uid, info.gid = st.st_uid, st.st_gid
            if idmaps:
                info.uid, info.gid = idmaps[0].to_container(st.st_uid), idmaps[1].to_container(st.st_gid)
            info.mtime = int(st.st_mtime)
            info.uname = info.gname = ""
            if not deterministic:
                _owner_names(info)
                info.pax_headers["atime"] = repr(st.st_atime)
                info.pax_headers["ctime"] = repr(st.st_ctime)

            if overlay and is_whiteout(st):
                # overlayfs whiteout -> .wh.<name>. (Checked before hard links: overlayfs
                # shares one whiteout inode between many names.)
                head, _, tail = name.rpartition("/")
                info.name = f"{head}/{WHITEOUT_PREFIX}{tail}" if head else WHITEOUT_PREFIX + tail
                info.type, info.mode, info.size = tarfile.REGTYPE, 0o600, 0
                tf.addfile(info)
                continue

            info.pax_headers.update(_read_xattrs(path))

            if not stat.S_ISDIR(mode) and st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    info.type, info.linkname = tarfile.LNKTYPE, seen[key]
                    tf.addfile(info)
                    continue
                seen[key] = name

            if stat.S_ISDIR(mode):
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
                if overlay and is_opaque(path):
                    marker = tarfile.TarInfo(f"{name}/{WHITEOUT_OPAQUE}")
                    marker.mode = info.mode & 0o777
                    marker.uid, marker.gid = info.uid, info.gid
                    marker.uname, marker.gname = info.uname, info.gname
                    marker.mtime = info.mtime
                    tf.addfile(marker)
            elif stat.S_ISREG(mode):
                info.type, info.size = tarfile.REGTYPE, st.st_size
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                with os.fdopen(fd, "rb") as f:
                    tf.addfile(info, f)
            elif stat.S_ISLNK(mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                tf.addfile(info)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
                info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                tf.addfile(info)
            elif stat.S_ISFIFO(mode):
                info.type = tarfile.FIFOTYPE
                tf.addfile(info)


# ---------------------------------------------------------------------------
# Digests
# ---------------------------------------------------------------------------

def layer_digest(fileobj) -> str:
    """"sha256:<hex>" of all the bytes read from `fileobj`.

    On an uncompressed layer tar this is its DiffID (the id in the image config's
    rootfs.diff_ids); on the compressed blob, the digest in the manifest.
    """
    h = hashlib.sha256()
    while chunk := fileobj.read(_CHUNK):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


class _HashingWriter:
    """A write-only file object that hashes and counts what goes through it."""

    def __init__(self, out):
        self.out, self.sha, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.out.write(data)


def export_layer_with_digest(src_dir, out_path) -> tuple[str, int]:
    """Export an overlay diff dir to the tar file `out_path`; return (DiffID, size).

    The tar is hashed while it is written (one pass) and appears at `out_path` only
    once complete (written to a temporary name, then renamed).
    """
    out_path = os.fspath(out_path)
    tmp = f"{out_path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            w = _HashingWriter(f)
            export_dir(src_dir, w, overlay=True, deterministic=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return "sha256:" + w.sha.hexdigest(), w.size
