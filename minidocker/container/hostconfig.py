"""HostConfig: how Docker runs a container, built in one place for the CLI, the Python API and
`create`, and turned into the OCI runtime spec's `linux.resources` for the low-level runtime.

    -m 512m             Memory = 536870912 (units b, k, m, g, t, p; powers of 1024)
    --memory-swap 1g    MemorySwap = memory + swap; -1 = unlimited swap; unset = twice the memory
    --cpus 1.5          NanoCpus = 1.5e9  ->  CFS quota 150000 us per 100000 us period
    --cpu-shares 512    CpuShares, a relative weight
    --pids-limit 100    PidsLimit; 0 or -1 = unlimited

`docker inspect` shows these keys; the OCI spec (config.json) carries the kernel's view of the
same limits, which is what core/cgroups writes (moby does this conversion in
daemon/oci_linux.go). Pure functions: tested without root.
"""
from __future__ import annotations

import math
import re

from ..core.cgroups.limits import CFS_PERIOD_US, cfs_quota
from ..core.cgroups.stats import online_cpus
from ..errors import InvalidArgument
from . import restart

TYPE_CHECKING = False  # (typing itself costs an import at every container start)
if TYPE_CHECKING:
    from fractions import Fraction

MIN_MEMORY = 6 * 1024 * 1024     # Docker refuses smaller memory limits
UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
SHM_SIZE = 64 * 1024 * 1024      # /dev/shm: 64 MiB, Docker's default
RESTART_WITH_AUTOREMOVE = "Conflicting options: --restart and --rm"
RESTART_WITH_AUTOREMOVE_UPDATE = ("Cannot update container {id}: Restart policy cannot be updated because "
                                  "AutoRemove is enabled for the container")


# ---------------------------------------------------------------- flag values -> HostConfig keys
INT64_MAX = (1 << 63) - 1
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 262144   # what the kernel (cgroup v1 cpu.shares) keeps
# go-units' sizeRegex (ASCII digits only: Python's \d would take any script's digits)
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "512m" -> 536870912, "1.5g", "64MB", "1024" (bytes).
    Like Docker: no surrounding blanks, at most one space before the unit, and the result
    must fit an int64 (Docker's own overflow check is missing: it wraps)."""
    text = str(text)
    m = _SIZE.fullmatch(text)
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    try:
        value = float(m.group(1)) * UNITS[(m.group(2) or "").lower()]
    except ValueError:  # "1.5.5": the regex allows it, ParseFloat does not
        raise InvalidArgument(f"invalid size: '{text}'") from None
    if not math.isfinite(value) or value >= 2.0 ** 63:
        raise InvalidArgument(f"invalid size: '{text}': value out of range")
    return int(value)


def parse_memory(text: str | None) -> int:
    if text is None:
        return 0
    n = ram_in_bytes(text)  # "" too is an invalid size (docker: `-m ''` is refused)
    if 0 < n < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    return n


def parse_memory_swap(text: str | None, memory: int) -> int:
    """--memory-swap: total of memory and swap. -1 unlimited, 0/unset: docker's default."""
    if text is None or str(text) == "0":
        return 0
    if str(text) == "-1":
        return -1
    n = ram_in_bytes(text)
    if memory == 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap limit, see usage")
    if n < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, see usage")
    return n


# Go's big.Rat.SetString, which docker's --cpus uses: a decimal (with an exponent) or a fraction
_RATIONAL = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?|([+-]?[0-9]+)/([0-9]+)")


def _rational(text: str) -> Fraction | None:
    """The exact value of `text`, or None if it is no rational number (nan, inf, 1,5, " 1").
    An exponent too large to matter is not computed: 1e999999999 is just "too large"."""
    from fractions import Fraction  # (with decimal: ~3 ms to import; only when --cpus is parsed)
    m = _RATIONAL.fullmatch(text)
    if not m:
        return None
    try:
        if m.group(4) is not None:
            return None if int(m.group(5)) == 0 else Fraction(int(m.group(4)), int(m.group(5)))
        mantissa = Fraction(m.group(1) + m.group(2))
        exp = int(m.group(3) or 0)
    except ValueError:  # more digits than Python converts (int_max_str_digits)
        return None
    if mantissa == 0 or exp == 0:
        return mantissa
    if abs(exp) > 1000:  # far beyond any CPU count, or far below a nanocpu
        return mantissa * Fraction(10) ** (1000 if exp > 0 else -1000)
    return mantissa * Fraction(10) ** exp


def parse_cpus(text: str | None, online_cpus: int) -> int:
    """--cpus -> NanoCpus (an integer number of billionths of a CPU), as docker/cli's
    ParseCPUs: any rational number ("1.5", "3/2", "15e-1"), exact to the nanocpu."""
    if text in (None, ""):
        return 0
    value = _rational(str(text))
    if value is None:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: failed to parse {text} '
                              "as a rational number") from None
    nano = value * 1_000_000_000
    if nano.denominator != 1:
        raise InvalidArgument(f'invalid argument "{text}" for "--cpus" flag: value is too precise')
    nano = int(nano)
    if nano < 0 or (nano and nano < 10_000_000) or nano > online_cpus * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {online_cpus}.00, as there are only "
                              f"{online_cpus} CPUs available")
    return nano


