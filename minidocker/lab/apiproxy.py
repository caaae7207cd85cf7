"""A logging proxy for the Docker Engine API on a unix socket: what a client asks a daemon.

Notebook 11 puts it between the docker CLI (or docker-py) and a daemon (`minidocker serve`,
or a private dockerd) to show the requests one `docker run` makes:

    python -m minidocker.lab.apiproxy --listen /tmp/p.sock --to /tmp/daemon.sock --log /tmp/p.log
    DOCKER_HOST=unix:///tmp/p.sock docker run --rm busybox echo hi

or from Python (a subprocess: never a thread serving sockets in the notebook's kernel):

    with ApiProxy.start("/tmp/p.sock", "/tmp/daemon.sock", "/tmp/p.log") as proxy:
        with proxy.capture() as seen:
            subprocess.run(["docker", "-H", proxy.url, "run", "--rm", "busybox", "echo", "hi"])
        sequence(seen)    # ['HEAD /_ping -> 200', 'POST /containers/create -> 201', ...]

Each accepted connection gets its own connection to the daemon; the bytes go both ways
unchanged, as they come. A copy of each direction is read by a small HTTP/1.1 parser, only to
find the messages' heads: the request line and the response status. Bodies are skipped by
their framing (Content-Length, or chunked: the size line, the data, CRLF, ..., a 0 chunk and
the trailers). When a connection leaves HTTP (a 101 answer to `Upgrade: tcp`, as attach and
exec start do: "hijacking"), both directions become raw streams and nothing more is parsed.

The log has one JSON object per line: one when a request's head has arrived (before it goes on
to the daemon): seq (the order the requests came in, over all connections), conn (which
connection), method, target (as sent: /v1.41/containers/create?name=web) and the client's
User-Agent; and one when its answer's head arrives (before the client sees it): the same seq and
the status (None if the connection closed without an answer). read_log() joins them. The pure parts (the parser,
reading and normalising a log) are tested without any daemon in tests/test_lab_apiproxy.py.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from urllib.parse import unquote, urlsplit

# ---------------------------------------------------------------- the parser (pure)
NONE, LENGTH, CHUNKED, RAW = "none", "length", "chunked", "raw"
MAX_HEAD = 1 << 20  # a head longer than this is not HTTP: stop parsing, keep forwarding


class Parser:
    """Finds the message heads in one direction of an HTTP/1.1 connection.

    feed(data) any number of bytes at a time; for each complete head, on_head(start_line,
    headers) is called (header names in lower case) and returns how the body that follows is
    framed: (NONE,), (LENGTH, n), (CHUNKED,) or (RAW,) (everything after it, up to the end of
    the connection, is not HTTP). A second element True after LENGTH/CHUNKED/NONE means "raw
    after this body" (a request that asked to upgrade the connection)."""

    def __init__(self, on_head):
        self.on_head = on_head
        self.buf = b""
        self.state = "head"
        self.left = 0
        self.raw_after = False
        self.heads = 0

    def feed(self, data: bytes) -> None:
        if self.state == RAW:
            return
        self.buf += data
        while self._step():
            pass

    def _end_of_message(self) -> None:
        self.state = RAW if self.raw_after else "head"
        if self.state == RAW:
            self.buf = b""

    def _step(self) -> bool:
        """Consume what can be consumed; False when more bytes are needed."""
        if self.state == RAW:
            self.buf = b""
            return False
        if self.state == "head":
            while self.buf.startswith(b"\r\n"):  # (a stray CRLF between messages)
                self.buf = self.buf[2:]
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self.state, self.buf = RAW, b""
                return False
            head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
            start, *lines = head.split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.heads += 1
            framing = self.on_head(start, headers)
            kind = framing[0]
            self.raw_after = bool(framing[-1]) if len(framing) > 1 and isinstance(framing[-1], bool) else False
            if kind == LENGTH and framing[1] > 0:
                self.state, self.left = LENGTH, framing[1]
            elif kind == CHUNKED:
                self.state = "chunk-size"
            elif kind == RAW:
                self.state, self.buf = RAW, b""
                return False
            else:
                self._end_of_message()
            return True
        if self.state == LENGTH:
            if not self.buf:
                return False
            take = min(self.left, len(self.buf))
            self.buf, self.left = self.buf[take:], self.left - take
            if self.left == 0:
                self._end_of_message()
            return True
        if self.state == "chunk-size":
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            line, self.buf = self.buf[:end], self.buf[end + 2:]
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self.state, self.buf = RAW, b""
                return False
            self.state, self.left = ("trailer", 0) if size == 0 else ("chunk-data", size)
            return True
        if self.state == "chunk-data":
            if not self.buf:
                return False
            take = min(self.left, len(self.buf))
            self.buf, self.left = self.buf[take:], self.left - take
            if self.left == 0:
                self.state = "chunk-crlf"
            return True
        if self.state == "chunk-crlf":
            if len(self.buf) < 2:
                return False
            self.buf, self.state = self.buf[2:], "chunk-size"
            return True
        if self.state == "trailer":  # trailer lines, up to an empty line
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            line, self.buf = self.buf[:end], self.buf[end + 2:]
            if not line:
                self._end_of_message()
            return True
        raise AssertionError(self.state)


