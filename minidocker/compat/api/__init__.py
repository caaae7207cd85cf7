"""A Python client shaped like docker-py (`docker.from_env()`), for notebooks and scripts.

    import minidocker
    client = minidocker.from_env()
    client.containers.run("busybox", "echo hello")            # b'hello\\n'
    c = client.containers.run("busybox", "sleep 30", detach=True, name="napper",
                              ports={"80/tcp": 8080}, volumes=["data:/data"], mem_limit="64m")
    c.status, c.attrs["State"]["Pid"]                         # 'running', 12345
    c.exec_run("hostname").output                             # b'0123456789ab\\n'
    c.stop(timeout=1); c.wait()                               # {'StatusCode': 137, 'Error': None}
    c.remove()
    client.networks.create("backend"); client.volumes.list(); client.images.pull("busybox")

Every call is a request of Docker's Engine API, answered by the same handlers as
`minidocker serve` (compat/server): in this process by default (each request on a socketpair
served by a thread: no daemon to start, and never a fork() in the notebook's kernel), or by a
running server with `minidocker.from_env(base_url="unix:///run/minidocker.sock")`. The state
root is the CLI's, so a notebook and a terminal see the same containers.
"""
from __future__ import annotations

import os

from ...errors import Conflict, InvalidArgument, MinidockerError, NotFound  # noqa: F401
from .containers import Container, ContainerCollection, ContainerError, ExecResult  # noqa: F401
from .images import BuildError, Image, ImageCollection  # noqa: F401
from .objects import Network, NetworkCollection, Volume, VolumeCollection  # noqa: F401
from .transport import APIError, ImageNotFound, Transport  # noqa: F401


class Client:
    """docker-py's DockerClient: containers, images, networks, volumes, and the system calls."""

    def __init__(self, root: str | None = None, base_url: str | None = None):
        self.api = Transport(root=root, base_url=base_url)
        self._root = root
        self.containers = ContainerCollection(self)
        self.images = ImageCollection(self)
        self.networks = NetworkCollection(self)
        self.volumes = VolumeCollection(self)

    @property
    def runtime(self):
        """The engine itself (in process only): what the notebooks' extras read directly
        (raw cgroup counters, the layers of an image)."""
        if self.api.server is None:
            raise MinidockerError("this client talks to a server: the engine is in another process")
        return self.api.server.runtime()

    def ping(self) -> bool:
        return self.api.open("GET", "/_ping").read() == b"OK"

    def version(self) -> dict:
        return self.api.json("GET", "/version")

    def info(self) -> dict:
        return self.api.json("GET", "/info")

    def df(self) -> dict:
        return self.api.json("GET", "/system/df")

    def events(self, since=None, until=None, filters: dict | None = None, decode: bool = False):
        """The event stream (a generator; with `until` it ends)."""
        import json
        stream = self.api.open("GET", "/events", {"since": since, "until": until, "filters": filters}).json_stream()
        return stream if decode else (json.dumps(ev).encode() for ev in stream)

    def close(self) -> None:
        pass  # (one connection per request: nothing stays open)


def from_env(root: str | None = None, base_url: str | None = None) -> Client:
    """A client on $MINIDOCKER_ROOT (or /var/lib/minidocker), like docker.from_env(); with
    `base_url` (or $MINIDOCKER_HOST) a client of a running `minidocker serve`."""
    return Client(root, base_url or os.environ.get("MINIDOCKER_HOST") or None)
