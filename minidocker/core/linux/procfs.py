"""Reading the kernel's answers in /proc: the one parser of mountinfo and of <pid>/stat.

    /proc/<pid>/mountinfo   one line per mount the process can see (its mount namespace):
        36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
        (1)(2) (3)  (4)     (5)        (6)       (7...)  -  (8)  (9)       (10)
        mount id, parent id, dev, root inside the fs, mount point, mount options, optional
        fields (propagation: shared:N, master:N), then the filesystem type, source, and
        the filesystem's own (super block) options.
    /proc/<pid>/stat        one line of numbers; field 2 is "(comm)", which may itself hold
        spaces and parentheses, so it is split at the *last* ")".

Pure parsers take the text (tests feed them samples); the readers open the real files.
Taught in notebooks 02 and 05 (mountinfo).
"""
from __future__ import annotations

import re


def unescape(s: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal: \\040 etc."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s) if "\\" in s else s


def parse_mountinfo(text: str) -> list[dict]:
    """One dict per mountinfo line: id, parent, root, target, options, propagation (the
    optional fields, e.g. ["shared:1"]), fstype, source, super_options."""
    out = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        a, b = left.split(), right.split()
        if not sep or len(a) < 6 or not b:
            continue
        out.append({"id": int(a[0]), "parent": int(a[1]), "root": unescape(a[3]),
                    "target": unescape(a[4]), "options": a[5], "propagation": a[6:],
                    "fstype": b[0], "source": unescape(b[1]) if len(b) > 1 else "",
                    "super_options": b[2] if len(b) > 2 else ""})
    return out


def read_mountinfo(pid: int | str = "self") -> str:
    with open(f"/proc/{pid}/mountinfo") as f:
        return f.read()


def mountinfo(pid: int | str = "self") -> list[dict]:
    return parse_mountinfo(read_mountinfo(pid))


def is_mountpoint(path: str, mounts: list[dict] | None = None) -> bool:
    import os
    path = os.path.realpath(path)
    return any(m["target"] == path for m in (mountinfo() if mounts is None else mounts))


def mounts_under(prefix: str, mounts: list[dict] | None = None) -> list[str]:
    """Mount points at or below `prefix`, deepest first (the order to unmount them in)."""
    import os
    prefix = os.path.realpath(prefix).rstrip("/") or "/"
    found = {m["target"] for m in (mountinfo() if mounts is None else mounts)}
    hits = [t for t in found if t == prefix or t.startswith(prefix + "/")]
    return sorted(hits, key=lambda p: (p.count("/"), p), reverse=True)


# /proc/<pid>/stat fields we use, numbered as in proc(5) (1-based)
STAT_PPID, STAT_TTY_NR, STAT_UTIME, STAT_STIME, STAT_STARTTIME = 4, 7, 14, 15, 22


def parse_stat(text: str) -> dict:
    """The fields of /proc/<pid>/stat by proc(5)'s numbers: {1: pid, 2: comm, 3: state, ...}."""
    head, _, rest = text.rpartition(")")
    pid, _, comm = head.partition(" (")
    fields = {1: int(pid), 2: comm}
    for i, value in enumerate(rest.split(), start=3):
        fields[i] = value
    return fields


def stat(pid: int | str) -> dict:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat(f.read())


def boot_time() -> float:
    """When this machine booted, in seconds since the epoch (/proc/stat's btime)."""
    with open("/proc/stat") as f:
        return float(next(line.split()[1] for line in f if line.startswith("btime")))


def start_time(pid: int) -> int | None:
    """When `pid` started, in clock ticks since boot; None if it does not exist. A PID plus
    its start time names one process for good: PIDs are recycled, start times are not."""
    try:
        return int(stat(pid)[STAT_STARTTIME])
    except (OSError, KeyError, ValueError):
        return None
