"""The cgroup v2 driver: one tree, one directory per container.

    /sys/fs/cgroup/                         cgroup.subtree_control: "+cpu +memory +pids +io"
      minidocker/                           cgroup.subtree_control: the same (no processes here!)
        <container-id>/
          cgroup.procs     PIDs in the container
          memory.max       -m                     memory.current   usage now
          memory.swap.max  --memory-swap - -m     memory.events    "oom_kill N"
          cpu.max          "150000 100000"        cpu.stat         usage_usec
          cpu.weight       from --cpu-shares
          pids.max         --pids-limit           pids.current
          cgroup.freeze    1 = pause              cgroup.events    "frozen 1" once frozen
          (no file)        device rules: an eBPF program attached to the directory (devices.py)

Two rules trip people up, and the errors here name them:
  * a controller must be enabled in the parent's cgroup.subtree_control before a child
    can use its files;
  * "no internal processes": a cgroup (other than the root) that enables controllers for
    its children may not have processes of its own, so minidocker/ stays empty.
`root` is a parameter so the file logic is tested on a fake tree without root.
Taught in notebook 04 (cgroups).
"""
from __future__ import annotations

import os

from ..linux import bpf
from . import devices, limits
from .base import V2_CONTROLLERS, CgroupError, procs, read, read_int, read_keyed, rmdir, wait_until, write


def write_resources(paths: dict[str, str], res: dict) -> None:
    """Write linux.resources into the container's cgroup (`paths`: {"unified": its directory}).
    Absent = unlimited."""
    v = limits.file_values(res)
    p = paths["unified"]
    write(f"{p}/memory.max", v["memory"] or "max")
    if os.path.exists(f"{p}/memory.swap.max"):
        write(f"{p}/memory.swap.max", limits.v2_swap_max(v["memory"] or 0, v["memory_swap"]))
    write(f"{p}/cpu.max", f"{v['cpu_quota'] or 'max'} {v['cpu_period']}")
    write(f"{p}/cpu.weight", limits.shares_to_weight(v["cpu_shares"]) if v["cpu_shares"] else 100)
    write(f"{p}/pids.max", v["pids"] or "max")


def restrict_devices(path: str, rules: list[str] = devices.DEFAULT_RULES) -> None:
    """v2 has no devices.allow: Docker's device rules become an eBPF program on the cgroup."""
    try:
        bpf.restrict_devices(path, devices.encode(devices.program(rules)))
    except OSError as e:
        raise CgroupError(f"cannot apply the device rules to {path} (an eBPF program of type "
                          f"BPF_PROG_TYPE_CGROUP_DEVICE): {e}") from None


