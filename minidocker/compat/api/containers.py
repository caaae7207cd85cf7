"""client.containers: docker-py's Container and ContainerCollection, over the Engine API.

Each method is one or a few Engine API requests, the same ones docker-py sends
(`c.exec_run("ls")` is POST /containers/{id}/exec, POST /exec/{id}/start, GET /exec/{id}/json),
so what a notebook does here is what the docker CLI does through `minidocker serve`.
"""
from __future__ import annotations

import base64
import json
import time
from collections import namedtuple

from ...errors import MinidockerError, NotFound
from . import runargs
from .model import Model
from .transport import ImageNotFound, demux

ExecResult = namedtuple("ExecResult", "exit_code,output")


class ContainerError(MinidockerError):
    """`containers.run()` of a command that exited non-zero (docker-py raises the same)."""

    def __init__(self, container: "Container", exit_status: int, command, image: str, stderr: bytes):
        self.container, self.exit_status, self.command, self.image, self.stderr = (
            container, exit_status, command, image, stderr)
        err = f": {stderr.decode(errors='replace')}" if stderr else ""
        super().__init__(f"Command '{command}' in image '{image}' returned non-zero exit status "
                         f"{exit_status}{err}", exit_code=exit_status)


def _output(reply, tty: bool, stdout: bool, stderr: bool, stream: bool, demux_: bool):
    """An attach/exec/logs stream as docker-py returns it: bytes, (out, err), or a generator."""
    frames = ((s, d) for s, d in demux(reply, tty) if (stdout if s == "stdout" else stderr))
    if stream:
        return ((d, None) if s == "stdout" else (None, d) for s, d in frames) if demux_ else (d for _, d in frames)
    if not demux_:
        return b"".join(d for _, d in frames)
    out, err = b"", b""
    for s, d in frames:
        if s == "stdout":
            out += d
        else:
            err += d
    return out or None, err or None


