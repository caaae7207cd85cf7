"""No cgroups: what a rootless runtime has when it may not write the cgroup tree.

Taught in notebook 04 (cgroups), for rootless mode (core/rootless.py). The cgroup files
belong to the host's root; a user namespace does not change that. Docker's rootless mode
then uses its "none" cgroup driver: containers run, but limits are discarded (with a
warning) and there is nothing to measure or freeze. (On a cgroup v2 host with systemd, a
user can be given a subtree: "delegation", which minidocker does not do yet.)
"""
from __future__ import annotations

import os

from .base import CgroupError


def own_cgroups(text: str) -> dict[str, str]:
    """/proc/self/cgroup ("4:memory:/user.slice", "1:name=systemd:/", "0::/") -> {controller:
    path}, the v2 line under "" (pure)."""
    out = {}
    for line in text.splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


class NoDriver:
    version = 0
    parent = ""

    def __init__(self, layout: str = "v2", hierarchies: dict[str, str] | None = None):
        self.layout = layout                 # the host's: "v1", "hybrid", "v2" (cgroups.detect_layout)
        self.hierarchies = hierarchies or {}  # v1: {controller: mount point}

    def path(self, cid: str) -> str:
        return ""

    def paths(self, cid: str) -> dict[str, str]:
        return {}

    def ids(self) -> list[str]:
        return []

    def create(self, cid: str, device_rules: list[str] | None = None) -> None:
        pass  # (no device rules either: in a user namespace mknod is refused anyway)

    def apply(self, cid: str, res: dict) -> None:
        pass

    def add_process(self, cid: str, pid: int) -> None:
        pass

    def frozen(self, cid: str) -> bool:
        return False

    def freeze(self, cid: str) -> None:  # (runc's words, as Docker's rootless mode shows them)
        raise CgroupError(f"Cannot pause container {cid}: OCI runtime pause failed: cannot toggle freezer: "
                          "cgroups not configured for container: unknown", exit_code=1)

    def thaw(self, cid: str) -> None:
        raise CgroupError(f"Cannot unpause container {cid}: OCI runtime resume failed: cannot toggle freezer: "
                          "cgroups not configured for container: unknown", exit_code=1)

    def sample(self, cid: str) -> dict:
        return {"cpu_usage_ns": 0, "memory_usage": 0, "memory_limit": -1, "memory_inactive_file": 0,
                "pids_current": 0, "pids_limit": -1, "blkio_read": 0, "blkio_write": 0, "oom_kills": 0}

    def oom_kills(self, cid: str) -> int:
        return 0

    def processes(self, cid: str) -> list[int]:
        return []

    def remove(self, cid: str) -> None:
        pass

    def remove_parent(self) -> bool:
        return False

    def container_mounts(self) -> list[tuple]:
        """What runc shows a rootless container: on v2 a cgroup2 mount (the cgroup namespace's
        root is the cgroup we are in); on v1 a tmpfs with each hierarchy bound read-only at
        the cgroup we are in (a new v1 mount is refused in a user namespace)."""
        if self.layout == "v2":
            return [("cgroup", "/sys/fs/cgroup", "cgroup2", 0, None)]
        with open("/proc/self/cgroup") as f:
            own = own_cgroups(f.read())
        out, seen = [("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=755")], set()
        for ctrl, mnt in sorted(self.hierarchies.items(), key=lambda kv: kv[1]):
            if mnt in seen or ctrl not in own:
                continue
            seen.add(mnt)
            source = os.path.join(mnt, own[ctrl].lstrip("/"))
            out.append((source, f"/sys/fs/cgroup/{os.path.basename(mnt)}", "bind", 0, None))
        return out