def request_framing(headers: dict) -> tuple:
    """How a request's body is framed, and whether the connection leaves HTTP after it."""
    upgrade = "upgrade" in headers.get("connection", "").lower() or bool(headers.get("upgrade"))
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return (CHUNKED, upgrade)
    n = int(headers.get("content-length") or 0)
    return (LENGTH, n, upgrade) if n else (NONE, upgrade)


def response_framing(status: int, headers: dict, method: str = "GET", upgrade: bool = False) -> tuple:
    """How an answer's body is framed (RFC 9112 section 6.3, and Docker's hijack)."""
    if status == 101:
        return (RAW,)
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        return (NONE,)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return (CHUNKED,)
    if "content-length" in headers:
        n = int(headers["content-length"] or 0)
        return (LENGTH, n) if n else (NONE,)
    return (RAW,)  # no length: the body runs to the end of the connection (and an old-style hijack)


# ---------------------------------------------------------------- the proxy (a process of its own)
class Proxy:
    def __init__(self, listen: str, to: str, log: str):
        self.listen_path, self.to, self.log_path = listen, to, log
        self.seq = itertools.count(1)
        self.conns = itertools.count(1)
        self.lock = threading.Lock()
        self.log = open(log, "w", buffering=1)  # (a new proxy, a new log: seq starts at 1 again)
        self.listener = None

    def write(self, entry: dict) -> None:
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()

    def serve(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.listen_path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.listen_path)
        self.listener.listen(64)
        print(f"proxy listening on {self.listen_path}, forwarding to {self.to}", flush=True)
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self.connection, args=(client, next(self.conns)), daemon=True).start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            with contextlib.suppress(OSError):
                os.unlink(self.listen_path)
        self.log.close()

    def connection(self, client: socket.socket, conn: int) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.to)
        except OSError as e:
            with self.lock:
                seq = next(self.seq)
            self.write({"seq": seq, "conn": conn, "status": None, "error": f"cannot connect to {self.to}: {e}"})
            client.close()
            return
        pending: deque[dict] = deque()

        def on_request(start: str, headers: dict) -> tuple:
            method, target = (start.split(" ") + ["", ""])[:2]
            with self.lock:
                seq = next(self.seq)
            framing = request_framing(headers)
            entry = {"seq": seq, "conn": conn, "method": method, "target": target,
                     "upgrade": framing[-1], "agent": headers.get("user-agent", "")}
            pending.append(entry)
            self.write(entry)
            return framing

        def on_response(start: str, headers: dict) -> tuple:
            try:
                status = int(start.split(" ")[1])
            except (IndexError, ValueError):
                return (RAW,)
            if 100 <= status < 200 and status != 101:
                return (NONE,)  # an interim answer (100 Continue): the real one follows
            if not pending:  # (an answer to nothing: not HTTP as we know it)
                return (RAW,)
            entry = pending.popleft()
            self.write({"seq": entry["seq"], "status": status, "hijacked": status == 101})
            return response_framing(status, headers, entry["method"], entry.get("upgrade", False))

        requests, responses = Parser(on_request), Parser(on_response)
        back = threading.Thread(target=pump, args=(upstream, client, responses), daemon=True)
        back.start()
        pump(client, upstream, requests)
        back.join()
        for entry in pending:  # asked, never answered (the client or the daemon hung up)
            self.write({"seq": entry["seq"], "status": None, "hijacked": False})
        client.close()
        upstream.close()


