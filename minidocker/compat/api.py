"""A Python client shaped like docker-py (`docker.from_env()`), for notebooks and scripts.

    import minidocker
    client = minidocker.from_env()
    client.containers.run("busybox", "echo hello")            # b'hello\\n'
    c = client.containers.run("busybox", "sleep 30", detach=True, name="napper")
    c.status, c.attrs["State"]["Pid"]                         # 'running', 12345
    c.stop(timeout=1); c.wait()                               # {'StatusCode': 137, 'Error': None}
    c.remove()

The same verbs as the CLI, on the same state root, so a notebook and a terminal see the
same containers. Containers are started by a separate monitor process, never by fork()
in the (multi-threaded) notebook kernel.
"""
from __future__ import annotations

import shlex

from ..container import hostconfig, logs as logsmod
from ..engine.runtime import Runtime
from ..errors import MinidockerError, NotFound



class ContainerError(MinidockerError):
    """`containers.run()` of a command that exited non-zero (docker-py raises the same)."""

    def __init__(self, container: "Container", exit_status: int, command, image: str, stderr: bytes):
        self.container, self.exit_status, self.command, self.image, self.stderr = (
            container, exit_status, command, image, stderr)
        err = f": {stderr.decode(errors='replace')}" if stderr else ""
        super().__init__(f"Command '{command}' in image '{image}' returned non-zero exit status "
                         f"{exit_status}{err}", exit_code=exit_status)


def _argv(command) -> list[str] | None:
    if command is None:
        return None
    return shlex.split(command) if isinstance(command, str) else list(command)


class Container:
    def __init__(self, rt: Runtime, attrs: dict):
        self._rt = rt
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"<Container: {self.short_id} {self.name}>"

    @property
    def id(self) -> str:
        return self.attrs["Id"]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def name(self) -> str:
        return self.attrs["Name"].lstrip("/")

    @property
    def status(self) -> str:
        return self.attrs["State"]["Status"]

    @property
    def pid(self) -> int:
        """Host PID of the container's PID 1 (0 when not running)."""
        return self.attrs["State"]["Pid"]

    @property
    def image(self) -> str:
        return self.attrs["Image"]

    def reload(self) -> "Container":
        self.attrs = self._rt.inspect(self.id)
        return self

    def start(self) -> None:
        self._rt.start(self.id)
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        self._rt.stop(self.id, timeout)
        self._reload_if_exists()

    def restart(self, timeout: int | None = None) -> None:
        self._rt.restart(self.id, timeout)
        self.reload()

    def kill(self, signal: str | int = "KILL") -> None:
        self._rt.kill(self.id, signal)
        self._reload_if_exists()

    def exec_run(self, cmd, user: str | None = None, workdir: str | None = None,
                 environment: dict | list | None = None, stdout: bool = True, stderr: bool = True,
                 demux: bool = False):
        """docker-py's exec_run: returns (exit_code, output). The command runs in a helper
        process that joins the container's namespaces and cgroup (setns), as `docker exec`."""
        if isinstance(environment, dict):
            environment = [f"{k}={v}" for k, v in environment.items()]
        code, out, err = self._rt.exec_run(self.id, _argv(cmd), user=user, workdir=workdir, env=environment)
        if demux:
            return code, (out if stdout else None, err if stderr else None)
        return code, (out if stdout else b"") + (err if stderr else b"")

    def pause(self) -> None:
        self._rt.pause(self.id)
        self.reload()

    def unpause(self) -> None:
        self._rt.unpause(self.id)
        self.reload()

    def update(self, mem_limit: str | int | None = None, memswap_limit: str | int | None = None,
               nano_cpus: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               pids_limit: int | None = None) -> None:
        """Change limits of a (running) container, like docker-py's Container.update."""
        res = hostconfig.resources(mem_limit, memswap_limit, cpus, nano_cpus, cpu_shares, pids_limit, updating=True)
        self._rt.update(self.id, res)
        self.reload()

    def stats_sample(self) -> dict:
        """Raw cgroup counters now (CPU ns, memory bytes, pids, ...)."""
        return self._rt.stats_sample(self.id)

    def stats(self, interval: float = 1.0) -> dict:
        """What `docker stats --no-stream` shows, as numbers (two samples `interval` apart)."""
        import time
        from ..core.cgroups import stats
        first = self.stats_sample()
        time.sleep(interval)
        return stats.row(first, self.stats_sample())

    def stats_series(self, seconds: float = 5.0, interval: float = 0.5) -> list[dict]:
        """Samples every `interval` for `seconds`: rows with a `t` (seconds since the first),
        ready to plot CPU % and memory over time in a notebook."""
        import time
        from ..core.cgroups import stats
        prev = self.stats_sample()
        t0 = prev["time"]
        out = [dict(stats.row(prev, prev), t=0.0)]
        while True:
            time.sleep(interval)
            try:
                cur = self.stats_sample()
            except MinidockerError:
                break  # the container stopped
            out.append(dict(stats.row(prev, cur), t=cur["time"] - t0))
            prev = cur
            if cur["time"] - t0 >= seconds:
                break
        return out

    def wait(self) -> dict:
        code = self._rt.wait(self.id)
        self._reload_if_exists()
        return {"StatusCode": code, "Error": None}

    def remove(self, force: bool = False) -> None:
        self._rt.remove(self.id, force=force)

    def logs(self, stdout: bool = True, stderr: bool = True, timestamps: bool = False,
             tail: int | str = "all") -> bytes:
        streams = {s for s, on in (("stdout", stdout), ("stderr", stderr)) if on}
        recs = logsmod.read(self.attrs["LogPath"], tail=None if tail == "all" else int(tail))
        return "".join(logsmod.format_record(r, timestamps) for r in recs
                       if r.get("stream") in streams).encode()

    def _reload_if_exists(self) -> None:
        try:
            self.reload()
        except NotFound:
            pass  # a --rm container removes itself when it stops


