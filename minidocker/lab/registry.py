"""A real image registry on loopback, for a notebook or a test: Debian's `docker-registry`
(distribution 2.8, the program behind Docker Hub's open-source registry), started on a free
port of 127.0.0.1 with its own data directory, stopped by its PID, its data removed.

    from minidocker.lab.registry import LocalRegistry
    with LocalRegistry.start() as reg:          # waits until GET /v2/ answers
        reg.host                                # '127.0.0.1:41234': tag images as <host>/name:tag
        reg.get_json("/v2/_catalog")            # {'repositories': [...]}
        reg.manifest("nb08/app", "1")           # (manifest dict, its digest)
    # stopped (SIGTERM to its PID, SIGKILL if it lingers), data directory gone

Nothing here reaches beyond 127.0.0.1: the server listens there, and the HTTP client ignores
any proxy settings of the environment. The pure pieces (config_yaml, free_port) are tested
without the program in tests/test_lab_registry.py.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

PROGRAM = "docker-registry"  # Debian/Ubuntu package docker-registry
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST,
                  "application/vnd.docker.distribution.manifest.list.v2+json",
                  "application/vnd.oci.image.index.v1+json")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def config_yaml(data_dir: str, port: int, host: str = "127.0.0.1") -> str:
    """The registry's configuration: storage in `data_dir`, deletes allowed, listening on
    host:port only, no auth, quiet logs."""
    if not host.startswith("127.") and host != "::1":
        raise ValueError(f"a lab registry listens on loopback only, not {host}")
    return (f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {data_dir}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {host}:{port}\n")


def find_program() -> str | None:
    return shutil.which(PROGRAM, path=os.environ.get("PATH", "") + ":/usr/bin:/usr/sbin")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy


class LocalRegistry:
    def __init__(self, workdir: str, port: int, proc: subprocess.Popen):
        self.workdir = workdir
        self.data = os.path.join(workdir, "data")
        self.port = port
        self.proc = proc
        self.host = f"127.0.0.1:{port}"
        self.url = f"http://{self.host}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(cls, base: str | None = None, timeout: float = 20) -> "LocalRegistry":
        """Start `docker-registry serve` on a free loopback port; return once /v2/ answers."""
        program = find_program()
        if program is None:
            raise FileNotFoundError(f"{PROGRAM} not found: apt-get install docker-registry")
        workdir = tempfile.mkdtemp(prefix="mdregistry-", dir=base)
        os.makedirs(os.path.join(workdir, "data"))
        last_error = None
        for _ in range(3):  # (another process may take the port between our check and the bind)
            port = free_port()
            cfg = os.path.join(workdir, "config.yml")
            with open(cfg, "w") as f:
                f.write(config_yaml(os.path.join(workdir, "data"), port))
            with open(os.path.join(workdir, "log"), "ab") as log:
                proc = subprocess.Popen([program, "serve", cfg], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            self = cls(workdir, port, proc)
            atexit.register(self.stop)
            try:
                self._wait(timeout)
                return self
            except RuntimeError as e:
                last_error = e
                self._end_process()
        shutil.rmtree(workdir, ignore_errors=True)
        raise RuntimeError(f"docker-registry did not start: {last_error}")

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"it exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                status, headers, _ = self.get("/v2/")
                if status == 200 and headers.get("Docker-Distribution-Api-Version") == "registry/2.0":
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"GET /v2/ did not answer within {timeout:g} s")

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.workdir, "log"), errors="replace") as f:
                return f.read()[-500:]
        except OSError:
            return ""

    # ------------------------------------------------------------------ the v2 API
    def get(self, path: str, accept: str | tuple[str, ...] | None = None,
            method: str = "GET") -> tuple[int, dict, bytes]:
        """(status, headers, body) of an HTTP request to the registry (errors included)."""
        headers = {}
        if accept:
            headers["Accept"] = accept if isinstance(accept, str) else ", ".join(accept)
        req = urllib.request.Request(self.url + path, headers=headers, method=method)
        try:
            with _OPENER.open(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get_json(self, path: str, accept=None) -> dict:
        status, _, body = self.get(path, accept)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)

    def manifest(self, repo: str, ref: str, accept=MANIFEST_TYPES) -> tuple[dict, str]:
        """A manifest as the registry serves it, and its digest (sha256 of those bytes, which
        the registry also sends as Docker-Content-Digest)."""
        status, headers, body = self.get(f"/v2/{repo}/manifests/{ref}", accept)
        if status != 200:
            raise RuntimeError(f"GET manifest {repo}:{ref}: {status} {body[:200]!r}")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        sent = headers.get("Docker-Content-Digest")
        if sent and sent != digest:
            raise RuntimeError(f"the registry says {sent}, the bytes hash to {digest}")
        return json.loads(body), digest

    def blob(self, repo: str, digest: str) -> bytes:
        status, _, body = self.get(f"/v2/{repo}/blobs/{digest}")
        if status != 200:
            raise RuntimeError(f"GET blob {digest}: {status}")
        return body

    # ------------------------------------------------------------------ the end
    def running(self) -> bool:
        return self.proc.poll() is None

    def _end_process(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # by its PID: only the process we started
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop the registry and remove its data; safe to call twice."""
        self._end_process()
        shutil.rmtree(self.workdir, ignore_errors=True)
        try:
            atexit.unregister(self.stop)
        except Exception:  # noqa: BLE001 -- at interpreter exit
            pass

    def __enter__(self) -> "LocalRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalRegistry({self.host}, pid {self.proc.pid}, {'running' if self.running() else 'stopped'})"
