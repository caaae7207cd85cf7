"""Small filesystem helpers: atomic writes and advisory locks.

Several `minidocker` commands may run at once (a learner's terminal, a notebook, the
monitor of each container). State on disk stays consistent with two rules:
  * a file is never half-written: write a temp file, fsync, then rename() over the old one;
  * read-modify-write sequences hold an flock(2) on a lock file.
"""
from __future__ import annotations

import fcntl
import json
import os
import time


def write_atomic(path: str, data: bytes | str, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` all at once. `durable` also fsyncs (survives a power cut);
    files we can regenerate skip it: each fsync costs a disk flush on the start path."""
    if isinstance(data, str):
        data = data.encode()
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def rewrite(path: str, data: bytes | str, mode: int = 0o644) -> None:
    """Write `path` in place (the same inode, owner and mode): for a file bind-mounted into a
    container, such as its /etc/hosts, which a new file in its place would not replace there
    (Docker's libnetwork writes them in place too)."""
    if isinstance(data, str):
        data = data.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def write_json(path: str, obj, mode: int = 0o644, durable: bool = True) -> None:
    write_atomic(path, json.dumps(obj, separators=(",", ":")), mode, durable)


def read_json(path: str):
    with open(path, "rb") as f:
        return json.load(f)


def read_text(path: str, default: str | None = None) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return default


class FileLock:
    """An flock(2) on `path`, usable as a context manager.

    flock locks belong to the open file, so they are released when the holder dies:
    a crashed CLI can never leave minidocker locked.
    """

    def __init__(self, path: str, shared: bool = False):
        self.path = path
        self.shared = shared
        self.fd: int | None = None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        op = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        if blocking and timeout is None:
            fcntl.flock(self.fd, op)
            return True
        deadline = time.monotonic() + (timeout or 0)
        while True:
            try:
                fcntl.flock(self.fd, op | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if not blocking or time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops the lock
            self.fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_locked(path: str) -> bool:
    """True if some process holds an exclusive flock on `path` right now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def walk(top: str):
    """os.walk (top-down, symlinks not followed), without recursion: an image may hold a tree
    thousands of directories deep, and Python 3.11's os.walk recurses once per level."""
    stack = [top]
    while stack:
        dirpath = stack.pop()
        dirnames, filenames = [], []
        try:
            with os.scandir(dirpath) as it:
                for e in it:
                    (dirnames if e.is_dir(follow_symlinks=False) else filenames).append(e.name)
        except OSError:
            continue
        yield dirpath, dirnames, filenames
        stack.extend(os.path.join(dirpath, d) for d in reversed(dirnames))  # (callers may prune dirnames)


def rmtree(path: str, ignore_errors: bool = False) -> None:
    """shutil.rmtree, without recursion (a tree may be thousands of levels deep: Python 3.11's
    rmtree recurses, and deep paths outgrow PATH_MAX) and never following a symlink: it works
    from directory file descriptors, one level at a time."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            top = os.open(path, flags)
        except NotADirectoryError:
            os.unlink(path)  # a file, or a symlink (removed, never followed)
            return
        except OSError as e:
            if e.errno == 40:  # ELOOP: `path` itself is a symlink
                os.unlink(path)
                return
            raise
        stack = [(top, "")]
        while stack:
            fd = stack[-1][0]
            child = None
            with os.scandir(fd) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        child = e.name
                        break
                    os.unlink(e.name, dir_fd=fd)
            if child is not None:  # go down; this directory is scanned again on the way back
                stack.append((os.open(child, flags, dir_fd=fd), child))
                continue
            fd, name = stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(name, dir_fd=stack[-1][0])
        os.rmdir(path)
    except OSError as e:
        gone = isinstance(e, FileNotFoundError) and not os.path.lexists(path)  # someone was quicker
        if not (ignore_errors or gone):
            raise


def dir_size(path: str) -> int:
    """Sum of file sizes under `path`, hard links counted once (moby's directory.Size)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def scoped_path(root: str, rel: str) -> str:
    """Resolve `rel` inside `root` the way a chroot would: symlinks in the path are followed
    but can never lead outside `root` (moby's FollowSymlinkInScope)."""
    parts = [p for p in rel.replace("\\", "/").split("/") if p not in ("", ".")]
    cur = root
    depth = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            cur = os.path.dirname(cur) if cur != root else root
            continue
        nxt = os.path.join(cur, p)
        if os.path.islink(nxt):
            depth += 1
            if depth > 40:
                raise OSError(40, f"too many levels of symbolic links: {rel}")
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = root
            parts = [x for x in target.split("/") if x not in ("", ".")] + parts
            continue
        cur = nxt
    if not (cur == root or cur.startswith(root + os.sep)):
        cur = root
    return cur
