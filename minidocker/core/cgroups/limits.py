"""Limits in the kernel's units: the formulas between the OCI runtime spec's `linux.resources`
(what the Docker layer asks for, container/hostconfig.py) and the cgroup files.

    linux.resources                      cgroup v1                      cgroup v2
    memory.limit  (bytes)                memory.limit_in_bytes          memory.max
    memory.swap   (memory + swap)        memory.memsw.limit_in_bytes    memory.swap.max (swap alone)
    cpu.quota / cpu.period (us)          cpu.cfs_quota_us / _period_us  cpu.max "quota period"
    cpu.shares    (2..262144)            cpu.shares                     cpu.weight (1..10000)
    pids.limit                           pids.max                       pids.max

Absent means unlimited: the drivers write the kernel's "no limit" for it. Pure functions.
Taught in notebook 04 (cgroups).
"""
from __future__ import annotations

CFS_PERIOD_US = 100_000          # Docker's (and the kernel's) default CFS period


def cfs_quota(nano_cpus: int, period_us: int = CFS_PERIOD_US) -> int:
    """CFS quota in microseconds per period: --cpus 1.5 -> 150000 (per 100000)."""
    return nano_cpus * period_us // 1_000_000_000


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), runc's formula."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def v2_swap_max(memory: int, memory_swap: int | None) -> str:
    """memory.swap.max counts swap alone; the spec's swap (like v1's memsw) counts memory + swap
    (runc's ConvertMemorySwapToCgroupV2Value)."""
    if memory_swap is None or memory_swap == -1 or memory <= 0:
        return "max"
    return str(max(memory_swap - memory, 0))


def file_values(res: dict) -> dict:
    """linux.resources -> the values to write, by what they limit (None = unlimited)."""
    mem, cpu, pids = res.get("memory") or {}, res.get("cpu") or {}, res.get("pids") or {}
    limit = mem.get("limit") or 0
    return {"memory": limit if limit > 0 else None,
            "memory_swap": mem.get("swap") if limit > 0 else None,
            "cpu_quota": cpu.get("quota") or None,
            "cpu_period": cpu.get("period") or CFS_PERIOD_US,
            "cpu_shares": cpu.get("shares") or None,
            "pids": pids.get("limit") if (pids.get("limit") or 0) > 0 else None}
