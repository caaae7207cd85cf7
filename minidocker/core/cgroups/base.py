"""What both cgroup drivers share: the controllers they use, reading and writing cgroup files
with clear errors. Taught in notebook 04 (cgroups)."""
from __future__ import annotations

import errno
import os
import time

from ...errors import MinidockerError

V1_CONTROLLERS = ["cpu", "cpuacct", "memory", "pids", "freezer", "blkio", "devices"]
V2_CONTROLLERS = ["cpu", "memory", "pids", "io"]


class CgroupError(MinidockerError):
    exit_code = 125


def read(path: str, default: str | None = None) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        if default is not None:
            return default
        raise


def read_int(path: str, default: int = 0) -> int:
    try:
        text = read(path)
    except (FileNotFoundError, OSError):
        return default
    if text == "max":
        return -1
    try:
        return int(text)
    except ValueError:
        return default


def read_keyed(path: str) -> dict[str, int]:
    """Files like memory.stat / cpu.stat / memory.events: "key value" per line."""
    out = {}
    try:
        text = read(path)
    except (FileNotFoundError, OSError):
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def write(path: str, value, hint: str = "") -> None:
    """Write one value to a cgroup file; turn the kernel's errno into advice."""
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except OSError as e:
        name = os.path.basename(path)
        if e.errno == errno.ENOENT:
            raise CgroupError(f"cgroup file {path} does not exist: is the controller for "
                              f"{name.split('.')[0]} enabled? {hint}".rstrip()) from None
        if e.errno == errno.EBUSY and name == "cgroup.subtree_control":
            raise CgroupError(
                f"cannot enable controllers in {path}: the cgroup has processes of its own and "
                "cgroup v2 allows controllers only for cgroups without them (the \"no internal "
                f"processes\" rule): move the processes in {os.path.dirname(path)}/cgroup.procs "
                "into a child cgroup first") from None
        if e.errno == errno.EBUSY:
            raise CgroupError(f"cannot write {value!r} to {path}: the limit is below the current "
                              "usage (device or resource busy)") from None
        if e.errno == errno.EINVAL:
            raise CgroupError(f"invalid value {value!r} for {path} {hint}".rstrip()) from None
        raise CgroupError(f"cannot write {value!r} to {path}: {e.strerror}") from None


def wait_until(check, timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise CgroupError(f"timed out waiting for {what}")
        time.sleep(0.005)


def rmdir(path: str, tries: int = 50) -> None:
    """Remove a cgroup directory. Its processes must be gone; the kernel may need a moment
    after the last one exits (EBUSY), so retry briefly."""
    for _ in range(tries):
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.02)
    os.rmdir(path)


def procs(path: str) -> list[int]:
    try:
        return [int(x) for x in read(path + "/cgroup.procs").split()]
    except (FileNotFoundError, OSError):
        return []