def pump(src: socket.socket, dst: socket.socket, parser: Parser) -> None:
    """src -> dst until src ends; the parser reads each piece first (so that an answer is
    logged before the client sees it), then it goes on unchanged. The end is passed on as a
    half-close: a client that has sent all its input still reads the output."""
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            try:
                parser.feed(data)
            except Exception:  # noqa: BLE001 -- a parser bug must not cut the connection
                parser.state = RAW
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m minidocker.lab.apiproxy", description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="the unix socket clients connect to")
    ap.add_argument("--to", required=True, help="the daemon's unix socket")
    ap.add_argument("--log", required=True, help="where each request and its answer's status go (JSON lines)")
    ap.add_argument("--exit-with-parent", action="store_true",
                    help="end when the process that started it ends (a notebook's kernel that died)")
    args = ap.parse_args(argv)
    proxy = Proxy(args.listen, args.to, args.log)
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=watch, daemon=True).start()

    def stop(signo, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        proxy.serve()
    finally:
        proxy.close()
    return 0


# ---------------------------------------------------------------- reading the log (pure)
VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")
HEX_ID = re.compile(r"\b[0-9a-f]{64}\b|\b[0-9a-f]{12}\b")


def read_log(path: str) -> list[dict]:
    """The log's entries in the order the requests came in (seq), each request joined with its
    answer's line; a request still waiting for its answer has no "status" key."""
    entries: dict[int, dict] = {}
    with contextlib.suppress(FileNotFoundError):
        with open(path) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # (a line being written right now)
                if line.strip():
                    e = json.loads(line)
                    entries.setdefault(e["seq"], {}).update(e)
    return [entries[k] for k in sorted(entries)]


def split_target(target: str) -> tuple[str, str, str]:
    """"/v1.41/containers/create?name=web" -> ("1.41", "/containers/create", "name=web");
    no version prefix: ("", path, query)."""
    url = urlsplit(target)
    path = unquote(url.path)
    m = VERSIONED.match(path)
    version, path = (m.group(1), m.group(2)) if m else ("", path)
    return version, path, url.query


def normalise(text: str, names: dict[str, str] | None = None) -> str:
    """Container/exec/image ids (64 or 12 hex digits) become <id>; `names` replaces other
    strings that vary from run to run (a port, a temporary name) with fixed words."""
    for old, new in (names or {}).items():
        text = text.replace(old, new)
    return HEX_ID.sub("<id>", text)


def describe(entry: dict, names: dict[str, str] | None = None, status: bool = True) -> str:
    """One entry as a line: "POST /containers/<id>/wait?condition=removed -> 200"."""
    if "error" in entry:
        return f"(proxy: {entry['error']})"
    _, path, query = split_target(entry["target"])
    line = f"{entry['method']} {path}" + (f"?{unquote(query)}" if query else "")
    if status:
        line += f" -> {entry.get('status')}"
        if entry.get("hijacked"):
            line += " (then raw streams)"
    return normalise(line, names)


def sequence(entries: list[dict], names: dict[str, str] | None = None, status: bool = True,
             skip_ping: bool = False) -> list[str]:
    """The entries as lines, in order (skip_ping: without the version negotiation's /_ping)."""
    return [describe(e, names, status) for e in entries
            if not (skip_ping and split_target(e.get("target", ""))[1] == "/_ping")]


def api_versions(entries: list[dict]) -> list[str]:
    """The API versions the client put in its paths (the one it negotiated), in order, once each."""
    seen = []
    for e in entries:
        v = split_target(e.get("target", ""))[0]
        if v and v not in seen:
            seen.append(v)
    return seen


def client_name(entries: list[dict]) -> str:
    """Who sent them, from the User-Agent without its version: "Docker-Client", "docker-sdk-python"."""
    for e in entries:
        agent = e.get("agent") or ""
        if agent:
            return agent.split("/")[0]
    return ""


# ---------------------------------------------------------------- driving it from a notebook
class ApiProxy:
    """The proxy as a subprocess, stopped by its PID."""

    def __init__(self, proc: subprocess.Popen, listen: str, to: str, log: str):
        self.proc, self.socket, self.to, self.log = proc, listen, to, log
        self.stderr_text = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        """For docker -H / DOCKER_HOST / base_url."""
        return f"unix://{self.socket}"

    @classmethod
    def start(cls, listen: str, to: str, log: str, timeout: float = 20) -> "ApiProxy":
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (package_parent, os.environ.get("PYTHONPATH")) if p))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(listen)
        with open(log + ".stderr", "wb") as err:  # (a file, not a pipe: nobody reads it while it runs)
            proc = subprocess.Popen([sys.executable, "-m", "minidocker.lab.apiproxy", "--listen", listen, "--to", to,
                                     "--log", log, "--exit-with-parent"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=err, env=env)
        self = cls(proc, listen, to, log)
        # it says one line once it listens (no test connection: it would be logged)
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else b""
        if not line.startswith(b"proxy listening"):
            self.stop()
            raise RuntimeError(f"the API proxy did not start (exit status {proc.returncode}): "
                               f"{self.stderr_text or 'no answer in time'}")
        return self

    def entries(self, since: int = 0) -> list[dict]:
        """Logged entries whose seq is above `since`."""
        return [e for e in read_log(self.log) if e.get("seq", 0) > since]

    def last_seq(self) -> int:
        return max((e.get("seq", 0) for e in read_log(self.log)), default=0)

    @contextlib.contextmanager
    def capture(self, settle: float = 2.0):
        """`with proxy.capture() as seen:` ... seen holds the entries of the requests made
        inside the block, filled when it ends (a request still waiting for its answer, or for
        its connection to close, is waited for up to `settle` seconds)."""
        mark = self.last_seq()
        seen: list[dict] = []
        yield seen
        deadline = time.monotonic() + settle
        while True:
            got = self.entries(mark)
            if all("status" in e for e in got) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        seen.extend(got)

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM to its PID (it removes its socket), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        with contextlib.suppress(OSError):
            with open(self.log + ".stderr", "rb") as f:
                self.stderr_text = f.read().decode(errors="replace").strip()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)

    def __enter__(self) -> "ApiProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ApiProxy({self.socket} -> {self.to}, pid {self.pid})"


if __name__ == "__main__":
    sys.exit(main())
