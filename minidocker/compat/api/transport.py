"""The Python API's wire: the Engine API's requests, in process or to a `minidocker serve`.

docker-py speaks HTTP to dockerd. This client speaks the same HTTP to the same handlers
`minidocker serve` runs (compat/server), so the Python API, the docker CLI and docker-py all
take one path through the engine. In a notebook there is no daemon to run: each request gets
a socketpair, and one end is served in a thread of this process (never a fork(): the
notebook's kernel is multi-threaded; containers are started by their own monitor processes,
as always). With `base_url="unix:///run/minidocker.sock"` the same client talks to a server.
"""
from __future__ import annotations

import json
import socket
import threading
from urllib.parse import quote, urlencode

from ...errors import Conflict, InvalidArgument, InvalidState, MinidockerError, NotFound
from ..server.http import API_VERSION

MAX_LINE = 65536


class APIError(MinidockerError):
    """An answer with an error status other than the kinds below (docker-py's APIError)."""


class ImageNotFound(NotFound):
    """docker-py's ImageNotFound: a NotFound about an image."""


def error_for(status: int, message: str, path: str) -> MinidockerError:
    """The exception for an error answer (the reverse of server/core.py's status_of)."""
    if status == 404:
        kind = ImageNotFound if "image" in message.lower() else NotFound
    elif status == 409:
        kind = InvalidState if "is not running" in message or "is paused" in message else Conflict
    elif status == 400:
        kind = InvalidArgument
    else:
        kind = APIError
    err = kind(message)
    err.status_code = status
    return err


def filters_param(filters: dict) -> dict:
    """docker-py's convert_filters: every value a list of strings ({"dangling": True} ->
    {"dangling": ["true"]}, {"label": "a=b"} -> {"label": ["a=b"]})."""
    out = {}
    for k, v in filters.items():
        if isinstance(v, bool):
            v = ["true" if v else "false"]
        elif not isinstance(v, (list, tuple)):
            v = [str(v)]
        out[k] = [str(x) for x in v]
    return out


def _param(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def query(params: dict | None) -> str:
    """{"all": True, "filters": {"status": ["exited"]}} -> "all=1&filters=..." (None left out;
    a tuple repeats the key, as `changes=` does)."""
    pairs = []
    for k, v in (params or {}).items():
        if v is None:
            continue
        if k == "filters":
            v = filters_param(v)
        for item in (v if isinstance(v, tuple) else (v,)):
            pairs.append((k, _param(item)))
    return urlencode(pairs)


class Reply:
    """One answer: status and headers at once; the body read as it is needed."""

    def __init__(self, sock: socket.socket, rfile, method: str):
        self.sock, self.rfile = sock, rfile
        line = rfile.readline(MAX_LINE)
        if not line:
            raise APIError("the server closed the connection without an answer")
        parts = line.decode("latin-1").split(" ", 2)
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while True:
            h = rfile.readline(MAX_LINE)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        no_body = method == "HEAD" or self.status in (204, 304)  # (101: raw bytes until the end)
        self.length = 0 if no_body else (None if self.chunked or "content-length" not in self.headers
                                         else int(self.headers["content-length"]))

    def chunks(self):
        """The body's pieces as they arrive (a stream may go on for as long as it lasts)."""
        try:
            if self.chunked:
                while True:
                    size = int(self.rfile.readline(MAX_LINE).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline(MAX_LINE)
                        return
                    data = self.rfile.read(size)
                    self.rfile.readline(MAX_LINE)
                    yield data
            elif self.length is None:       # (an old-style hijack: until the server closes)
                while data := self.rfile.read1(65536):
                    yield data
            else:
                left = self.length
                while left > 0 and (data := self.rfile.read(min(left, 65536))):
                    left -= len(data)
                    yield data
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self):
        data = self.read()
        return json.loads(data) if data.strip() else None

    def json_stream(self):
        """Docker's progress and event streams: JSON objects one after another."""
        dec, buf = json.JSONDecoder(), ""
        for chunk in self.chunks():
            buf += chunk.decode("utf-8", errors="replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = dec.raw_decode(buf)
                except ValueError:
                    break  # (the rest of this object is still on its way)
                yield obj
                buf = buf[end:]

    def close(self) -> None:
        try:
            self.rfile.close()
            self.sock.close()
        except OSError:
            pass


class Transport:
    def __init__(self, root: str | None = None, base_url: str | None = None, version: str = API_VERSION):
        self.base_url, self.version = base_url, version
        self.server = None
        if base_url is None:
            from ..server.core import Server
            self.server = Server([], root=root)

    def _connect(self) -> socket.socket:
        if self.server is not None:
            ours, theirs = socket.socketpair()
            threading.Thread(target=self.server.handle, args=(theirs,), daemon=True).start()
            return ours
        from ..server.core import parse_host
        kind, addr = parse_host(self.base_url)
        if kind == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(addr)
            return s
        return socket.create_connection(addr)

    def open(self, method: str, path: str, params: dict | None = None, body=None,
             headers: dict | None = None, hijack: bool = False, check: bool = True) -> Reply:
        """Send one request (one connection each: a stream or a hijack keeps its own) and read
        the answer's head. Error answers raise (check=False: returned as they are)."""
        h = {"Host": "docker", **(headers or {})}
        data = b""
        chunks = None
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        elif body is not None:  # a file or an iterator of bytes: sent in chunks as it is read
            chunks = iter(lambda: body.read(65536), b"") if hasattr(body, "read") else iter(body)
            h["Transfer-Encoding"] = "chunked"
        if chunks is None and (data or method in ("POST", "PUT")):
            h["Content-Length"] = str(len(data))
        if hijack:
            h.update({"Connection": "Upgrade", "Upgrade": "tcp"})
        qs = query(params)
        target = f"/v{self.version}{quote(path)}" + (f"?{qs}" if qs else "")
        sock = self._connect()
        try:
            head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
            sock.sendall(head.encode("latin-1") + data)
            if chunks is not None:
                for c in chunks:
                    if c:
                        sock.sendall(b"%x\r\n%s\r\n" % (len(c), c))
                sock.sendall(b"0\r\n\r\n")
            reply = Reply(sock, sock.makefile("rb"), method)
        except BaseException:
            sock.close()
            raise
        if check and reply.status >= 400:
            body = reply.read()
            try:
                message = json.loads(body)["message"]
            except (ValueError, KeyError, TypeError):
                message = body.decode(errors="replace").strip() or f"HTTP {reply.status}"
            raise error_for(reply.status, message, path)
        return reply

    def json(self, method: str, path: str, params: dict | None = None, body=None, **kw):
        return self.open(method, path, params, body, **kw).json()

    def call(self, method: str, path: str, params: dict | None = None, body=None, **kw) -> int:
        """A request whose answer has nothing to say: its status (204, 304, ...)."""
        reply = self.open(method, path, params, body, **kw)
        reply.read()
        return reply.status


def demux(reply: Reply, tty: bool):
    """(stream, bytes) from an attach, exec or logs stream: 8-byte frame headers unless tty
    (server/streams.py writes them; stream 1 is stdout, 2 stderr)."""
    if tty:
        for chunk in reply.chunks():
            yield "stdout", chunk
        return
    buf = b""
    for chunk in reply.chunks():
        buf += chunk
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            yield ("stderr" if buf[0] == 2 else "stdout"), buf[8:8 + size]
            buf = buf[8 + size:]
