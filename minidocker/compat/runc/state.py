"""A container between two `minidocker-runc` commands: <root>/<id>/state.json and exec.fifo.

runc keeps no daemon: each command reads the container's state from disk and looks at the
kernel (is the PID alive, is it the same process, is its cgroup frozen). `created` means its
init still waits in exec.fifo for `start`.
"""
from __future__ import annotations

import json
import os
import re
import time

from ... import gotime
from ...core import cgroups

DEFAULT_ROOT = "/run/minidocker-runc"
VALID_ID = re.compile(r"^[\w+\-.]+$")  # runc's rule for container ids


class RuncError(Exception):
    """One line on stderr (and in --log), exit status 1: how runc fails."""


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (when it started, in clock ticks): a PID reused by
    another process has another start time. None when gone (or a zombie: it has stopped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


class Container:
    def __init__(self, root: str, cid: str):
        if not VALID_ID.match(cid or ""):
            raise RuncError(f"invalid container id format: {cid}" if cid else "container id cannot be empty")
        self.root, self.id = root, cid
        self.dir = os.path.join(root, cid)
        self.fifo = os.path.join(self.dir, "exec.fifo")
        self.state: dict = {}

    def exists(self) -> bool:
        return os.path.exists(os.path.join(self.dir, "state.json"))

    def load(self) -> "Container":
        try:
            with open(os.path.join(self.dir, "state.json")) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            raise RuncError("container does not exist") from None
        return self

    def save(self) -> None:
        tmp = os.path.join(self.dir, "state.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.state, f)
        os.replace(tmp, os.path.join(self.dir, "state.json"))

    @property
    def pid(self) -> int:
        return self.state["pid"]

    def cgroup(self):
        return cgroups.driver(self.state["cgroup_parent"]), self.state["cgroup_name"]

    def alive(self) -> bool:
        return start_time(self.pid) == self.state.get("start_time")

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if os.path.exists(self.fifo):
            return "created"
        cg, name = self.cgroup()
        try:
            if cg.frozen(name):
                return "paused"
        except (OSError, cgroups.CgroupError):
            pass
        return "running"

    def oci_state(self) -> dict:
        """What `runc state` prints (the OCI runtime spec's state, plus runc's fields)."""
        status = self.status()
        out = {"ociVersion": self.state["ociVersion"], "id": self.id,
               "pid": 0 if status == "stopped" else self.pid, "status": status,
               "bundle": self.state["bundle"], "rootfs": self.state["rootfs"],
               "created": self.state["created"], "owner": ""}
        if self.state.get("annotations"):
            out["annotations"] = self.state["annotations"]
        return out

    def processes(self) -> list[int]:
        cg, name = self.cgroup()
        try:
            return cg.processes(name)
        except (OSError, cgroups.CgroupError):
            return [self.pid] if self.alive() else []


def new_state(cid: str, pid: int, bundle_dir: str, rootfs: str, spec: dict, parent: str, name: str) -> dict:
    return {"id": cid, "pid": pid, "start_time": start_time(pid), "bundle": bundle_dir, "rootfs": rootfs,
            "created": gotime.rfc3339nano(time.time_ns()), "ociVersion": spec.get("ociVersion", "1.0.2-dev"),
            "annotations": spec.get("annotations") or {}, "cgroup_parent": parent, "cgroup_name": name,
            "hooks": spec.get("hooks") or {}}


def all_ids(root: str) -> list[str]:
    try:
        return sorted(d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, "state.json")))
    except FileNotFoundError:
        return []