class Container(Model):
    # --- what inspect says ---
    @property
    def name(self) -> str:
        return self.attrs["Name"].lstrip("/")

    @property
    def status(self) -> str:
        return self.attrs["State"]["Status"]

    @property
    def health(self) -> str:
        return ((self.attrs["State"].get("Health") or {}).get("Status")) or "unknown"

    @property
    def pid(self) -> int:
        """Host PID of the container's PID 1 (0 when not running)."""
        return self.attrs["State"]["Pid"]

    @property
    def labels(self) -> dict:
        return self.attrs["Config"].get("Labels") or {}

    @property
    def ports(self) -> dict:
        return (self.attrs.get("NetworkSettings") or {}).get("Ports") or {}

    @property
    def image(self):
        return self.client.images.get(self.attrs["Image"])

    def reload(self) -> "Container":
        self.attrs = self.api.json("GET", f"/containers/{self.id}/json")
        return self

    def _reload_if_exists(self) -> None:
        try:
            self.reload()
        except NotFound:
            pass  # an auto-removed container is gone once it stopped

    # --- the lifecycle ---
    def start(self) -> None:
        self.api.call("POST", f"/containers/{self.id}/start")
        self.reload()

    def stop(self, timeout: int | None = None) -> None:
        self.api.call("POST", f"/containers/{self.id}/stop", {"t": timeout})
        self._reload_if_exists()

    def restart(self, timeout: int | None = None) -> None:
        self.api.call("POST", f"/containers/{self.id}/restart", {"t": timeout})
        self.reload()

    def kill(self, signal: str | int | None = None) -> None:
        self.api.call("POST", f"/containers/{self.id}/kill", {"signal": signal})
        self._reload_if_exists()

    def pause(self) -> None:
        self.api.call("POST", f"/containers/{self.id}/pause")
        self.reload()

    def unpause(self) -> None:
        self.api.call("POST", f"/containers/{self.id}/unpause")
        self.reload()

    def wait(self, timeout: float | None = None, condition: str | None = None) -> dict:
        """Blocks until the container stops: {"StatusCode": 137, "Error": None}."""
        reply = self.api.open("POST", f"/containers/{self.id}/wait", {"condition": condition})
        if timeout is not None:
            reply.sock.settimeout(timeout)
        result = reply.json()
        self._reload_if_exists()
        return {"StatusCode": result["StatusCode"], "Error": result.get("Error")}

    def remove(self, v: bool = False, link: bool = False, force: bool = False) -> None:
        self.api.call("DELETE", f"/containers/{self.id}", {"v": v, "force": force, "link": link})

    def rename(self, name: str) -> None:
        self.api.call("POST", f"/containers/{self.id}/rename", {"name": name})
        self.reload()

    def resize(self, height: int, width: int) -> None:
        self.api.call("POST", f"/containers/{self.id}/resize", {"h": height, "w": width})

    def update(self, **kw) -> dict:
        """docker-py's update (mem_limit, memswap_limit, cpu_shares, cpu_period, cpu_quota,
        restart_policy), plus nano_cpus, cpus and pids_limit as `docker update` has them."""
        body = {}
        for k, key in (("cpu_shares", "CpuShares"), ("cpu_period", "CpuPeriod"), ("cpu_quota", "CpuQuota"),
                       ("nano_cpus", "NanoCpus"), ("pids_limit", "PidsLimit")):
            if kw.get(k) is not None:
                body[key] = kw.pop(k)
        if kw.get("cpus") is not None:
            body["NanoCpus"] = int(round(float(kw.pop("cpus")) * 1e9))
        if kw.get("mem_limit") is not None:
            body["Memory"] = runargs._bytes(kw.pop("mem_limit"))
        if kw.get("memswap_limit") is not None:
            v = kw.pop("memswap_limit")
            body["MemorySwap"] = -1 if v in (-1, "-1") else runargs._bytes(v)
        if kw.get("restart_policy") is not None:
            body["RestartPolicy"] = kw.pop("restart_policy")
        unknown = [k for k, v in kw.items() if v is not None]
        if unknown:
            raise TypeError(f"update() got an unexpected keyword argument '{unknown[0]}'")
        out = self.api.json("POST", f"/containers/{self.id}/update", body=body)
        self.reload()
        return out

    # --- output ---
    def logs(self, stdout: bool = True, stderr: bool = True, stream: bool = False, timestamps: bool = False,
             tail: int | str = "all", since=None, follow: bool | None = None, until=None):
        """bytes, or with stream=True a generator of chunks as they are written (follow=True
        by default then, as in docker-py)."""
        follow = stream if follow is None else follow
        params = {"stdout": stdout, "stderr": stderr, "timestamps": timestamps, "follow": follow,
                  "tail": tail, "since": _epoch(since), "until": _epoch(until)}
        reply = self.api.open("GET", f"/containers/{self.id}/logs", params)
        return _output(reply, bool(self.attrs["Config"].get("Tty")), True, True, stream, False)

    def attach(self, stdout: bool = True, stderr: bool = True, stream: bool = False, logs: bool = False,
               demux: bool = False):
        params = {"stdout": stdout, "stderr": stderr, "stream": True, "logs": logs}
        reply = self.api.open("POST", f"/containers/{self.id}/attach", params, hijack=True)
        reply.sock.shutdown(1)  # (nothing for its stdin)
        return _output(reply, bool(self.attrs["Config"].get("Tty")), True, True, stream, demux)

    def exec_run(self, cmd, stdout: bool = True, stderr: bool = True, stdin: bool = False, tty: bool = False,
                 privileged: bool = False, user: str = "", detach: bool = False, stream: bool = False,
                 socket: bool = False, environment=None, workdir: str | None = None, demux: bool = False):
        """docker-py's exec_run: ExecResult(exit_code, output). The command runs in a helper
        process that joins the container's namespaces and cgroup (setns), as `docker exec`."""
        if isinstance(environment, dict):
            environment = [f"{k}={v}" for k, v in environment.items()]
        created = self.api.json("POST", f"/containers/{self.id}/exec", body={
            "AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty,
            "Privileged": privileged, "User": user, "Env": environment, "WorkingDir": workdir,
            "Cmd": runargs.split_command(cmd)})
        eid = created["Id"]
        if detach:
            self.api.call("POST", f"/exec/{eid}/start", body={"Detach": True, "Tty": tty})
            return ExecResult(None, b"")
        reply = self.api.open("POST", f"/exec/{eid}/start", body={"Detach": False, "Tty": tty}, hijack=True)
        if socket:
            return ExecResult(None, reply.sock)
        if not stdin:
            reply.sock.shutdown(1)
        output = _output(reply, tty, stdout, stderr, stream, demux)
        if stream:
            return ExecResult(None, output)
        return ExecResult(self.api.json("GET", f"/exec/{eid}/json")["ExitCode"], output)

    def top(self, ps_args: str | None = None) -> dict:
        return self.api.json("GET", f"/containers/{self.id}/top", {"ps_args": ps_args})

    def diff(self) -> list[dict]:
        return self.api.json("GET", f"/containers/{self.id}/changes") or []

    def stats(self, decode: bool | None = None, stream: bool = True, one_shot: bool | None = None):
        """Docker's stats JSON: one dict (stream=False), or a generator of them every second
        (decode=True) or of their bytes (as docker-py gives without decode)."""
        params = {"stream": stream, "one-shot": one_shot}
        reply = self.api.open("GET", f"/containers/{self.id}/stats", params)
        if not stream:
            return next(reply.json_stream())
        return reply.json_stream() if decode else (json.dumps(o).encode() for o in reply.json_stream())

    # --- files ---
    def export(self, chunk_size: int | None = None):
        return self.api.open("GET", f"/containers/{self.id}/export").chunks()

    def get_archive(self, path: str, chunk_size: int | None = None, encode_stream: bool = False):
        """(the tar's chunks, the path's stat), as `docker cp` from the container gets them."""
        reply = self.api.open("GET", f"/containers/{self.id}/archive", {"path": path})
        header = reply.headers.get("x-docker-container-path-stat")
        return reply.chunks(), (json.loads(base64.b64decode(header)) if header else None)

    def put_archive(self, path: str, data) -> bool:
        """Unpack a tar (bytes or a file) at `path`, which must exist."""
        return self.api.call("PUT", f"/containers/{self.id}/archive", {"path": path}, body=data) == 200

    def commit(self, repository: str | None = None, tag: str | None = None, message: str | None = None,
               author: str | None = None, changes=None, pause: bool = True, conf: dict | None = None):
        if isinstance(changes, str):
            changes = [changes]
        params = {"container": self.id, "repo": repository, "tag": tag, "comment": message, "author": author,
                  "pause": pause, "changes": tuple(changes or ())}
        out = self.api.json("POST", "/commit", params, body=conf or {})
        return self.client.images.get(out["Id"])

    # --- in-process extras for the notebooks (the raw counters the stats JSON is made of) ---
    def stats_sample(self) -> dict:
        """Raw cgroup counters now (CPU ns, memory bytes, pids, ...)."""
        return self.client.runtime.stats_sample(self.id)

    def stats_series(self, seconds: float = 5.0, interval: float = 0.5) -> list[dict]:
        """Samples every `interval` for `seconds`: rows with a `t` (seconds since the first),
        ready to plot CPU % and memory over time in a notebook."""
        from ...core.cgroups import stats
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


