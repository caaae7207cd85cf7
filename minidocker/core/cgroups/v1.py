"""The cgroup v1 driver: one tree per controller, so one directory per controller per container.

    /sys/fs/cgroup/memory/minidocker/<id>/   memory.limit_in_bytes, memory.memsw.limit_in_bytes,
                                             memory.usage_in_bytes, memory.oom_control (oom_kill N)
    /sys/fs/cgroup/cpu/minidocker/<id>/      cpu.cfs_quota_us, cpu.cfs_period_us, cpu.shares
    /sys/fs/cgroup/cpuacct/minidocker/<id>/  cpuacct.usage (nanoseconds of CPU used)
    /sys/fs/cgroup/pids/minidocker/<id>/     pids.max, pids.current
    /sys/fs/cgroup/freezer/minidocker/<id>/  freezer.state: THAWED / FREEZING / FROZEN
    /sys/fs/cgroup/devices/minidocker/<id>/  devices.deny "a", then devices.allow per device

A process joins by writing its PID into `cgroup.procs` of *every* one of those trees.
Used on pure v1 hosts and on hybrid hosts (v1 controllers + an empty v2 tree), as Docker does.

The devices controller matters for security: the container's root may create device
nodes (CAP_MKNOD), but may only *open* the harmless ones allowed here. Taught in notebook 04.
"""
from __future__ import annotations

import os

from . import devices, limits
from .base import V1_CONTROLLERS, CgroupError, procs, read, read_int, read_keyed, rmdir, wait_until, write

DEVICE_RULES = devices.DEFAULT_RULES  # Docker's: mknod anything, open only the harmless ones


def write_resources(paths: dict[str, str], res: dict) -> None:
    """Write linux.resources into the container's cgroup, one directory per controller
    (`paths`: {"memory": ".../memory/minidocker/<id>", "cpu": ..., "pids": ...}). Absent = unlimited."""
    v = limits.file_values(res)
    mem = paths["memory"]
    writes = [(f"{mem}/memory.limit_in_bytes", v["memory"] or -1)]
    if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):  # swap accounting is on
        writes.append((f"{mem}/memory.memsw.limit_in_bytes", v["memory_swap"] or -1))
    # The kernel insists that memory <= memory+swap after every write: if raising the
    # memory limit above the current memsw fails, raise memsw first.
    try:
        for f, value in writes:
            write(f, value)
    except CgroupError:
        for f, value in reversed(writes):
            write(f, value)
    cpu = paths["cpu"]
    write(f"{cpu}/cpu.cfs_period_us", v["cpu_period"])
    write(f"{cpu}/cpu.cfs_quota_us", v["cpu_quota"] or -1)
    write(f"{cpu}/cpu.shares", v["cpu_shares"] or 1024)
    write(f"{paths['pids']}/pids.max", v["pids"] or "max")


