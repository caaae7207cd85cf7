"""No cgroups: what a rootless runtime has when it may not write the cgroup tree.

Taught in notebook 04 (cgroups), for rootless mode (core/rootless.py). The cgroup files
belong to the host's root; a user namespace does not change that. Docker's rootless mode
then uses its "none" cgroup driver: containers run, but limits are discarded (with a
warning) and there is nothing to measure or freeze. (On a cgroup v2 host with systemd, a
user can be given a subtree: "delegation", which minidocker does not do yet.)
"""
from __future__ import annotations

from .base import CgroupError


class NoDriver:
    version = 0
    parent = ""

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

    def freeze(self, cid: str) -> None:
        raise CgroupError("cannot pause the container: pausing needs the freezer cgroup, "
                          "and rootless mode runs without cgroups")

    thaw = freeze

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
        return []  # /sys/fs/cgroup stays the empty directory sysfs has there
