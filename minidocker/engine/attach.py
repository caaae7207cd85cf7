"""`docker attach`: connect a terminal to a running container's stdio, later.

Taught in notebook 09 (lifecycle). Only the container's monitor holds its stdio (the pipes or
the pty master), so it listens on a unix socket, containers/<id>/attach.sock, as conmon does.
A client sends one line ({"stdin": true}) and then its input; it gets the container's output:
raw with a terminal (-t), else in Docker's multiplexed frames (8 bytes: stream 1 or 2, three
zeros, the length, big-endian; then the bytes), as the Engine API's attach does.

The client leaves on the detach keys (ctrl-p ctrl-q, --detach-keys), and the container runs on;
when the container ends, the monitor closes the sockets and the client exits with its code.
"""
from __future__ import annotations

import json
import os
import selectors
import socket
import struct
import sys

from ..core.stdio import DETACH_KEYS, split_detach  # noqa: F401 (also this module's API)

STREAMS = {"stdin": 0, "stdout": 1, "stderr": 2}

def short_path(directory_fd: int, name: str) -> str:
    """A unix socket path is at most 107 bytes; a state root's may be longer. The directory's
    open fd, seen through /proc/self/fd, gives a short path to the same place."""
    return f"/proc/self/fd/{directory_fd}/{name}"


def frame(stream: str, data: bytes) -> bytes:
    """Docker's stdcopy header for a chunk of output (no terminal: stdout and stderr share a
    connection)."""
    return struct.pack(">BxxxI", STREAMS[stream], len(data)) + data