def _epoch(value):
    if value is None:
        return None
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return value


class ContainerCollection:
    def __init__(self, client):
        self.client, self.api = client, client.api

    def create(self, image: str, command=None, **kwargs) -> Container:
        """docker-py's arguments: `ports={"80/tcp": 8080}`, `volumes=["/src:/dst:ro"]`,
        `environment={"A": "1"}`, `mem_limit="64m"`, `restart_policy={"Name": "always"}`, ..."""
        body, name = runargs.create_body(image, command, **kwargs)
        created = self.api.json("POST", "/containers/create", {"name": name}, body=body)
        return self.get(created["Id"])

    def run(self, image: str, command=None, stdout: bool = True, stderr: bool = False,
            remove: bool = False, **kwargs):
        """Like docker-py: detach=True returns the Container; otherwise waits and returns its
        output (bytes, or a generator with stream=True), raising ContainerError on a non-zero
        exit. A missing image is pulled first."""
        stream = kwargs.pop("stream", False)
        detach = kwargs.pop("detach", False)
        if detach and remove:
            kwargs["auto_remove"] = True
        try:
            c = self.create(image, command, detach=detach, **kwargs)
        except ImageNotFound:
            self.client.images.pull(image)
            c = self.create(image, command, detach=detach, **kwargs)
        c.start()
        if detach:
            return c
        out = c.logs(stdout=stdout, stderr=stderr, stream=True, follow=True)
        code = c.wait()["StatusCode"]
        if code != 0:
            out = c.logs(stdout=False, stderr=True)
        elif not stream:
            out = b"".join(out)  # (all of it, before the container and its log go)
        if remove:
            c.remove()
        if code != 0:
            raise ContainerError(c, code, command, image, out)
        return out

    def get(self, container_id: str) -> Container:
        return Container(self.client, self.api.json("GET", f"/containers/{container_id}/json"))

    def list(self, all: bool = False, before: str | None = None, filters: dict | None = None,
             limit: int = -1, since: str | None = None, sparse: bool = False,
             ignore_removed: bool = False) -> list[Container]:
        rows = self.api.json("GET", "/containers/json", {"all": all, "limit": limit, "filters": filters,
                                                         "before": before, "since": since})
        if sparse:
            return [Container(self.client, r) for r in rows]
        out = []
        for r in rows:
            try:
                out.append(self.get(r["Id"]))
            except NotFound:
                if not ignore_removed:
                    raise
        return out

    def prune(self, filters: dict | None = None) -> dict:
        return self.api.json("POST", "/containers/prune", {"filters": filters})
