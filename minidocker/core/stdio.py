"""A container's stdin is a pipe, never the caller's terminal.

Taught in notebook 01. If `docker run -i` or `docker exec` handed the container the caller's
own terminal as its stdin, a process in the container could push keystrokes into the
caller's shell (the TIOCSTI ioctl: "type this as if the user had") and run commands on the
host as the admin. Docker never does: without -t the container reads a pipe and the runtime
copies the caller's input into it; with -t the container gets a pseudo-terminal of its own.

`StdinFeeder` is that copy, for a select() loop: it reads the caller's fd and writes into the
pipe without ever blocking (a container that does not read its stdin must not stop the
monitor from copying its output), and closes the pipe when the caller's input ends.
"""
from __future__ import annotations

import errno
import os
import selectors

MAX_PENDING = 1 << 20  # stop reading the caller while this much waits for the container


class StdinFeeder:
    def __init__(self, source: int, pipe_w: int):
        self.source, self.pipe_w = source, pipe_w
        os.set_blocking(pipe_w, False)
        self.pending = b""
        self.eof = False
        self.sel: selectors.BaseSelector | None = None

    @property
    def done(self) -> bool:
        return self.pipe_w < 0

    def register(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        sel.register(self.source, selectors.EVENT_READ, ("stdin-feed", self))

    def _want_write(self, on: bool) -> None:
        keys = self.sel.get_map()
        if on and self.pipe_w not in keys:
            self.sel.register(self.pipe_w, selectors.EVENT_WRITE, ("stdin-feed", self))
        elif not on and self.pipe_w in keys:
            self.sel.unregister(self.pipe_w)
        reading = self.source in keys
        if len(self.pending) >= MAX_PENDING and reading:
            self.sel.unregister(self.source)
        elif len(self.pending) < MAX_PENDING and not reading and not self.eof:
            self.sel.register(self.source, selectors.EVENT_READ, ("stdin-feed", self))

    def handle(self, fd: int) -> None:
        """Call when `fd` (the source or the pipe) is ready."""
        if fd == self.source:
            try:
                data = os.read(self.source, 65536)
            except OSError:
                data = b""
            if not data:
                self.eof = True
                self.sel.unregister(self.source)
            self.pending += data
        self._flush()

    def _flush(self) -> None:
        try:
            while self.pending:
                n = os.write(self.pipe_w, self.pending)
                self.pending = self.pending[n:]
        except BlockingIOError:
            pass
        except OSError as e:  # EPIPE: the container closed its stdin; what it did not read is dropped
            if e.errno != errno.EPIPE:
                raise
            self.pending, self.eof = b"", True
        if self.eof and not self.pending:
            self.close()
        else:
            self._want_write(bool(self.pending))

    def close(self) -> None:
        """Stop: the container sees the end of its input."""
        if self.pipe_w < 0:
            return
        keys = self.sel.get_map() if self.sel else {}
        for fd in (self.source, self.pipe_w):
            if fd in keys:
                self.sel.unregister(fd)
        os.close(self.pipe_w)
        self.pipe_w = -1


DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q: leave a container without stopping it


def split_detach(data: bytes, pending: bytes, keys: bytes = DETACH_KEYS) -> tuple[bytes, bytes, bool]:
    """Look for the detach keys in the input (they may come split across reads): returns
    (bytes to send on, bytes held back as a possible start of the keys, detached?). Pure."""
    buf = pending + data
    at = buf.find(keys)
    if at >= 0:
        return buf[:at], b"", True
    for n in range(min(len(keys) - 1, len(buf)), 0, -1):  # a prefix of the keys at the end waits
        if buf.endswith(keys[:n]):
            return buf[:-n], buf[-n:], False
    return buf, b"", False
