"""`docker stats`: what a container uses, computed with Docker's own formulas.

    CPU %     = (container CPU time used) / (all CPUs' time passed) x online CPUs x 100
                both measured between two samples: cpuacct.usage or cpu.stat usage_usec for
                the container, the first line of /proc/stat for the whole machine
    MEM USAGE = usage - inactive_file     (page cache the kernel can drop is not "used")
    MEM %     = MEM USAGE / limit x 100   (the limit is the host's RAM when there is none)

The formulas are pure functions (unit-tested without root); `sample()` reads the files.
Taught in notebook 04 (cgroups: the live CPU plot).
"""
from __future__ import annotations

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def system_cpu_ns(proc_stat: str) -> int:
    """Total CPU time of the machine, in ns, from /proc/stat's "cpu" line (user..steal)."""
    for line in proc_stat.splitlines():
        if line.startswith("cpu "):
            ticks = [int(x) for x in line.split()[1:9]]
            return sum(ticks) * 1_000_000_000 // CLK_TCK
    raise ValueError("no cpu line in /proc/stat")


def online_cpus() -> int:
    return len(os.sched_getaffinity(0)) or os.cpu_count() or 1


def host_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def cpu_percent(prev: dict, cur: dict) -> float:
    """Docker's calculateCPUPercentUnix."""
    cpu_delta = cur["cpu_usage_ns"] - prev["cpu_usage_ns"]
    sys_delta = cur["system_cpu_ns"] - prev["system_cpu_ns"]
    if sys_delta > 0 and cpu_delta > 0:
        return cpu_delta / sys_delta * cur["online_cpus"] * 100.0
    return 0.0


def memory_used(s: dict) -> int:
    """usage minus the inactive page cache (docker's calculateMemUsageUnixNoCache)."""
    used = s["memory_usage"] - s["memory_inactive_file"]
    return used if used > 0 else s["memory_usage"]


def memory_limit(s: dict) -> int:
    return s["memory_limit"] if s["memory_limit"] and s["memory_limit"] > 0 else s["host_memory"]


def memory_percent(s: dict) -> float:
    limit = memory_limit(s)
    return memory_used(s) / limit * 100.0 if limit else 0.0


def net_io(pid: int) -> tuple[int, int]:
    """Bytes received / sent on the container's interfaces (its /proc/<pid>/net/dev), lo aside."""
    rx = tx = 0
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            for line in f.readlines()[2:]:
                name, _, rest = line.partition(":")
                if name.strip() == "lo":
                    continue
                fields = rest.split()
                rx += int(fields[0])
                tx += int(fields[8])
    except (OSError, IndexError, ValueError):
        pass
    return rx, tx


def sample(driver, cid: str, pid: int = 0) -> dict:
    """One measurement of a container: its cgroup counters plus the machine's CPU clock."""
    s = driver.sample(cid)
    with open("/proc/stat") as f:
        s["system_cpu_ns"] = system_cpu_ns(f.read())
    s["online_cpus"] = online_cpus()
    s["host_memory"] = host_memory()
    s["net_rx"], s["net_tx"] = net_io(pid) if pid else (0, 0)
    s["time"] = time.time()
    return s


def row(prev: dict, cur: dict) -> dict:
    """The numbers `docker stats` shows, from two samples (pure)."""
    return {
        "cpu_percent": cpu_percent(prev, cur),
        "mem_used": memory_used(cur),
        "mem_limit": memory_limit(cur),
        "mem_percent": memory_percent(cur),
        "net_rx": cur["net_rx"], "net_tx": cur["net_tx"],
        "block_read": cur["blkio_read"], "block_write": cur["blkio_write"],
        "pids": cur["pids_current"],
    }
