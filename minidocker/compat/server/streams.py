"""The streams of attach, exec and logs, on a hijacked connection.

Without a terminal, stdout and stderr share the one connection, so each chunk is framed:
8 bytes (the stream, 1 or 2; three zeros; the length, big-endian) then the bytes
(engine/attach.py: frame). With a terminal (-t) there is one stream and no framing: the
bytes as the pty gave them. What the client sends is the program's stdin, unframed.
"""
from __future__ import annotations

import os
import selectors
import socket

from ...engine.attach import DETACH_KEYS, frame, split_detach

RAW = "application/vnd.docker.raw-stream"
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def content_type(tty: bool, api_version: str) -> str:
    """API 1.42 and later name the framed kind; earlier clients were told "raw" for both."""
    from .http import version_tuple
    return MULTIPLEXED if not tty and version_tuple(api_version) >= (1, 42) else RAW


def relay(sock: socket.socket, stdin_w: int | None, outputs: dict[int, str | None],
          detach_keys: bytes | None = None) -> None:
    """Client -> stdin_w; each output fd -> the client, framed as its stream ("stdout",
    "stderr") or raw (None). Returns when every output is at its end (the program's side
    closed). Closes stdin_w and the output fds; the caller closes the socket.
    `detach_keys` other than ctrl-p ctrl-q (which the monitor itself watches for on the stdin
    it is given) are turned into those, so the monitor lets the client go."""
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "client")
    for fd, stream in outputs.items():
        sel.register(fd, selectors.EVENT_READ, stream or "raw")
    open_outputs = set(outputs)
    pending = b""
    translate = detach_keys not in (None, b"", DETACH_KEYS)
    try:
        while open_outputs:
            for key, _ in sel.select():
                if key.data == "client":
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the client is done sending (or gone): the program's stdin ends
                        sel.unregister(sock)
                        if stdin_w is not None:
                            os.close(stdin_w)
                            stdin_w = None
                    elif stdin_w is not None:
                        if translate:
                            data, pending, detached = split_detach(data, pending, detach_keys)
                            data += DETACH_KEYS if detached else b""
                        try:
                            os.write(stdin_w, data)
                        except BrokenPipeError:
                            os.close(stdin_w)
                            stdin_w = None
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    open_outputs.discard(key.fd)
                    continue
                sock.sendall(data if key.data == "raw" else frame(key.data, data))
    except OSError:
        pass  # the client went away: stop reading; the program gets EPIPE on its next write
    finally:
        sel.close()
        if stdin_w is not None:
            os.close(stdin_w)
        for fd in outputs:
            try:
                os.close(fd)
            except OSError:
                pass


def splice(a: socket.socket, b: socket.socket, detach_keys: bytes | None = None) -> None:
    """Copy both ways between two sockets until both directions end (half-closes passed on).
    With `detach_keys`, a's bytes are watched for them: once typed, the copying ends (the
    client detaches; what runs on b's side goes on)."""
    peer = {a: b, b: a}
    pending = b""
    sel = selectors.DefaultSelector()
    for s in peer:
        sel.register(s, selectors.EVENT_READ)
    live = set(peer)
    try:
        while live:
            for key, _ in sel.select():
                src = key.fileobj
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if data and detach_keys and src is a:
                    data, pending, detached = split_detach(data, pending, detach_keys)
                    if detached:
                        b.sendall(data)
                        return
                    if not data:
                        continue  # (all of it may be the start of the keys: held back, not an end)
                if data:
                    peer[src].sendall(data)
                    continue
                sel.unregister(src)
                live.discard(src)
                try:
                    peer[src].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                if src is b:  # the program's side ended: nothing more will come for the client
                    return
    except OSError:
        pass
    finally:
        sel.close()


def close_hijacked(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