class ContainerCollection:
    def __init__(self, rt: Runtime):
        self._rt = rt

    def create(self, image: str, command=None, *, name: str | None = None,
               entrypoint: str | None = None, environment: dict | list | None = None,
               working_dir: str | None = None, user: str | None = None,
               hostname: str | None = None, tty: bool = False, stdin_open: bool = False,
               auto_remove: bool = False, labels: dict | None = None,
               mem_limit: str | int | None = None, memswap_limit: str | int | None = None,
               nano_cpus: int | None = None, cpus: float | None = None, cpu_shares: int | None = None,
               pids_limit: int | None = None, network: str | None = None, network_mode: str | None = None,
               ports: dict | None = None, publish_all_ports: bool = False,
               restart_policy: dict | None = None) -> Container:
        """docker-py's arguments (plus `cpus`, as on the command line).
        `ports={"80/tcp": 8080}` or `{"80/tcp": ("127.0.0.1", 8080)}` or `{"80/tcp": None}`;
        `restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}`."""
        if isinstance(environment, dict):
            environment = [f"{k}={v}" for k, v in environment.items()]
        res = hostconfig.resources(mem_limit, memswap_limit, cpus, nano_cpus, cpu_shares, pids_limit)
        publish = []
        for cport, host in (ports or {}).items():
            cport = str(cport)
            if host is None:
                publish.append(cport)
            elif isinstance(host, tuple):
                publish.append(f"{host[0]}:{host[1] or ''}:{cport}")
            else:
                publish.append(f"{host}:{cport}")
        cid = self._rt.create(image, _argv(command), name=name, entrypoint=entrypoint,
                              env=environment or [], workdir=working_dir, user=user,
                              hostname=hostname, tty=tty, stdin_open=stdin_open,
                              auto_remove=auto_remove, restart_policy=restart_policy, labels=labels,
                              resources=res, network=network or network_mode or "default", publish=publish,
                              publish_all=publish_all_ports)
        return self.get(cid)

    def run(self, image: str, command=None, *, detach: bool = False, remove: bool = False,
            stdout: bool = True, stderr: bool = False, **kwargs):
        """Like docker-py: detach=True returns the Container; otherwise waits and returns
        its output (bytes), raising ContainerError on a non-zero exit."""
        c = self.create(image, command, auto_remove=remove and detach, **kwargs)
        self._rt.start(c.id)
        if detach:
            return c.reload()
        code = self._rt.wait(c.id)
        c.reload()
        out = c.logs(stdout=stdout, stderr=stderr)
        err = c.logs(stdout=False, stderr=True)
        if remove:
            c.remove()
        if code != 0:
            raise ContainerError(c, code, command, image, err)
        return out

    def get(self, ref: str) -> Container:
        return Container(self._rt, self._rt.inspect(ref))

    def list(self, all: bool = False) -> list[Container]:
        return [Container(self._rt, r) for r in self._rt.list(all=all)]

    def prune(self) -> dict:
        removed, space = self._rt.prune()
        return {"ContainersDeleted": removed, "SpaceReclaimed": space}


