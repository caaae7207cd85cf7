"""Control groups: how a container's CPU, memory and process count are limited and measured.

A cgroup is a directory in a special filesystem; a process is in it when its PID is in
the directory's `cgroup.procs`; limits are files you write (`memory.max`, `pids.max`).
Two generations of that filesystem exist, and learners meet three layouts:

    v2       one tree at /sys/fs/cgroup (Ubuntu 24.04, Debian 12 with systemd, Fedora)
    v1       one tree per controller: /sys/fs/cgroup/memory, /sys/fs/cgroup/cpu, ...
    hybrid   v1 trees for the controllers, plus an empty v2 tree at /sys/fs/cgroup/unified

One interface (`driver()`), two drivers (v1.py, v2.py) picked from /proc/self/mountinfo.
Like Docker's cgroupfs driver, each container gets `<tree>/minidocker/<container-id>`
(Docker: `<tree>/docker/<id>`). Taught in notebook 04 (cgroups).
"""
from __future__ import annotations

import os

from ..linux.procfs import parse_mountinfo, read_mountinfo
from .base import V1_CONTROLLERS, V2_CONTROLLERS, CgroupError  # noqa: F401 (the package's names)

PARENT = os.environ.get("MINIDOCKER_CGROUP_PARENT", "minidocker")

# The same knobs under their two names (what the v1.py and v2.py drivers write and read).
FILES = [  # (what, docker flag, cgroup v1 file, cgroup v2 file)
    ("memory limit", "-m", "memory/memory.limit_in_bytes", "memory.max"),
    ("memory + swap limit", "--memory-swap", "memory/memory.memsw.limit_in_bytes", "memory.swap.max (swap only)"),
    ("memory in use", "stats", "memory/memory.usage_in_bytes", "memory.current"),
    ("OOM kills", "State.OOMKilled", "memory/memory.oom_control: oom_kill", "memory.events: oom_kill"),
    ("CPU quota", "--cpus", "cpu/cpu.cfs_quota_us + cpu.cfs_period_us", 'cpu.max "quota period"'),
    ("CPU weight", "--cpu-shares", "cpu/cpu.shares (2..262144)", "cpu.weight (1..10000)"),
    ("CPU time used", "stats", "cpuacct/cpuacct.usage (ns)", "cpu.stat: usage_usec"),
    ("process limit", "--pids-limit", "pids/pids.max", "pids.max"),
    ("processes now", "stats", "pids/pids.current", "pids.current"),
    ("freeze", "pause", "freezer/freezer.state = FROZEN", "cgroup.freeze = 1 (cgroup.events: frozen 1)"),
    ("device access", "(always)", "devices/devices.allow, devices.deny", "an eBPF program on the cgroup (devices.py)"),
]


def v1_hierarchies(mountinfo: str) -> dict[str, str]:
    """{"memory": "/sys/fs/cgroup/memory", "cpu": "/sys/fs/cgroup/cpu,cpuacct", ...}: where each
    v1 controller (or named hierarchy, as "name=systemd") is mounted."""
    found: dict[str, str] = {}
    for m in parse_mountinfo(mountinfo):
        if m["fstype"] != "cgroup":
            continue
        for opt in m["super_options"].split(","):
            if opt in ("rw", "ro") or opt.startswith(("release_agent", "clone_children", "xattr", "noprefix")):
                continue
            found.setdefault(opt, m["target"])
    return found


def detect_layout(mountinfo: str) -> str:
    """"v2", "v1", "hybrid" or "none", from the text of /proc/self/mountinfo (pure)."""
    mounts = parse_mountinfo(mountinfo)
    if any(m["target"] == "/sys/fs/cgroup" and m["fstype"] == "cgroup2" for m in mounts):
        return "v2"
    has_v1 = any(m["fstype"] == "cgroup" for m in mounts)
    has_v2 = any(m["fstype"] == "cgroup2" for m in mounts)
    if has_v1 and has_v2:
        return "hybrid"
    if has_v1:
        return "v1"
    return "v2" if has_v2 else "none"


def layout() -> str:
    return detect_layout(read_mountinfo())


def driver(parent: str = PARENT):
    """The driver for this host: v1 on v1 and hybrid hosts (as Docker does), v2 on v2; none
    in rootless mode (a user namespace may not write the host's cgroup tree)."""
    from .. import userns
    info = read_mountinfo()
    kind = detect_layout(info)
    if userns.running_in_user_namespace():
        from .none import NoDriver
        return NoDriver(kind, v1_hierarchies(info) if kind in ("v1", "hybrid") else {})
    if kind == "v2":
        from .v2 import V2Driver
        root = next(m["target"] for m in parse_mountinfo(info)
                    if m["fstype"] == "cgroup2" and m["target"] == "/sys/fs/cgroup")
        return V2Driver(root, parent)
    if kind in ("v1", "hybrid"):
        from .v1 import V1Driver
        return V1Driver(v1_hierarchies(info), parent, hybrid=kind == "hybrid")
    raise CgroupError("no cgroup filesystem is mounted at /sys/fs/cgroup: "
                      "mount one with `mount -t cgroup2 none /sys/fs/cgroup`")


def apply_resources(version: int, paths: dict[str, str], resources: dict) -> None:
    """Write the OCI spec's linux.resources (memory, cpu, pids) into a container's cgroup:
    `paths` is the driver's paths(<id>), {controller: directory} on v1, {"unified": directory}
    on v2. (A step a learner replaces in notebook 99: core/steps.py.)"""
    if not paths:
        return  # no cgroups (rootless mode: none.py): the limits were discarded at create
    if version == 1:
        from .v1 import write_resources
    else:
        from .v2 import write_resources
    write_resources(paths, resources)
