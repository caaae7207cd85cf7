"""Reading the kernel's view of a process from /proc, for the notebooks.

Plain parsers (tested on sample text) plus small readers that take a `proc` directory, so
tests can point them at a fake /proc:

    parse_status(text)          /proc/<pid>/status -> {"Name": "sleep", "NSpid": "4242 1", ...}
    nspids(status)              [4242, 1]: the same process's PID in each PID namespace, outermost first
    parse_ns_link(text)         "mnt:[4026531841]" -> ("mnt", 4026531841)
    namespaces(pid)             {"mnt": 4026531841, "pid": ..., ...}
    compare_namespaces(a, b)    [(kind, inode a, inode b, same?)]
    ancestry(pid)               the process, its parent, ... up to PID 1
    mount_lines(text, prefix)   the mountinfo lines of the mounts under `prefix`
"""
from __future__ import annotations

import os
import re

from ..core.linux.procfs import parse_mountinfo

NS_KINDS = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"]


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def nspids(status: dict[str, str]) -> list[int]:
    """NSpid: the PID in the process's own namespace and in each ancestor, outermost first."""
    return [int(x) for x in status.get("NSpid", status.get("Pid", "")).split()]


def parse_ns_link(text: str) -> tuple[str, int]:
    m = re.fullmatch(r"(\w+):\[(\d+)\]", text.strip())
    if not m:
        raise ValueError(f"not a namespace link: {text!r}")
    return m.group(1), int(m.group(2))


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def status(pid: int | str, proc: str = "/proc") -> dict[str, str]:
    return parse_status(_read(os.path.join(proc, str(pid), "status")))


def cmdline(pid: int | str, proc: str = "/proc") -> list[str]:
    with open(os.path.join(proc, str(pid), "cmdline"), "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]


def namespaces(pid: int | str = "self", proc: str = "/proc", kinds: list[str] = NS_KINDS) -> dict[str, int]:
    """The namespaces `pid` is in: kind -> inode number of the namespace."""
    out = {}
    for kind in kinds:
        try:
            out[kind] = parse_ns_link(os.readlink(os.path.join(proc, str(pid), "ns", kind)))[1]
        except FileNotFoundError:
            continue  # e.g. no time namespaces before Linux 5.6
    return out


def compare_namespaces(a: dict[str, int], b: dict[str, int]) -> list[tuple[str, int, int, bool]]:
    return [(k, a[k], b[k], a[k] == b[k]) for k in sorted(set(a) & set(b))]


def ancestry(pid: int | str, proc: str = "/proc", limit: int = 64) -> list[dict]:
    """[{pid, ppid, name, nspid}] from `pid` up to PID 1 (or as far as /proc lets us see)."""
    chain = []
    cur = str(pid)
    while cur not in ("0", "") and len(chain) < limit:
        try:
            st = status(cur, proc)
        except OSError:
            break
        chain.append({"pid": int(st["Pid"]), "ppid": int(st["PPid"]), "name": st["Name"],
                      "nspid": nspids(st)})
        cur = st["PPid"]
    return chain


def mount_lines(mountinfo: str, prefix: str) -> list[str]:
    """Lines of a mountinfo text whose mount point is `prefix` or below it."""
    prefix = prefix.rstrip("/")
    out = []
    for line in mountinfo.splitlines():
        m = parse_mountinfo(line)
        if m and (m[0]["target"] == prefix or m[0]["target"].startswith(prefix + "/")):
            out.append(line)
    return out


def mount_fields(line: str) -> dict[str, str]:
    """The interesting fields of one mountinfo line: target, fstype, source, super options."""
    m = parse_mountinfo(line)[0]
    return {"target": m["target"], "options": m["options"], "propagation": " ".join(m["propagation"]) or "private",
            "fstype": m["fstype"], "source": m["source"], "super_options": m["super_options"]}


def processes_in(ns_kind: str, inode: int, proc: str = "/proc") -> list[dict]:
    """Every process in the namespace `ns_kind:[inode]`, e.g. all processes of a container:
    [{pid (as the host sees it), nspid (as the namespace sees it), name, cmdline}], by host PID."""
    out = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            if parse_ns_link(os.readlink(os.path.join(proc, entry, "ns", ns_kind)))[1] != inode:
                continue
            st = status(entry, proc)
            argv = cmdline(entry, proc)
        except (OSError, ValueError):
            continue  # gone meanwhile, or a kernel thread
        out.append({"pid": int(entry), "nspid": nspids(st)[-1], "name": st["Name"],
                    "cmdline": " ".join(argv)})
    return sorted(out, key=lambda p: p["pid"])