class Image:
    def __init__(self, store, image):
        self._store, self._image = store, image
        self.id = image.id
        self.attrs = image.config

    def __repr__(self) -> str:
        return f"<Image: {', '.join(repr(t) for t in self.tags)}>"

    @property
    def short_id(self) -> str:
        return "sha256:" + self.id.split(":", 1)[1][:10]

    @property
    def tags(self) -> list[str]:
        return self._store.tags_of(self.id)

    def layers(self) -> list[dict]:
        """The image's layers, bottom first, as the overlay2 store keeps them (for the
        layer explorer in the notebooks)."""
        from ..images.store import chain_ids
        out = []
        for diff_id, chain in zip(self._image.diff_ids, chain_ids(self._image.diff_ids)):
            cache = self._store.layer_cache_id(chain)
            out.append({"diff_id": diff_id, "chain_id": chain, "cache_id": cache,
                        "diff_dir": self._store.driver.diff(cache),
                        "size": self._store.layer_size(chain)})
        return out


class ImageCollection:
    def __init__(self, rt: Runtime):
        self._rt = rt

    def get(self, name: str) -> Image:
        return Image(self._rt.images, self._rt.image(name))

    def list(self) -> list[Image]:
        store = self._rt.images
        return [Image(store, store.get(i)) for i in store.image_ids()]

    def build(self, path: str, tag: str | list[str] | None = None, dockerfile: str | None = None,
              buildargs: dict | None = None, target: str | None = None, nocache: bool = False,
              network_mode: str = "default", on_event=None) -> tuple["Image", list[dict]]:
        """Build like `docker build`; returns (image, the build's events). `on_event(ev)` sees
        each event as it happens ({"stream": "Step 1/3 : FROM busybox\n"}), e.g. to show
        the progress in a notebook while the build runs."""
        from .build.builder import Builder
        events: list[dict] = []

        def emit(ev):
            events.append(ev)
            if on_event:
                on_event(ev)
        tags = [tag] if isinstance(tag, str) else list(tag or [])
        image_id = Builder(self._rt, path, dockerfile=dockerfile, tags=tags, build_args=buildargs,
                           target=target, no_cache=nocache, network=network_mode, on_event=emit).build()
        return self.get(image_id), events

    def build_stream(self, path: str, **kwargs):
        """Yield the build's events while it runs (docker-py's low-level `build` stream).
        The build runs in a thread; containers are still started by separate processes."""
        import queue
        import threading
        q: queue.Queue = queue.Queue()
        result: dict = {}

        def work():
            try:
                result["image"] = self.build(path, on_event=q.put, **kwargs)[0]
            except Exception as e:  # reported to the consumer as docker-py does: an error event
                q.put({"error": str(e)})
            finally:
                q.put(None)
        t = threading.Thread(target=work, daemon=True)
        t.start()
        while (ev := q.get()) is not None:
            yield ev
        t.join()
        if "image" in result:
            yield {"aux": {"ID": result["image"].id}}


class Client:
    def __init__(self, root: str | None = None):
        self.runtime = Runtime(root)
        self.containers = ContainerCollection(self.runtime)
        self.images = ImageCollection(self.runtime)


def from_env(root: str | None = None) -> Client:
    """A client on $MINIDOCKER_ROOT (or /var/lib/minidocker), like docker.from_env()."""
    return Client(root)