def _int64_flag(value, flag: str) -> int:
    """An integer flag value as docker/cli's pflag reads it (strconv.ParseInt, 64 bits)."""
    text = str(value)
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: strconv.ParseInt: '
                              f'parsing "{text}": invalid syntax')
    digits = text.lstrip("+-").lstrip("0")
    n = int(text) if len(digits) <= 19 else INT64_MAX + 1  # (no 4000-digit int() needed)
    if not -INT64_MAX - 1 <= n <= INT64_MAX:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: strconv.ParseInt: '
                              f'parsing "{text}": value out of range')
    return n


def parse_cpu_shares(value: int | str | None) -> int:
    """-c/--cpu-shares: a relative weight, 0 = the default (1024). The kernel keeps 2..262144
    (runc refuses what the kernel would clamp); negative values dockerd refuses itself."""
    if value in (None, ""):
        return 0
    n = _int64_flag(value, "-c, --cpu-shares")
    if n < 0:
        raise InvalidArgument("shares: invalid argument", exit_code=1)
    if 0 < n < CPU_SHARES_MIN:
        raise InvalidArgument(f"the minimum allowed cpu-shares is {CPU_SHARES_MIN}", exit_code=1)
    if n > CPU_SHARES_MAX:
        raise InvalidArgument(f"the maximum allowed cpu-shares is {CPU_SHARES_MAX}", exit_code=1)
    return n


def parse_pids_limit(value: int | str | None) -> int | None:
    if value in (None, ""):
        return None
    n = _int64_flag(value, "--pids-limit")
    return None if n <= 0 else n


def resources(memory=None, memory_swap=None, cpus=None, nano_cpus=None, cpu_shares=None,
              pids_limit=None, *, updating: bool = False) -> dict:
    """The HostConfig keys for the limits that were given (None = not given), from flag values
    as the CLI or docker-py pass them. On `update` the swap limit is checked later, against
    the container's own memory limit (check_update)."""
    out = {}
    if memory is not None:
        out["Memory"] = parse_memory(str(memory))
    if memory_swap is not None:
        swap = str(memory_swap)
        if updating:
            out["MemorySwap"] = -1 if swap == "-1" else ram_in_bytes(swap)
        else:
            out["MemorySwap"] = parse_memory_swap(swap, out.get("Memory", 0))
    if cpus is not None:
        nano_cpus = parse_cpus(str(cpus), online_cpus())
    if nano_cpus is not None:
        out["NanoCpus"] = int(nano_cpus)
    if cpu_shares is not None:
        out["CpuShares"] = parse_cpu_shares(cpu_shares)
    if pids_limit is not None:
        out["PidsLimit"] = parse_pids_limit(pids_limit)
    return out


def check_update(host: dict, changes: dict, cid: str = "") -> dict:
    """`docker update`: the new HostConfig (host + changes), refused as dockerd refuses it."""
    new = {**host, **changes}
    if "RestartPolicy" in changes and new.get("AutoRemove") and not restart.is_none(changes["RestartPolicy"]):
        raise InvalidArgument(RESTART_WITH_AUTOREMOVE_UPDATE.format(id=cid), exit_code=1)
    if new.get("MemorySwap", 0) > 0 and new.get("Memory", 0) > new["MemorySwap"]:
        if "MemorySwap" in changes:
            raise InvalidArgument("Minimum memoryswap limit should be larger than memory "
                                  "limit, see usage", exit_code=1)
        raise InvalidArgument("Memory limit should be smaller than already set memoryswap "
                              "limit, update the memoryswap at the same time", exit_code=1)
    if new.get("MemorySwap", 0) and not new.get("Memory"):
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage", exit_code=1)
    return new


# ---------------------------------------------------------------- the whole HostConfig
def host_config(*, network_mode: str = "default", port_bindings: dict | None = None,
                publish_all: bool = False, auto_remove: bool = False, restart_policy: dict | None = None,
                log_config: dict | None = None,
                limits: dict | None = None,
                binds: list[str] | None = None, tmpfs: list[str] | None = None,
                masked_paths: list[str] = (), readonly_paths: list[str] = ()) -> dict:
    """The HostConfig `docker inspect` shows for a new container, in Docker's key order."""
    return {
        "Binds": list(binds) if binds else None, "ContainerIDFile": "",
        "LogConfig": dict(log_config or {"Type": "json-file", "Config": {}}),
        "NetworkMode": network_mode or "default", "PortBindings": port_bindings or {},
        "PublishAllPorts": publish_all,
        "RestartPolicy": dict(restart_policy or {"Name": "no", "MaximumRetryCount": 0}),
        "AutoRemove": auto_remove, "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
        "GroupAdd": None, "UsernsMode": "",
        "Privileged": False, "ReadonlyRootfs": False, "SecurityOpt": None, "ShmSize": SHM_SIZE, "Runtime": "minidocker",
        "Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "CpuPeriod": 0,
        "CpuQuota": 0, "PidsLimit": None, **(limits or {}),
        "MaskedPaths": list(masked_paths), "ReadonlyPaths": list(readonly_paths),
        "Tmpfs": {t.partition(":")[0]: t.partition(":")[2] for t in tmpfs} if tmpfs else None,
    }


# ---------------------------------------------------------------- HostConfig -> OCI linux.resources
def default_swap(memory: int, memory_swap: int) -> int | None:
    """Docker's memory+swap for a memory limit: unset means "as much swap as memory" (2x)."""
    if memory <= 0:
        return None
    if memory_swap == -1:
        return -1
    if memory_swap == 0:
        return 2 * memory
    return memory_swap


def oci_resources(host: dict) -> dict:
    """config.json's linux.resources from the HostConfig: only the limits that are set.
    (minidocker's cgroup drivers write the whole set every time: what is absent is unlimited.)"""
    memory, swap = int(host.get("Memory") or 0), int(host.get("MemorySwap") or 0)
    nano, shares, pids = int(host.get("NanoCpus") or 0), int(host.get("CpuShares") or 0), host.get("PidsLimit")
    res: dict = {}
    if memory > 0:
        res["memory"] = {"limit": memory, "swap": default_swap(memory, swap)}
    cpu = {}
    if shares:
        cpu["shares"] = shares
    if nano:
        cpu.update(quota=cfs_quota(nano), period=CFS_PERIOD_US)
    if cpu:
        res["cpu"] = cpu
    if pids:
        res["pids"] = {"limit": int(pids)}
    return res


# What dockerd answers, in its create response's Warnings, for each limit it cannot apply (in
# rootless mode without cgroups: core/cgroups/none.py); the limit is then set back to "none".
DISCARDED = [
    (("Memory", "MemorySwap"), "Your kernel does not support memory limit capabilities or the cgroup is not "
                               "mounted. Limitation discarded."),
    (("NanoCpus", "CpuQuota", "CpuPeriod"), "Your kernel does not support CPU CFS scheduler. CPU period/quota "
                                            "discarded."),
    (("CpuShares",), "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."),
    (("PidsLimit",), "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. "
                     "PIDs limit discarded."),
]


def discard_limits(host: dict) -> list[str]:
    """Zero the limits in `host` and return the warnings (pure)."""
    warnings = []
    for keys, message in DISCARDED:
        if any(host.get(k) for k in keys):
            warnings.append(message)
            for k in keys:
                host[k] = None if k == "PidsLimit" else 0
    return warnings
