"""The small part of HTTP/1.1 that Docker's clients speak to the Engine API.

A request is a line ("POST /v1.41/containers/create?name=web HTTP/1.1"), headers, and a body
sized by Content-Length or sent in chunks ("Transfer-Encoding: chunked": how the docker CLI
streams a build context). Answers are JSON, or streams sent in chunks (logs -f, events, pull
progress), or no HTTP at all after a first answer: for attach and exec start, the server
"hijacks" the connection (101 UPGRADED) and both sides then read and write raw bytes on the
same socket, the program's stdin one way and its output the other.

(http.server would do for plain requests; hijacking and streaming need the socket itself,
so this module reads and writes it directly, one connection per thread.)
"""
from __future__ import annotations

import json
import socket
from urllib.parse import parse_qs, unquote, urlsplit

API_VERSION = "1.45"        # the newest Engine API version we speak (Docker 26's)
MIN_API_VERSION = "1.24"    # the oldest we accept (dockerd's minimum)


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


class HTTPError(Exception):
    """An answer with this status and {"message": ...}."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


REASONS = {200: "OK", 201: "Created", 204: "No Content", 101: "UPGRADED", 304: "Not Modified",
           400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
           500: "Internal Server Error", 501: "Not Implemented"}
MAX_LINE = 65536


class BadRequest(Exception):
    pass


class Request:
    def __init__(self, conn: socket.socket, rfile, method: str, target: str, headers: dict[str, str]):
        self.conn, self.rfile = conn, rfile
        self.method = method
        url = urlsplit(target)
        self.raw_path = unquote(url.path)
        self.path = self.raw_path            # without the /v1.xx prefix (routes.py strips it)
        self.version = ""                    # the API version the client asked for
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.headers = headers               # names in lower case
        self.params: dict[str, str] = {}     # from the route's pattern: {"id": "web"}
        self.hijacked = False
        self._body_read = False

    # --- the query string, Docker's way ("1", "true", "True" are true) ---
    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None or value == "":
            return default
        return value.lower() in ("1", "true", "yes")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"invalid value for {name}: {value!r}") from None

    def json_arg(self, name: str, default=None):
        value = self.arg(name)
        if not value:
            return default
        try:
            return json.loads(value)
        except ValueError:
            raise BadRequest(f"invalid JSON in {name}") from None

    # --- the body ---
    def body_chunks(self):
        """The body, as it arrives (a build context may be large: never held whole)."""
        self._body_read = True
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size_line = self.rfile.readline(MAX_LINE)
                try:
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise BadRequest("bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, 65536))
                    if not data:
                        raise BadRequest("the body ended early")
                    left -= len(data)
                    yield data
                self.rfile.readline(MAX_LINE)  # the CRLF after the chunk
        else:
            left = int(self.headers.get("content-length") or 0)
            while left > 0:
                data = self.rfile.read(min(left, 65536))
                if not data:
                    raise BadRequest("the body ended early")
                left -= len(data)
                yield data

    def body_file(self) -> "BodyReader":
        """The body as a file to read(n) from (a tar to unpack as it arrives)."""
        return BodyReader(self.body_chunks())

    def body(self) -> bytes:
        return b"".join(self.body_chunks())

    def json(self, default=None):
        data = self.body()
        if not data.strip():
            return default
        try:
            return json.loads(data)
        except ValueError as e:
            raise BadRequest(f"invalid JSON body: {e}") from None

    def drain(self) -> None:
        """Read what is left of the body, so the next request on this connection starts clean."""
        if not self._body_read:
            for _ in self.body_chunks():
                pass


class BodyReader:
    def __init__(self, chunks):
        self.chunks, self.buf = chunks, b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buf += chunk
        if n < 0:
            n = len(self.buf)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def read_request(conn: socket.socket, rfile) -> Request | None:
    """The next request on a kept-alive connection (None when the client closed it)."""
    line = rfile.readline(MAX_LINE)
    while line in (b"\r\n", b"\n"):  # (a stray blank line between requests)
        line = rfile.readline(MAX_LINE)
    if not line:
        return None
    try:
        method, target, _ = line.decode("latin-1").split(" ", 2)
    except ValueError:
        raise BadRequest(f"malformed request line {line[:80]!r}") from None
    headers: dict[str, str] = {}
    while True:
        h = rfile.readline(MAX_LINE)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Request(conn, rfile, method.upper(), target, headers)


class Response:
    """Writes one answer on the connection; `common` headers (Api-Version, Server, ...) on each."""

    def __init__(self, conn: socket.socket, common: dict[str, str], head_only: bool = False):
        self.conn, self.common, self.head_only = conn, common, head_only
        self.started = False
        self.status = 0
        self.writer: ChunkedWriter | None = None  # (the body of a stream, once started)

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        self.started, self.status = True, status
        lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'OK')}"]
        for k, v in {**self.common, **headers}.items():
            lines.append(f"{k}: {v}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> None:
        h = dict(headers or {})
        if status not in (204, 304):
            h = {"Content-Type": content_type, "Content-Length": str(len(body)), **h}
        self.conn.sendall(self._head(status, h) + (b"" if self.head_only or status in (204, 304) else body))

    def json(self, obj, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.send(status, (json.dumps(obj) + "\n").encode(), headers=headers)

    def error(self, status: int, message: str) -> None:
        self.json({"message": message}, status)

    def stream(self, content_type: str = "application/json", status: int = 200) -> "ChunkedWriter":
        """Start an answer whose length is not known: it goes out chunk by chunk."""
        self.conn.sendall(self._head(status, {"Content-Type": content_type, "Transfer-Encoding": "chunked"}))
        self.writer = ChunkedWriter(self.conn)
        return self.writer

    def abort(self) -> None:
        """A handler failed after its answer had begun: too late for a status. A stream gets
        its last chunk, so that the client is not left waiting for more (a whole answer, sent
        before the failure, needs nothing)."""
        if self.writer is not None and not self.writer.closed:
            self.writer.close()

    def hijack(self, req: Request, content_type: str) -> socket.socket:
        """Answer, then leave HTTP: from here on the socket carries the raw streams. A client
        that asked for "Upgrade: tcp" gets 101; an older one a 200 with no length."""
        req.hijacked = True
        if req.headers.get("upgrade", "").lower() == "tcp":
            head = self._head(101, {"Content-Type": content_type, "Connection": "Upgrade", "Upgrade": "tcp"})
        else:
            head = self._head(200, {"Content-Type": content_type})
        self.conn.sendall(head)
        return self.conn


class ChunkedWriter:
    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.closed = False

    def write(self, data: bytes) -> None:
        if data:  # (an empty chunk would end the body)
            self.conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))

    def json(self, obj) -> None:
        self.write((json.dumps(obj) + "\n").encode())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass
