"""Resource limits as Docker takes them on the command line, and as the kernel wants them.

    -m 512m             memory limit, bytes (units b, k, m, g, t, p; powers of 1024)
    --memory-swap 1g    memory + swap; -1 = unlimited swap; unset = twice the memory
    --cpus 1.5          NanoCpus = 1.5e9  ->  CFS quota 150000 us per 100000 us period
    --cpu-shares 512    relative weight (v1 cpu.shares; v2 cpu.weight 1..10000)
    --pids-limit 100    at most 100 processes/threads; 0 or -1 = unlimited

All pure functions: no files are touched here (the v1/v2 drivers write them).
"""
from __future__ import annotations

import re

from ...errors import InvalidArgument

CFS_PERIOD_US = 100_000          # Docker's (and the kernel's) default CFS period
MIN_MEMORY = 6 * 1024 * 1024     # Docker refuses smaller memory limits
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "512m" -> 536870912, "1.5g", "64MB", "1024" (bytes)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?\s*", str(text))
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    return int(float(m.group(1)) * UNITS[m.group(2).lower()])


def parse_memory(text: str | None) -> int:
    if text in (None, ""):
        return 0
    n = ram_in_bytes(text)
    if 0 < n < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    return n


def parse_memory_swap(text: str | None, memory: int) -> int:
    """--memory-swap: total of memory and swap. -1 unlimited, 0/unset: docker's default."""
    if text in (None, "", "0"):
        return 0
    if str(text).strip() == "-1":
        return -1
    n = ram_in_bytes(text)
    if memory == 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if n < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    return n


def parse_cpus(text: str | None, online_cpus: int) -> int:
    """--cpus -> NanoCpus (an integer number of billionths of a CPU)."""
    if text in (None, ""):
        return 0
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: failed to parse {text} as a rational number') from None
    nano = int(round(value * 1e9))
    if nano < 0 or (nano and nano < 10_000_000) or nano > online_cpus * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {online_cpus}.00, as there are only "
                              f"{online_cpus} CPUs available")
    return nano


def cfs_quota(nano_cpus: int, period_us: int = CFS_PERIOD_US) -> int:
    """CFS quota in microseconds per period: --cpus 1.5 -> 150000 (per 100000)."""
    return nano_cpus * period_us // 1_000_000_000


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), runc's formula."""
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142


def parse_pids_limit(value: int | str | None) -> int | None:
    if value in (None, ""):
        return None
    n = int(value)
    return None if n <= 0 else n


def v1_memsw(memory: int, memory_swap: int) -> int | None:
    """memory.memsw.limit_in_bytes for v1: unset swap means "as much swap as memory"."""
    if memory <= 0:
        return None
    if memory_swap == -1:
        return -1
    if memory_swap == 0:
        return 2 * memory
    return memory_swap


def v2_swap_max(memory: int, memory_swap: int) -> str | None:
    """memory.swap.max for v2 counts swap alone (v1's memsw counts memory + swap)."""
    if memory <= 0:
        return None
    if memory_swap == -1:
        return "max"
    if memory_swap == 0:
        return str(memory)
    return str(memory_swap - memory)


def resources_from_hostconfig(host: dict) -> dict:
    """The limits of a container, from the HostConfig keys `inspect` shows."""
    return {
        "memory": int(host.get("Memory") or 0),
        "memory_swap": int(host.get("MemorySwap") or 0),
        "nano_cpus": int(host.get("NanoCpus") or 0),
        "cpu_shares": int(host.get("CpuShares") or 0),
        "pids_limit": host.get("PidsLimit"),
    }
