"""pull, push and login against a real registry (Debian's docker-registry, distribution 2.8)
started on loopback for this module. Nothing here talks to the internet."""
import base64
import hashlib
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import MD, require_tool
from minidocker.images import registry as reg
from minidocker.images.platform import host_platform

pytestmark = pytest.mark.root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, workdir, htpasswd: str | None = None):
        self.port = free_port()
        self.data = os.path.join(workdir, "data")
        os.makedirs(self.data)
        auth = ""
        if htpasswd:
            path = os.path.join(workdir, "htpasswd")
            with open(path, "w") as f:
                f.write(htpasswd)
            auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {path}\n"
        cfg = os.path.join(workdir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {self.data}\n"
                    f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{self.port}\n{auth}")
        self.log = open(os.path.join(workdir, "log"), "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("docker-registry did not start")
                time.sleep(0.1)
        self.host = f"127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    require_tool("docker-registry")
    r = Registry(str(tmp_path_factory.mktemp("registry")))
    yield r
    r.stop()


@pytest.fixture
def other(tmp_path):
    """A second, empty state root: "another machine" that pulls what we pushed."""
    md2 = MD(str(tmp_path / "other"))
    yield md2
    md2("system", "prune", "-f")


def test_push_then_pull_on_another_machine(md, other, registry):
    name = f"{registry.host}/course/bb:1"
    md.ok("tag", "busybox", name)
    out = md.ok("push", name)
    assert f"The push refers to repository [{registry.host}/course/bb]" in out
    assert ": Pushed" in out and "1: digest: sha256:" in out
    assert ": Layer already exists" in md.ok("push", name)
    out = other.ok("pull", name)
    assert "Pull complete" in out and f"Status: Downloaded newer image for {name}" in out
    assert out.strip().endswith(name)
    assert other.ok("run", "--rm", "--network", "none", name, "echo", "pulled") == "pulled\n"
    ours = json.loads(md.ok("image", "inspect", name))[0]
    theirs = json.loads(other.ok("image", "inspect", name))[0]
    assert ours["Id"] == theirs["Id"] and ours["RootFS"] == theirs["RootFS"]
    assert "Status: Image is up to date" in other.ok("pull", name)
    r = other("pull", f"{registry.host}/course/nosuch:1")
    assert r.returncode == 1 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_corrupt_blob_leaves_nothing(md, other, registry):
    name = f"{registry.host}/course/fragile:1"
    md.ok("run", "--name", "frag", "--network", "none", "busybox", "sh", "-c", "head -c 20000 /dev/urandom > /blob")
    try:
        md.ok("commit", "frag", name)
        md.ok("push", name)
    finally:
        md("rm", "-f", "frag")
    # corrupt the biggest... no: the newest layer blob in the registry's storage
    blobs = os.path.join(registry.data, "docker/registry/v2/blobs/sha256")
    manifest = json.loads(urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
        urllib.request.Request(f"http://{registry.host}/v2/course/fragile/manifests/1",
                               headers={"Accept": reg.DOCKER_MANIFEST})).read())
    digest = manifest["layers"][-1]["digest"].split(":")[1]
    path = os.path.join(blobs, digest[:2], digest, "data")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    before_layers = sorted(os.listdir(os.path.join(other.root, "overlay2"))) if os.path.isdir(
        os.path.join(other.root, "overlay2")) else []
    r = other("pull", name)
    assert r.returncode == 1 and "verification failed" in r.stderr
    assert name.split("/", 1)[1] not in other.ok("images")
    after = [x for x in os.listdir(os.path.join(other.root, "overlay2")) if x != "l"]
    # the base layer may have arrived; the corrupt one never did
    assert len(after) <= len([x for x in before_layers if x != "l"]) + 1
    assert os.listdir(os.path.join(other.root, "tmp")) == []


def test_multi_arch_index_picks_this_machine(md, other, registry):
    """Push two single-platform images, then an index naming both: pull takes ours."""
    base = f"{registry.host}/course/multi"
    md.ok("tag", "busybox", f"{base}:amd")
    md.ok("push", f"{base}:amd")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(path, accept=reg.DOCKER_MANIFEST):
        with opener.open(urllib.request.Request(f"http://{registry.host}/v2/course/multi/{path}",
                                                headers={"Accept": accept})) as resp:
            return resp.read()
    real = get("manifests/amd")
    plat = host_platform()
    other_arch = "s390x" if plat["architecture"] != "s390x" else "amd64"
    index = {"schemaVersion": 2, "mediaType": reg.DOCKER_LIST, "manifests": [
        {"mediaType": reg.DOCKER_MANIFEST, "size": len(real), "digest": "sha256:" + hashlib.sha256(real).hexdigest(),
         "platform": {"os": "linux", "architecture": other_arch}},
        {"mediaType": reg.DOCKER_MANIFEST, "size": len(real), "digest": "sha256:" + hashlib.sha256(real).hexdigest(),
         "platform": {k: v for k, v in plat.items()}},
    ]}
    body = json.dumps(index).encode()
    opener.open(urllib.request.Request(f"http://{registry.host}/v2/course/multi/manifests/all", data=body,
                                       method="PUT", headers={"Content-Type": reg.DOCKER_LIST})).close()
    out = other.ok("pull", f"{base}:all")
    assert f"Digest: sha256:{hashlib.sha256(body).hexdigest()}" in out
    r = other("pull", "--platform", "linux/mips64le", f"{base}:all")
    assert r.returncode == 1 and "no matching manifest for linux/mips64le in the manifest list entries" in r.stderr


def test_select_platform_pure():
    idx = {"manifests": [{"digest": "a", "platform": {"os": "linux", "architecture": "arm", "variant": "v6"}},
                         {"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
                         {"digest": "c", "platform": {"os": "linux", "architecture": "amd64"}}]}
    assert reg.select_platform(idx, {"os": "linux", "architecture": "arm", "variant": "v7"})["digest"] == "b"
    assert reg.select_platform(idx, {"os": "linux", "architecture": "amd64"})["digest"] == "c"
    assert reg.parse_www_authenticate('Bearer realm="https://a/token",service="s",scope="repository:x:pull"') == \
        ("bearer", {"realm": "https://a/token", "service": "s", "scope": "repository:x:pull"})
    assert reg.registry_host("docker.io") == "registry-1.docker.io"
    assert reg.is_insecure("127.0.0.1:5000") and reg.is_insecure("localhost") and not reg.is_insecure("ghcr.io")


@pytest.fixture
def private_registry(tmp_path):
    import bcrypt
    require_tool("docker-registry")
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    r = Registry(str(tmp_path / "private"), htpasswd=f"student:{hashed}\n")
    yield r
    r.stop()


def test_login_to_a_private_registry(md, private_registry, tmp_path):
    env_cfg = str(tmp_path / "cfg")
    md.env["MINIDOCKER_CONFIG"] = env_cfg
    name = f"{private_registry.host}/private/bb:1"
    md.ok("tag", "busybox", name)
    r = md("push", name)
    assert r.returncode == 1 and "unauthorized: authentication required" in r.stderr
    r = md("login", "-u", "student", "--password-stdin", private_registry.host, input="wrong\n")
    assert r.returncode == 1 and "unauthorized" in r.stderr
    out = md.ok("login", "-u", "student", "--password-stdin", private_registry.host, input="s3cret\n")
    assert out.strip().endswith("Login Succeeded")
    saved = json.load(open(os.path.join(env_cfg, "config.json")))
    assert base64.b64decode(saved["auths"][private_registry.host]["auth"]) == b"student:s3cret"
    assert oct(os.stat(os.path.join(env_cfg, "config.json")).st_mode)[-3:] == "600"
    assert ": Pushed" in md.ok("push", name)
    assert md.ok("logout", private_registry.host).startswith("Removing login credentials")


class TokenGate(http.server.BaseHTTPRequestHandler):
    """Docker Hub's scheme in miniature, on loopback: /token hands out bearer tokens (for
    valid basic credentials); /v2/... demands one, then forwards to the real registry."""
    upstream = ""
    tokens: set = set()

    def log_message(self, *a):
        pass

    def do_GET(self):
        self._handle()

    def do_HEAD(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def _handle(self):
        host = f"127.0.0.1:{self.server.server_address[1]}"
        if self.path.startswith("/token"):
            auth = self.headers.get("Authorization", "")
            if auth != "Basic " + base64.b64encode(b"student:s3cret").decode():
                self.send_response(401)
                self.end_headers()
                return
            token = os.urandom(8).hex()
            TokenGate.tokens.add(token)
            body = json.dumps({"token": token}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.headers.get("Authorization", "").removeprefix("Bearer ") not in TokenGate.tokens:
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="gate"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "content-type")}
        req = urllib.request.Request(self.upstream + self.path, data=data, method=self.command, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            resp = opener.open(req)
            code = resp.status
        except urllib.error.HTTPError as e:
            resp, code = e, e.code
        body = resp.read() if self.command != "HEAD" else b""
        self.send_response(code)
        for k, v in resp.headers.items():
            if k.lower() in ("content-type", "docker-content-digest", "location", "content-length"):
                if k.lower() == "location":
                    v = v.replace(self.upstream, f"http://{host}")
                self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


def test_bearer_token_flow(md, registry, tmp_path):
    TokenGate.upstream = f"http://{registry.host}"
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TokenGate)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        gate = f"127.0.0.1:{srv.server_address[1]}"
        md.env["MINIDOCKER_CONFIG"] = str(tmp_path / "cfg")
        name = f"{gate}/course/gated:1"
        md.ok("tag", "busybox", name)
        r = md("push", name)
        assert r.returncode == 1  # no credentials: the token endpoint says no
        md.ok("login", "-u", "student", "--password-stdin", gate, input="s3cret\n")
        assert "digest: sha256:" in md.ok("push", name)
        md.ok("rmi", name)
        assert "Pull complete" in md.ok("pull", name) or "Already exists" in md.ok("pull", name)
        assert TokenGate.tokens  # tokens were handed out and used
    finally:
        srv.shutdown()
        srv.server_close()
