"""Goal 3: the memory of the per-container monitor (PSS, /proc/<pid>/smaps_rollup "Pss:"), in
every network mode, next to Docker's per-container process: containerd-shim-runc-v2, the
parent of the container's init (/proc/<init>/status PPid), on the private dockerd.

One container of each mode runs at a time, on either side. A user network's embedded DNS is
asked a question first (`exec nslookup`), so its code is loaded. Any other process working for
our state root (its command line or its MINIDOCKER_ROOT names it: a DNS server per network or
per container, a netlink helper that stayed) and any child of the monitor besides the container
is counted too, and named: the output says where the DNS server runs.

PSS depends on what else runs: a page shared by k processes counts 1/k. The monitor's
interpreter (libpython, the stdlib's extension modules) is shared with every other process of
the same python3.11, this benchmark's own process included, which lowers the figure (by ~4 MiB
here); alone on a machine without any other Python, a monitor's PSS is close to its RSS. So RSS
is printed beside PSS, with the number of processes sharing the executable. The shim is a
static Go binary: its PSS is close to its RSS whatever runs."""
from __future__ import annotations

import os
import time

from . import stats
from .harness import Bench, Report, cmdline, descendants, ppid, read, sharing_exe
from .stats import Goal, fmt_mib

GOAL_PSS = Goal("<=", 12, " MiB")
SETTLE = 1.0  # seconds after the start before reading: the monitor has finished starting up
MODES = ("none", "default bridge", "user network")
NETWORK = "benchnet"


def _smaps(pid: int) -> dict[str, int]:
    return stats.smaps_kib(read(f"/proc/{pid}/smaps_rollup"))


def _line(fields: dict[str, int], pid: int) -> str:
    exe, others = sharing_exe(pid)
    mine = " (this benchmark's own process among them)" if os.getpid() in others else ""
    return (f"PSS {fmt_mib(fields['Pss'])} (RSS {fmt_mib(fields['Rss'])}, unique {fmt_mib(stats.uss_kib(fields))}); "
            f"{len(others)} other process(es) run {os.path.basename(exe)}{mine}")


def _run_args(mode: str) -> list[str]:
    return {"none": ["--network", "none"], "default bridge": [],
            "user network": ["--network", NETWORK]}[mode]


def _minidocker(b: Bench, report: Report, mode: str, before: set[int]) -> tuple[int, int]:
    """(PSS, RSS) in KiB of the container's monitor and helpers."""
    name = "bench-mem-" + mode.replace(" ", "-")
    cid = b.md("run", "-d", "--name", name, *_run_args(mode), "busybox", "sleep", "600").stdout.strip()
    try:
        if mode == "user network":
            out = b.md("exec", name, "nslookup", name, "127.0.0.11").stdout
            if "Address" not in out:
                report.say(f"   (embedded DNS answer unexpected: {out.strip()!r})")
        time.sleep(SETTLE)
        monitor = b.monitor_pid(cid)
        if monitor is None:
            raise RuntimeError(f"no monitor process found for {cid[:12]}")
        init = int(b.md("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip())
        container = {init} | descendants(init)
        helpers = (descendants(monitor) - container) | ((b.root_processes() - before) - {monitor} - container)
        fields = _smaps(monitor)
        total, rss = fields["Pss"], fields["Rss"]
        report.say(f"   minidocker, {mode}: monitor pid {monitor}: {_line(fields, monitor)}")
        for h in sorted(helpers):
            try:
                hf = _smaps(h)
            except OSError:
                continue
            total += hf["Pss"]
            rss += hf["Rss"]
            report.say(f"     + pid {h} ({' '.join(cmdline(h))[:90]}): {_line(hf, h)}, counted")
        if not helpers:
            where = "DNS: answered by the monitor itself, no process of its own" if mode == "user network" \
                else "no helper process"
            report.say(f"     ({where})")
        report.keep(f"minidocker {mode} pss_kib", total)
        report.keep(f"minidocker {mode} rss_kib", rss)
        return total, rss
    finally:
        b.md("rm", "-f", cid, check=False)


def _docker(b: Bench, report: Report, mode: str) -> int | None:
    args = _run_args(mode)
    name = "bench-mem-" + mode.replace(" ", "-")
    cid = b.dk("run", "-d", "--name", name, *args, "busybox", "sleep", "600").stdout.strip()
    try:
        if mode == "user network":
            b.dk("exec", name, "nslookup", name, "127.0.0.11", check=False)
        time.sleep(SETTLE)
        init = int(b.dk("inspect", "-f", "{{.State.Pid}}", cid).stdout.strip())
        shim = ppid(init)
        argv = cmdline(shim)
        fields = _smaps(shim)
        report.say(f"   docker, {mode}: {argv[0] if argv else '?'} pid {shim}: {_line(fields, shim)}")
        report.keep(f"docker {mode} pss_kib", fields["Pss"])
        return fields["Pss"]
    finally:
        b.dk("rm", "-f", cid, check=False)


def run(b: Bench, report: Report) -> None:
    report.start("memory", "the per-container monitor's PSS, one container at a time (sleep 600)")
    before = b.root_processes()
    b.md_network(NETWORK)
    b.dk("network", "create", NETWORK)
    report.say(f"   (minidocker network create {NETWORK}: "
               f"{len((b.root_processes() - before))} new process(es) for the network itself)")
    try:
        for mode in MODES:
            try:
                md, md_rss = _minidocker(b, report, mode, before)
                dk = _docker(b, report, mode)
            except Exception as e:  # noqa: BLE001 -- the other modes can still be measured
                report.error(f"memory ({mode})", e)
                continue
            report.row(stats.goal_row(f"monitor PSS, {mode}" + (" (+DNS)" if mode == "user network" else ""),
                                      minidocker=f"{fmt_mib(md)} (RSS {md_rss / 1024:.1f})",
                                      docker=fmt_mib(dk) + " shim",
                                      value=md / 1024 if md is not None else None,
                                      ratio_value=stats.ratio(md, dk), against="docker", goal=GOAL_PSS))
        report.say("   (Docker's embedded DNS lives in dockerd, one per daemon: not counted on its side)")
        report.say("   (PSS counts a page shared by k processes as 1/k: the monitor's interpreter pages are shared "
                   "with every other python3.11 process running, this benchmark included, so a monitor alone on a "
                   "machine with no other Python weighs up to its RSS; the shim is a static Go binary: PSS ~ RSS)")
    finally:
        b.md_remove_network(NETWORK)
        b.dk("network", "rm", NETWORK, check=False)