class V2Driver:
    version = 2

    def __init__(self, root: str = "/sys/fs/cgroup", parent: str = "minidocker", restrict=restrict_devices):
        self.root = root
        self.parent = parent
        self.restrict = restrict  # (a test on a fake tree of plain files passes its own)

    # --- where ---
    def path(self, cid: str) -> str:
        return os.path.join(self.root, self.parent, cid)

    def paths(self, cid: str) -> dict[str, str]:
        return {"unified": self.path(cid)}

    def ids(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(os.path.join(self.root, self.parent))
                          if os.path.isdir(os.path.join(self.root, self.parent, d)))
        except FileNotFoundError:
            return []

    # --- create ---
    def _enable(self, where: str, wanted: list[str]) -> None:
        have = read(os.path.join(where, "cgroup.subtree_control"), "").split()
        missing = [c for c in wanted if c not in have]
        if missing:
            write(os.path.join(where, "cgroup.subtree_control"), " ".join(f"+{c}" for c in missing))

    def setup_parent(self) -> None:
        available = read(os.path.join(self.root, "cgroup.controllers"), "").split()
        need = [c for c in V2_CONTROLLERS if c != "io"]
        lacking = [c for c in need if c not in available]
        if lacking:
            raise CgroupError(
                f"cgroup v2: the {', '.join(lacking)} controller(s) are not available in "
                f"{self.root}/cgroup.controllers (a v1 hierarchy may hold them, or the kernel lacks "
                "them); boot with systemd.unified_cgroup_hierarchy=1 or mount them into v2")
        wanted = [c for c in V2_CONTROLLERS if c in available]
        self._enable(self.root, wanted)
        parent = os.path.join(self.root, self.parent)
        os.makedirs(parent, exist_ok=True)
        self._enable(parent, wanted)

    def create(self, cid: str, device_rules: list[str] | None = None) -> None:
        """`device_rules`: as devices.allow lines (default: Docker's; devices.ALLOW_ALL: --privileged)."""
        self.setup_parent()
        os.makedirs(self.path(cid), exist_ok=True)
        if device_rules is None:
            self.restrict(self.path(cid))
        else:
            self.restrict(self.path(cid), device_rules)

    def apply(self, cid: str, res: dict) -> None:
        """Write the OCI spec's linux.resources (absent = unlimited)."""
        write_resources(self.paths(cid), res)

    def add_process(self, cid: str, pid: int) -> None:
        write(f"{self.path(cid)}/cgroup.procs", pid)

    # --- pause ---
    def _frozen(self, cid: str) -> bool:
        return read_keyed(f"{self.path(cid)}/cgroup.events").get("frozen") == 1

    def freeze(self, cid: str) -> None:
        write(f"{self.path(cid)}/cgroup.freeze", 1)
        wait_until(lambda: self._frozen(cid), what="the container to freeze (cgroup.events frozen 1)")

    def thaw(self, cid: str) -> None:
        write(f"{self.path(cid)}/cgroup.freeze", 0)
        wait_until(lambda: not self._frozen(cid), what="the container to thaw")

    def frozen(self, cid: str) -> bool:
        return self._frozen(cid)

    # --- measure ---
    def sample(self, cid: str) -> dict:
        p = self.path(cid)
        cpu = read_keyed(f"{p}/cpu.stat")
        mstat = read_keyed(f"{p}/memory.stat")
        rd = wr = 0
        try:
            for line in read(f"{p}/io.stat").splitlines():
                for kv in line.split()[1:]:
                    k, _, v = kv.partition("=")
                    rd += int(v) if k == "rbytes" else 0
                    wr += int(v) if k == "wbytes" else 0
        except (FileNotFoundError, OSError):
            pass
        return {
            "cpu_usage_ns": cpu.get("usage_usec", 0) * 1000,
            "memory_usage": read_int(f"{p}/memory.current"),
            "memory_limit": read_int(f"{p}/memory.max", -1),
            "memory_inactive_file": mstat.get("inactive_file", 0),
            "pids_current": read_int(f"{p}/pids.current"),
            "pids_limit": read_int(f"{p}/pids.max", -1),
            "blkio_read": rd, "blkio_write": wr,
            "oom_kills": self.oom_kills(cid),
        }

    def oom_kills(self, cid: str) -> int:
        return read_keyed(f"{self.path(cid)}/memory.events").get("oom_kill", 0)

    def processes(self, cid: str) -> list[int]:
        return procs(self.path(cid))

    # --- remove ---
    def remove(self, cid: str) -> None:
        p = self.path(cid)
        if os.path.isdir(p):
            if self._frozen(cid):
                self.thaw(cid)
            rmdir(p)

    def remove_parent(self) -> bool:
        try:
            os.rmdir(os.path.join(self.root, self.parent))
            return True
        except OSError:
            return False

    # --- inside the container ---
    def container_mounts(self) -> list[tuple]:
        """(source, target, fstype, extra flags, data): with a private cgroup namespace,
        a fresh cgroup2 mount shows the container's own cgroup as the root."""
        return [("cgroup", "/sys/fs/cgroup", "cgroup2", 0, None)]