class V1Driver:
    version = 1

    def __init__(self, hierarchies: dict[str, str], parent: str = "minidocker", hybrid: bool = False):
        self.hierarchies = hierarchies  # controller -> mount point
        self.parent = parent
        self.hybrid = hybrid

    # --- where ---
    def _mount(self, controller: str) -> str:
        try:
            return self.hierarchies[controller]
        except KeyError:
            raise CgroupError(
                f"cgroup v1: the {controller} controller is not mounted (expected "
                f"/sys/fs/cgroup/{controller}): mount it with `mount -t cgroup -o {controller} "
                f"cgroup /sys/fs/cgroup/{controller}`") from None

    def cpath(self, controller: str, cid: str) -> str:
        return os.path.join(self._mount(controller), self.parent, cid)

    def paths(self, cid: str) -> dict[str, str]:
        return {c: self.cpath(c, cid) for c in V1_CONTROLLERS if c in self.hierarchies}

    def path(self, cid: str) -> str:
        return self.cpath("memory", cid)

    def _dirs(self, cid: str) -> list[str]:
        # co-mounted controllers (e.g. cpu,cpuacct) share one directory
        return sorted(set(self.paths(cid).values()))

    def ids(self) -> list[str]:
        seen: set[str] = set()
        for c in V1_CONTROLLERS:
            if c in self.hierarchies:
                try:
                    d = os.path.join(self.hierarchies[c], self.parent)
                    seen.update(x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x)))
                except FileNotFoundError:
                    pass
        return sorted(seen)

    # --- create ---
    def create(self, cid: str, device_rules: list[str] | None = None) -> None:
        """`device_rules`: devices.allow lines (default: Docker's; ["a *:* rwm"]: all, --privileged)."""
        for c in ("memory", "cpu", "cpuacct", "pids", "freezer"):
            self._mount(c)  # fail early, naming the missing controller
        for d in self._dirs(cid):
            os.makedirs(d, exist_ok=True)
        if "devices" in self.hierarchies:
            dev = self.cpath("devices", cid)
            rules = DEVICE_RULES if device_rules is None else device_rules
            if rules == devices.ALLOW_ALL:
                write(f"{dev}/devices.allow", "a")
                return
            write(f"{dev}/devices.deny", "a")
            for rule in rules:
                write(f"{dev}/devices.allow", rule)

    def apply(self, cid: str, res: dict) -> None:
        """Write the OCI spec's linux.resources (absent = unlimited)."""
        write_resources(self.paths(cid), res)

    def add_process(self, cid: str, pid: int) -> None:
        for d in self._dirs(cid):
            write(f"{d}/cgroup.procs", pid)

    # --- pause ---
    def frozen(self, cid: str) -> bool:
        return read(f"{self.cpath('freezer', cid)}/freezer.state", "THAWED") == "FROZEN"

    def freeze(self, cid: str) -> None:
        f = f"{self.cpath('freezer', cid)}/freezer.state"
        write(f, "FROZEN")
        # FREEZING means some task has not stopped yet; the kernel gets there on its own
        wait_until(lambda: read(f) == "FROZEN", what="freezer.state to become FROZEN")

    def thaw(self, cid: str) -> None:
        f = f"{self.cpath('freezer', cid)}/freezer.state"
        write(f, "THAWED")
        wait_until(lambda: read(f) == "THAWED", what="freezer.state to become THAWED")

    # --- measure ---
    def sample(self, cid: str) -> dict:
        mem = self.cpath("memory", cid)
        mstat = read_keyed(f"{mem}/memory.stat")
        rd = wr = 0
        blk = self.paths(cid).get("blkio")
        if blk:
            try:
                for line in read(f"{blk}/blkio.throttle.io_service_bytes").splitlines():
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "Read":
                        rd += int(parts[2])
                    elif len(parts) == 3 and parts[1] == "Write":
                        wr += int(parts[2])
            except (FileNotFoundError, OSError):
                pass
        limit = read_int(f"{mem}/memory.limit_in_bytes", -1)
        return {
            "cpu_usage_ns": read_int(f"{self.cpath('cpuacct', cid)}/cpuacct.usage"),
            "memory_usage": read_int(f"{mem}/memory.usage_in_bytes"),
            "memory_limit": -1 if limit >= (1 << 62) else limit,  # "unlimited" is a huge number
            "memory_inactive_file": mstat.get("total_inactive_file", mstat.get("inactive_file", 0)),
            "pids_current": read_int(f"{self.cpath('pids', cid)}/pids.current"),
            "pids_limit": read_int(f"{self.cpath('pids', cid)}/pids.max", -1),
            "blkio_read": rd, "blkio_write": wr,
            "oom_kills": self.oom_kills(cid),
        }

    def oom_kills(self, cid: str) -> int:
        return read_keyed(f"{self.cpath('memory', cid)}/memory.oom_control").get("oom_kill", 0)

    def processes(self, cid: str) -> list[int]:
        return procs(self.cpath("memory", cid))

    # --- remove ---
    def remove(self, cid: str) -> None:
        if os.path.isdir(self.cpath("freezer", cid)) and self.frozen(cid):
            self.thaw(cid)
        for d in self._dirs(cid):
            if os.path.isdir(d):
                rmdir(d)

    def remove_parent(self) -> bool:
        """rmdir <tree>/minidocker in every tree, if no container cgroup is left in it: in the
        trees we use, and also in the others (cpuset, name=systemd, the hybrid host's empty v2
        tree), where another OCI runtime running our bundles (the real runc does: it joins
        every hierarchy) leaves the parent behind."""
        from ..linux.procfs import mountinfo
        trees = set(self.hierarchies.values())
        trees |= {m["target"] for m in mountinfo() if m["fstype"] == "cgroup2"}
        removed = False
        for tree in sorted(trees):
            try:
                os.rmdir(os.path.join(tree, self.parent))
                removed = True
            except OSError:
                pass
        return removed

    # --- inside the container ---
    def container_mounts(self) -> list[tuple]:
        """A tmpfs at /sys/fs/cgroup, and each hierarchy the container is in mounted on it
        (read-only, as Docker does). In the container's own cgroup namespace each one shows
        the container's cgroup as its root. (Hierarchies we did not put the container in,
        such as cpuset or name=systemd, would show the host's whole tree: left out.)"""
        out = [("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=755")]
        groups: dict[str, list[str]] = {}
        for ctrl, mnt in self.hierarchies.items():
            if ctrl in V1_CONTROLLERS:
                groups.setdefault(mnt, []).append(ctrl)
        for mnt, ctrls in sorted(groups.items()):
            data = ",".join(sorted(ctrls))
            if data.startswith("name="):
                data = "none," + data
            out.append(("cgroup", f"/sys/fs/cgroup/{os.path.basename(mnt)}", "cgroup", 0, data))
        return out
