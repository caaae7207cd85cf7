"""The server: listen where -H says, read requests, route them, answer errors Docker's way.

One thread per connection (a client keeps its connection for many requests, and attach or
`logs -f` may hold one for hours). The engine's work happens in this process, except for what
it already does in helper processes (container monitors, exec, cp): never a fork() here, the
process is multi-threaded. State lives on disk under the same locks the CLI takes.
"""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import traceback

from ... import __version__
from ...errors import Conflict, InvalidArgument, InvalidState, MinidockerError, NotFound
from .http import (API_VERSION, MIN_API_VERSION, BadRequest, HTTPError, Request, Response,  # noqa: F401
                   read_request, version_tuple)

DEFAULT_SOCKET = "/run/minidocker.sock"


def status_of(e: MinidockerError) -> int:
    """Docker's HTTP status for each kind of error (moby's errdefs)."""
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, (Conflict, InvalidState)):
        return 409
    if isinstance(e, InvalidArgument):
        return 400
    return 500


# ---------------------------------------------------------------- routing
class Router:
    """(method, "/containers/{id}/json") -> handler(req, resp). `{name}` matches one path
    segment; `{name*}` matches the rest (image names have slashes: /images/a/b:1/json)."""

    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, callable]] = []

    def add(self, method: str, pattern: str, handler) -> None:
        rx = re.sub(r"\{(\w+)\*\}", r"(?P<\1>.+)", pattern)
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", rx)
        self.routes.append((method, re.compile(f"^{rx}$"), handler))

    def find(self, method: str, path: str):
        allowed = False
        for m, rx, handler in self.routes:
            match = rx.match(path)
            if match:
                if m == method or (method == "HEAD" and m == "GET"):
                    return handler, match.groupdict()
                allowed = True
        raise HTTPError(405 if allowed else 404, "page not found" if not allowed else "method not allowed")


def build_router() -> Router:
    from . import containers, execs, images, objects, system
    r = Router()
    for module in (system, containers, execs, images, objects):
        for method, pattern, handler in module.ROUTES:
            r.add(method, pattern, handler)
    return r


VERSIONED = re.compile(r"^/v(\d+\.\d+)(/.*)$")


def split_version(path: str) -> tuple[str, str]:
    """/v1.41/containers/json -> ("1.41", "/containers/json"); no prefix: the newest."""
    m = VERSIONED.match(path)
    return (m.group(1), m.group(2)) if m else (API_VERSION, path)


# ---------------------------------------------------------------- one connection
class Server:
    def __init__(self, hosts: list[str], root: str | None = None, log=None):
        self.hosts = hosts or [f"unix://{DEFAULT_SOCKET}"]
        self.root = root
        self.router = build_router()
        self.log = log
        self.listeners: list[socket.socket] = []
        self.parked, self.parked_lock = {}, threading.Lock()   # attaches waiting for a start
        self.execs, self.execs_lock = {}, threading.Lock()     # exec instances (in memory, as dockerd's)
        self.common = {"Api-Version": API_VERSION, "Docker-Experimental": "false", "Ostype": "linux",
                       "Server": f"Docker/{__version__} (linux; minidocker)"}

    def runtime(self):
        from ...engine.runtime import Runtime
        return Runtime(self.root)

    def bind(self) -> None:
        for host in self.hosts:
            self.listeners.append(listen(host))

    def serve_forever(self) -> None:
        threads = [threading.Thread(target=self._accept_loop, args=(s,), daemon=True) for s in self.listeners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def close(self) -> None:
        for s in self.listeners:
            try:
                path = s.getsockname()
                s.close()
                if isinstance(path, str) and path:
                    os.unlink(path)
            except OSError:
                pass

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        try:
            while True:
                try:
                    req = read_request(conn, rfile)
                except BadRequest as e:
                    Response(conn, self.common).error(400, str(e))
                    return
                if req is None:
                    return
                resp = Response(conn, self.common, head_only=req.method == "HEAD")
                self.dispatch(req, resp)
                if req.hijacked:
                    return  # the handler owned the socket from its answer on, and is done with it
                req.drain()
                if req.headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, BrokenPipeError, OSError):
            pass  # the client went away
        finally:
            try:
                rfile.close()
                conn.close()
            except OSError:
                pass

    def dispatch(self, req: Request, resp: Response) -> None:
        req.version, req.path = split_version(req.raw_path)
        try:
            if version_tuple(req.version) > version_tuple(API_VERSION):
                raise HTTPError(400, f"client version {req.version} is too new. "
                                     f"Maximum supported API version is {API_VERSION}")
            if version_tuple(req.version) < version_tuple(MIN_API_VERSION):
                raise HTTPError(400, f"client version {req.version} is too old. "
                                     f"Minimum supported API version is {MIN_API_VERSION}, "
                                     "please upgrade your client to a newer version")
            handler, req.params = self.router.find(req.method, req.path)
            handler(self, req, resp)
        except HTTPError as e:
            self._fail(resp, e.status, str(e))
        except BadRequest as e:
            self._fail(resp, 400, str(e))
        except MinidockerError as e:
            self._fail(resp, status_of(e), str(e))
        except (ConnectionError, BrokenPipeError):
            raise
        except Exception as e:  # noqa: BLE001 -- one request's bug must not end the server
            traceback.print_exc(file=sys.stderr)
            self._fail(resp, 500, f"{type(e).__name__}: {e}")
        finally:
            if self.log is not None:
                self.log(f"{req.method} {req.raw_path} -> {resp.status or '(stream)'}")

    @staticmethod
    def _fail(resp: Response, status: int, message: str) -> None:
        if resp.started:  # a stream had begun: too late for a status; end it, never leave it hanging
            resp.abort()
            return
        resp.error(status, message)


# ---------------------------------------------------------------- -H
def parse_host(host: str) -> tuple[str, str | tuple[str, int]]:
    """dockerd's -H: unix:///path, tcp://127.0.0.1:2375, fd:// is not supported (pure)."""
    if host.startswith("unix://"):
        return "unix", host[len("unix://"):] or DEFAULT_SOCKET
    if host.startswith("tcp://"):
        addr = host[len("tcp://"):]
        h, _, port = addr.rpartition(":")
        if not port.isdigit():
            raise InvalidArgument(f"invalid bind address format: {host}")
        return "tcp", (h or "127.0.0.1", int(port))
    raise InvalidArgument(f"invalid bind address format: {host} (unix:///path or tcp://host:port)")


def listen(host: str) -> socket.socket:
    kind, addr = parse_host(host)
    if kind == "unix":
        os.makedirs(os.path.dirname(addr) or ".", exist_ok=True)
        try:
            os.unlink(addr)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o117)  # 0660 from the start: no moment when others could connect
        try:
            s.bind(addr)
        finally:
            os.umask(old)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
    s.listen(128)
    return s
