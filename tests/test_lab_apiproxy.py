"""The logging proxy of notebook 11 (lab/apiproxy.py) and its drawings (lab/stackview.py).

The parser and the log's reading are pure and tested byte by byte; the proxy itself runs as the
notebook runs it, a subprocess, between a raw socket client and a small fake daemon on unix
sockets in tmp_path (no root, no docker): bytes must pass unchanged both ways, through
keep-alive, chunked answers and a hijacked (101) connection, and the log must say what was asked."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from minidocker.lab import apiproxy, stackview


# ---------------------------------------------------------------- the parser
def heads_of(direction: str, stream: bytes, pieces: int, framing=None):
    """Feed `stream` in `pieces`-byte bits; the heads the parser found."""
    found = []

    def on_head(start, headers):
        found.append((start, headers))
        if framing is not None:
            return framing(start, headers)
        if direction == "request":
            return apiproxy.request_framing(headers)
        return apiproxy.response_framing(int(start.split()[1]), headers)
    p = apiproxy.Parser(on_head)
    for i in range(0, len(stream), pieces):
        p.feed(stream[i:i + pieces])
    return found, p


REQUESTS = (b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
            b"POST /v1.41/containers/create?name=web HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
            b"Content-Length: 27\r\n\r\n{\"Image\": \"GET / HTTP/1.1\"}"
            b"POST /v1.41/build HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\nb;ext=1\r\n HTTP/1.1 x\r\n0\r\nTrailer: y\r\n\r\n"
            b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n")


@pytest.mark.parametrize("pieces", [1, 3, 7, 4096])
def test_requests_are_found_whatever_the_pieces(pieces):
    found, p = heads_of("request", REQUESTS, pieces)
    assert [h[0] for h in found] == ["HEAD /_ping HTTP/1.1", "POST /v1.41/containers/create?name=web HTTP/1.1",
                                     "POST /v1.41/build HTTP/1.1", "GET /v1.41/containers/json HTTP/1.1"]
    assert found[1][1]["content-length"] == "27" and p.state == "head"  # (a body that looks like a request is skipped)


ANSWERS = (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK"
           b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"1e\r\n{\"Error\":null,\"StatusCode\":0}\n\r\n0\r\n\r\n"
           b"HTTP/1.1 204 No Content\r\n\r\n"
           b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
           b"\x01\x00\x00\x00\x00\x00\x00\x10HTTP/1.1 500 no\n")


@pytest.mark.parametrize("pieces", [1, 5, 4096])
def test_answers_until_the_connection_is_hijacked(pieces):
    found, p = heads_of("response", ANSWERS, pieces)
    assert [h[0] for h in found] == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 204 No Content",
                                     "HTTP/1.1 101 UPGRADED"]  # the raw stream after 101 is not HTTP
    assert p.state == apiproxy.RAW


def test_framing_rules():
    assert apiproxy.response_framing(200, {"content-length": "5"}, "HEAD") == (apiproxy.NONE,)
    assert apiproxy.response_framing(304, {}) == (apiproxy.NONE,)
    assert apiproxy.response_framing(200, {"content-length": "0"}) == (apiproxy.NONE,)
    assert apiproxy.response_framing(200, {}) == (apiproxy.RAW,)  # no length: to the end of the connection
    assert apiproxy.response_framing(200, {"transfer-encoding": "chunked"}) == (apiproxy.CHUNKED,)
    assert apiproxy.request_framing({"content-length": "3"}) == (apiproxy.LENGTH, 3, False)
    assert apiproxy.request_framing({"connection": "Upgrade", "upgrade": "tcp"}) == (apiproxy.NONE, True)
    # a request that asked to upgrade: after its body, its direction is raw (stdin, not requests)
    found, p = heads_of("request", b"POST /containers/x/attach HTTP/1.1\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"
                        b"GET /not/a/request HTTP/1.1\r\n\r\n", 2)
    assert len(found) == 1 and p.state == apiproxy.RAW


def test_a_head_that_never_ends_stops_the_parsing():
    found, p = heads_of("request", b"X" * (apiproxy.MAX_HEAD + 10), 65536)
    assert not found and p.state == apiproxy.RAW


# ---------------------------------------------------------------- reading the log
def entry(seq, method, target, status, conn=1, **kw):
    return {"seq": seq, "conn": conn, "method": method, "target": target, "status": status, **kw}


CID = "c" * 64


def test_describe_and_sequence():
    log = [entry(2, "POST", "/v1.41/containers/create", 201, agent="Docker-Client/20.10.24+dfsg1 (linux)"),
           entry(1, "HEAD", "/_ping", 200),
           entry(3, "POST", f"/v1.41/containers/{CID}/attach?stderr=1&stdout=1&stream=1", 101, conn=2, hijacked=True),
           entry(4, "POST", "/v1.41/images/create?fromImage=127.0.0.1%3A5000%2Fa%2Fb&tag=latest", 200)]
    log.sort(key=lambda e: e["seq"])
    assert apiproxy.sequence(log, {"127.0.0.1:5000": "<registry>"}) == [
        "HEAD /_ping -> 200", "POST /containers/create -> 201",
        "POST /containers/<id>/attach?stderr=1&stdout=1&stream=1 -> 101 (then raw streams)",
        "POST /images/create?fromImage=<registry>/a/b&tag=latest -> 200"]
    assert apiproxy.sequence(log, skip_ping=True, status=False)[0] == "POST /containers/create"
    assert apiproxy.api_versions(log) == ["1.41"]
    assert apiproxy.client_name(log) == "Docker-Client"
    assert apiproxy.split_target("/v1.45/exec/abc/start?x=1") == ("1.45", "/exec/abc/start", "x=1")
    assert apiproxy.normalise(f"{CID[:12]} and {CID}") == "<id> and <id>"
    assert apiproxy.describe({"seq": 0, "error": "cannot connect"}) == "(proxy: cannot connect)"


def test_read_log_joins_requests_and_answers_in_seq_order(tmp_path):
    path = tmp_path / "log"
    lines = [{"seq": 1, "conn": 1, "method": "GET", "target": "/a"},
             {"seq": 2, "conn": 2, "method": "GET", "target": "/b"},
             {"seq": 2, "status": 200, "hijacked": False}, {"seq": 1, "status": 404, "hijacked": False}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"seq": 3, "conn"')  # (the last: half written)
    got = apiproxy.read_log(str(path))
    assert [(e["target"], e["status"]) for e in got] == [("/a", 404), ("/b", 200)]
    path.write_text(json.dumps(lines[0]) + "\n")
    assert "status" not in apiproxy.read_log(str(path))[0]  # (still waiting for its answer)
    assert apiproxy.read_log(str(tmp_path / "none")) == []


# ---------------------------------------------------------------- the proxy, between a client and a fake daemon
class FakeDaemon:
    """Answers on a unix socket like a tiny Engine API: /_ping (length), /containers/json
    (chunked, in two chunks), /start (204), /attach (101, then echoes the raw bytes upper-cased
    until the client half-closes, then sends b'BYE' and closes)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        f = conn.makefile("rb")
        with conn:
            while True:
                line = f.readline()
                if not line:
                    return
                headers = {}
                while (h := f.readline()) not in (b"\r\n", b""):
                    k, _, v = h.decode().partition(":")
                    headers[k.strip().lower()] = v.strip()
                f.read(int(headers.get("content-length", 0)))
                method, target, _ = line.decode().split(" ")
                if target.endswith("/_ping"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")
                elif target.endswith("/containers/json"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n")
                    time.sleep(0.05)
                    conn.sendall(b"1\r\n]\r\n0\r\n\r\n")
                elif target.endswith("/start"):
                    conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                elif "/attach" in target:
                    conn.sendall(b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                    while data := f.read1(4096):
                        conn.sendall(data.upper())
                    conn.sendall(b"BYE")
                    return
                else:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def close(self):
        self.sock.close()


def read_answer(f):
    """One answer from a file on the socket: (status line, body)."""
    status = f.readline().decode().strip()
    headers = {}
    while (h := f.readline()) not in (b"\r\n", b""):
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while (size := int(f.readline().strip(), 16)):
            body += f.read(size)
            f.readline()
        f.readline()
        return status, body
    return status, f.read(int(headers.get("content-length", 0)))


def test_the_proxy_passes_everything_and_logs_each_request(tmp_path):
    daemon = FakeDaemon(str(tmp_path / "daemon.sock"))
    proxy = apiproxy.ApiProxy.start(str(tmp_path / "proxy.sock"), daemon.path, str(tmp_path / "proxy.log"))
    try:
        with proxy.capture() as seen:
            with socket.socket(socket.AF_UNIX) as c:   # keep-alive: three requests on one connection
                c.connect(proxy.socket)
                f = c.makefile("rb")
                c.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(f) == ("HTTP/1.1 200 OK", b"OK")
                c.sendall(b"GET /v1.41/containers/json HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_answer(f) == ("HTTP/1.1 200 OK", b"[]")
                c.sendall(f"POST /v1.41/containers/{CID}/start HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}"
                          .encode())
                assert read_answer(f) == ("HTTP/1.1 204 No Content", b"")
            with socket.socket(socket.AF_UNIX) as c:   # a hijacked connection: raw both ways, then half-closed
                c.connect(proxy.socket)
                c.sendall(b"POST /v1.41/containers/x/attach?stream=1 HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\n"
                          b"Connection: Upgrade\r\nUser-Agent: test-client/1.0\r\n\r\n")
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    head += c.recv(1)
                assert head.startswith(b"HTTP/1.1 101")
                c.sendall(b"GET /raw HTTP/1.1\r\n\r\n\x00\x01hi")  # raw stdin that looks like HTTP
                c.shutdown(socket.SHUT_WR)
                out = b""
                while chunk := c.recv(4096):
                    out += chunk
                assert out == b"GET /RAW HTTP/1.1\r\n\r\n\x00\x01HIBYE"
        assert apiproxy.sequence(seen) == [
            "GET /_ping -> 200", "GET /containers/json -> 200", "POST /containers/<id>/start -> 204",
            "POST /containers/x/attach?stream=1 -> 101 (then raw streams)"]
        assert len({e["conn"] for e in seen}) == 2 and apiproxy.client_name(seen) == "test-client"
    finally:
        proxy.stop()
        daemon.close()
    assert not proxy.running() and not os.path.exists(proxy.socket)


def test_a_request_without_an_answer_is_logged_when_the_connection_ends(tmp_path):
    silent = socket.socket(socket.AF_UNIX)  # accepts, reads, never answers, closes at once
    silent.bind(str(tmp_path / "silent.sock"))
    silent.listen(4)

    def hang_up():  # (every connection: the proxy's readiness probe makes one too)
        while True:
            try:
                conn, _ = silent.accept()
            except OSError:
                return
            conn.recv(4096)
            conn.close()
    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    with apiproxy.ApiProxy.start(str(tmp_path / "p.sock"), str(tmp_path / "silent.sock"),
                                 str(tmp_path / "p.log")) as proxy:
        with proxy.capture() as seen:
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(proxy.socket)
                c.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
                c.settimeout(10)
                assert c.recv(10) == b""
    silent.close()
    assert [(e["target"], e["status"]) for e in seen] == [("/version", None)]


def test_a_daemon_that_is_not_there_is_logged(tmp_path):
    with apiproxy.ApiProxy.start(str(tmp_path / "p.sock"), str(tmp_path / "nobody.sock"),
                                 str(tmp_path / "p.log")) as proxy:
        with proxy.capture() as seen:
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(proxy.socket)
                c.settimeout(10)
                assert c.recv(10) == b""  # (closed at once)
    assert len(seen) == 1 and apiproxy.describe(seen[0]).startswith("(proxy: cannot connect to ")


def test_the_proxy_ends_with_the_process_that_started_it(tmp_path):
    code = ("import sys\nfrom minidocker.lab import apiproxy\n"
            "p = apiproxy.ApiProxy.start(sys.argv[1], sys.argv[2], sys.argv[3])\nprint(p.pid, flush=True)\n")
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(apiproxy.__file__)))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.sock"), str(tmp_path / "none.sock"),
                          str(tmp_path / "p.log")], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(pkg)))
    pid = int(out.stdout)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break  # ended (a zombie until its new parent reaps it)
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the proxy outlived the process that started it")
    assert not os.path.exists(tmp_path / "p.sock")


# ---------------------------------------------------------------- the drawings
def test_the_stack_and_the_sequence_are_drawn():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    drawn = stackview.draw_stack(ax, highlight=("shim",))
    assert "dockerd" in drawn and "containerd" in drawn and "Registry" in drawn
    assert any("monitor" in d for d in drawn) and len(drawn) == 14
    log = [entry(1, "HEAD", "/_ping", 200),
           entry(2, "POST", f"/v1.41/containers/{CID}/attach?stream=1", 101, conn=2, hijacked=True),
           entry(3, "POST", f"/v1.41/containers/{CID}/wait?condition=removed", 200, conn=3),
           entry(4, "POST", f"/v1.41/containers/{CID}/start", 204)]
    rows = stackview.draw_sequence(ax, log, "docker CLI", "dockerd")
    assert rows == ["HEAD /_ping", "POST /containers/<id>/attach?stream=1",
                    "POST /containers/<id>/wait?condition=removed", "POST /containers/<id>/start"]
    assert [stackview.held_open(e) for e in log] == [False, True, True, False]
    plt.close(fig)