def unframe(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The complete frames at the start of `buf`, and what is left (pure)."""
    out = []
    while len(buf) >= 8:
        stream, size = struct.unpack(">BxxxI", buf[:8])
        if len(buf) < 8 + size:
            break
        out.append((stream, buf[8:8 + size]))
        buf = buf[8 + size:]
    return out, buf


# ---------------------------------------------------------------- the monitor's side
class Listener:
    def __init__(self, container_dir: str, tty: bool):
        self.tty = tty
        self.dirfd = os.open(container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        path = short_path(self.dirfd, "attach.sock")
        try:
            os.unlink(os.path.join(container_dir, "attach.sock"))
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        os.chmod(os.path.join(container_dir, "attach.sock"), 0o600)
        self.sock.listen(8)
        self.fd = self.sock.fileno()
        self.clients: dict[int, dict] = {}      # fd -> {"sock", "stdin", "header"}
        self.new: list[int] = []
        self.stdin_fd = -1

    def accept(self, fd: int) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(2)
        self.clients[conn.fileno()] = {"sock": conn, "stdin": False, "header": b"", "registered": False}
        self.new.append(conn.fileno())

    def poll(self, sel) -> None:
        for fd in self.new:
            if fd in self.clients:
                sel.register(fd, selectors.EVENT_READ, ("hook", lambda fd, sel=sel: self._read(fd, sel)))
                self.clients[fd]["registered"] = True
        self.new = []

    def _read(self, fd: int, sel) -> None:
        c = self.clients.get(fd)
        if c is None:
            return
        try:
            data = c["sock"].recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(fd, sel)
            return
        if c["header"] is not None:  # the first line says whether it sends input
            c["header"] += data
            if b"\n" not in c["header"]:
                return
            line, data = c["header"].split(b"\n", 1)
            c["header"] = None
            try:
                c["stdin"] = bool(json.loads(line).get("stdin"))
            except (ValueError, AttributeError):
                self._drop(fd, sel)
                return
        if data and c["stdin"] and self.stdin_fd >= 0:
            try:  # never blocks the monitor: a container that reads no input loses what overflows
                os.set_blocking(self.stdin_fd, False)
                os.write(self.stdin_fd, data)
            except OSError:
                pass

    def output(self, stream: str, data: bytes) -> None:
        chunk = data if self.tty else frame(stream, data)
        for fd, c in list(self.clients.items()):
            try:
                c["sock"].sendall(chunk)
            except OSError:  # gone, or too slow to take the output: it is dropped, the container is not held
                self._drop(fd, None)

    def _drop(self, fd: int, sel) -> None:
        c = self.clients.pop(fd, None)
        if c is None:
            return
        if sel is not None and c["registered"]:
            try:
                sel.unregister(fd)
            except (KeyError, ValueError):
                pass
        c["sock"].close()

    def close(self) -> None:
        for fd in list(self.clients):
            c = self.clients.pop(fd)
            c["sock"].close()
        self.sock.close()
        try:
            os.unlink(short_path(self.dirfd, "attach.sock"))
        except OSError:
            pass
        os.close(self.dirfd)


# ---------------------------------------------------------------- the client's side
def attach(rt, ref: str, stdin: bool = True, detach_keys: bytes = DETACH_KEYS, sig_proxy: bool = True,
           in_fd: int = 0, out=None, err=None) -> int:
    """`docker attach`: returns the container's exit code, or 0 after the detach keys."""
    from ..errors import InvalidState
    cid = rt.resolve(ref)
    rec = rt.inspect(cid)
    s = rec["State"]
    if not s["Running"]:
        raise InvalidState("You cannot attach to a stopped container, start it first", exit_code=1)
    if s.get("Restarting"):
        raise InvalidState("You cannot attach to a restarting container, wait until it is running", exit_code=1)
    if s.get("Paused"):
        raise InvalidState("You cannot attach to a paused container, unpause it first", exit_code=1)
    tty = bool(rec["Config"].get("Tty"))
    use_stdin = stdin and bool(rec["Config"].get("OpenStdin"))
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    dirfd = os.open(rt.containers.dir(cid), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(short_path(dirfd, "attach.sock"))
    except OSError:
        raise InvalidState(f"cannot attach to {ref}: its monitor does not listen (started by an older minidocker?)",
                           exit_code=1) from None
    finally:
        os.close(dirfd)
    sock.sendall((json.dumps({"stdin": use_stdin}) + "\n").encode())
    from ..events import container_attributes, emit
    emit(rt.root, "container", "attach", cid, container_attributes(rec))
    old_handlers = {}
    if sig_proxy and not tty:  # the container gets the signals we get (docker's --sig-proxy)
        import signal

        def forward(signo, frame_):
            try:
                rt.kill(cid, signo)
            except Exception:  # noqa: BLE001 -- it may have ended meanwhile
                pass
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old_handlers[sig] = signal.signal(sig, forward)
    sel = selectors.PollSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    if use_stdin:
        sel.register(in_fd, selectors.EVENT_READ, "stdin")
    pending, buf, detached = b"", b"", False
    try:
        while not detached:
            events = sel.select()
            for key, _ in events:
                if key.data == "sock":
                    data = sock.recv(65536)
                    if not data:
                        return _exit_code(rt, cid)
                    if tty:
                        out.write(data)
                        out.flush()
                        continue
                    frames, buf = unframe(buf + data)
                    for stream, chunk in frames:
                        target = err if stream == 2 else out
                        target.write(chunk)
                        target.flush()
                else:
                    data = os.read(in_fd, 65536)
                    if not data:
                        sel.unregister(in_fd)  # our input ended; the output goes on
                        continue
                    send, pending, detached = split_detach(data, pending, detach_keys)
                    if send:
                        sock.sendall(send)
        err.write(b"read escape sequence\n")
        err.flush()
        return 0
    finally:
        sock.close()
        if old_handlers:
            import signal
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)


def _exit_code(rt, cid: str) -> int:
    from .stop import wait
    try:
        return wait(rt, cid)
    except Exception:  # noqa: BLE001 -- removed (--rm): Docker's attach then says 0
        return 0


def parse_detach_keys(text: str) -> bytes:
    """--detach-keys "ctrl-p,ctrl-q" -> b"\\x10\\x11" (docker's format: ctrl-<letter>, a letter, or ctrl-@ ...)."""
    from ..errors import InvalidArgument
    out = b""
    for key in text.split(","):
        key = key.strip()
        if key.startswith("ctrl-") and len(key) == 6:
            c = key[5].lower()
            if "a" <= c <= "z":
                out += bytes([ord(c) - 96])
                continue
            codes = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}
            if key[5] in codes:
                out += bytes([codes[key[5]]])
                continue
        elif len(key) == 1:
            out += key.encode()
            continue
        raise InvalidArgument(f"Unknown character: '{key}'")
    return out
