"""Goal 4: 100 running containers. `ps` with 100 running, the 100th `run -d` against the first,
then `stop` of all 100 in parallel and `rm`, after which nothing may be left: no mounts under
the state root, no cgroups named after the containers, no veths on minidocker's bridge, none
of the containers' or monitors' processes.

Two sets: --network none, stopped by ONE `minidocker stop -t 1 $(minidocker ps -q)`; and the
default bridge, stopped by 100 concurrent `minidocker stop -t 1 <id>` processes. Docker runs
the same 100 (--network none) for its `ps`, `run -d`, stop and rm figures."""
from __future__ import annotations

import os
import subprocess
import time

from . import stats
from .harness import (TIMEOUT, Bench, Report, cgroups_named, identities, mounts_under, ppid, pss_kib, still_there,
                      timed, veths_on)
from .stats import Goal, fmt_mib, fmt_time, median, spread

N = 100
PS_REPS = 5
GOAL_PS = Goal("<=", 0.3, " s")
GOAL_GROWTH = Goal("<=", 1.5, "x first")
CLEAN = "nothing left"
STOP_TIMEOUT = 400  # one `stop -t 1` of 100 ids (107 s when minidocker still stopped them one by one)
RUN_TIMEOUT = 60  # one `run -d`


def _start(argv_for, n: int, env: dict | None = None) -> tuple[list[str], list[float]]:
    ids, times = [], []
    for i in range(n):
        t = time.perf_counter()
        try:
            p = subprocess.run(argv_for(i), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"run -d #{i + 1} did not return in {RUN_TIMEOUT} s") from None
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            raise RuntimeError(f"run -d #{i + 1} failed ({p.returncode}): {p.stderr.strip()[-500:]}")
        ids.append(p.stdout.strip())
    return ids, times


def _ps(argv: list[str], env: dict | None, expect: int) -> list[float]:
    lines = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    if len(lines) != expect + 1:
        raise RuntimeError(f"`ps` listed {len(lines) - 1} containers, expected {expect}")
    return [timed(argv, env=env) for _ in range(PS_REPS)]


def _tenths(times: list[float]) -> tuple[int, float]:
    """(k, median of the last k / median of the first k), k = a tenth: #100 / #1 without the noise."""
    k = max(1, len(times) // 10)
    return k, median(times[-k:]) / median(times[:k])


def _growth(times: list[float]) -> str:
    k, r = _tenths(times)
    deciles = " ".join(f"{median(times[i:i + k]) * 1000:.0f}" for i in range(0, len(times), k))
    return f"medians of each {k}: {deciles} ms; last {k} / first {k}: {r:.2f}x"


def _default_bridge(b: Bench) -> str:
    from minidocker.network.store import default_bridge_name, root_tag
    from minidocker.paths import StateRoot
    return default_bridge_name(root_tag(StateRoot(b.root)))


def leftovers(b: Bench, ids: list[str], inits: dict[int, int], monitors: dict[int, int],
              bridges: set[str]) -> tuple[dict[str, list], list[int]]:
    """What is left of these containers: every check, and its findings (empty = clean); and
    the zombies (exited processes whose parent, PID 1 for a daemonized monitor, has not
    collected them yet: gone as processes, listed apart)."""
    cdir = os.path.join(b.root, "containers")
    live_inits, zombie_inits = still_there(inits)
    live_monitors, zombie_monitors = still_there(monitors)
    return {
        "containers in `minidocker ps -a`": b.md("ps", "-aq", "--no-trunc").stdout.split(),
        "container directories": [d for d in (os.listdir(cdir) if os.path.isdir(cdir) else []) if d in ids],
        "mounts under the state root (/proc/self/mountinfo)": mounts_under(b.root),
        "cgroups named after the containers (every hierarchy)": cgroups_named(ids),
        f"veths on minidocker's bridge {', '.join(sorted(bridges))} (ip -o link)": veths_on(bridges),
        "the containers' init processes (pid + start time)": live_inits,
        "their monitor processes (pid + start time)": live_monitors,
        "other processes naming the state root": sorted(b.root_processes()),
    }, zombie_inits + zombie_monitors


def _check_clean(b: Bench, report: Report, ids: list[str], inits: dict[int, int], monitors: dict[int, int],
                 bridges: set[str]) -> bool:
    left, zombies = leftovers(b, ids, inits, monitors, bridges)
    dirty = {k: v for k, v in left.items() if v}
    report.say("   checked right after rm: " + "; ".join(f"{k}: {len(v)}" for k, v in left.items()))
    if zombies:
        report.say(f"   ({len(zombies)} of those processes exited but are not reaped yet (zombies, parent "
                   f"PID {_parent(zombies[0])}): not counted as left)")
    if dirty:  # slow, or leaked? look again after a while
        time.sleep(5)
        later, _ = leftovers(b, ids, inits, monitors, bridges)
        for k, v in dirty.items():
            shown = later[k] or v
            report.say(f"   LEFT: {k}: {len(v)} right after rm, {len(later[k])} 5 s later: "
                       f"{', '.join(map(str, shown[:4]))}{' ...' if len(shown) > 4 else ''}")
    return not dirty


def _parent(pid: int) -> str:
    try:
        return str(ppid(pid))
    except (OSError, ValueError):
        return "?"


def _md_set(b: Bench, report: Report, label: str, run_args: list[str], parallel_processes: bool) -> dict:
    env = b.env
    ids, times = _start(lambda i: b.md_argv("run", "-d", *run_args, "busybox", "sleep", "600"), N, env)
    report.say(f"   minidocker run -d {label} x{N}: {spread(times[0], times, times[-1])}; {_growth(times)}")
    report.keep(f"run -d {label}", times)
    ps = _ps(b.md_argv("ps"), env, N)
    report.say(f"   minidocker ps ({N} running): {stats.describe(ps)}")
    report.keep(f"ps {label}", ps)

    init_pids = [int(x) for x in b.md("inspect", "-f", "{{.State.Pid}}", *ids).stdout.split()]
    monitor_pids = [m for m in (b.monitor_pid(cid) for cid in ids) if m]
    inits, monitors = identities(init_pids), identities(monitor_pids)
    pss = [pss_kib(m) for m in monitor_pids]
    if pss:
        report.say(f"   monitors with {N} running: {len(pss)} found, PSS median {fmt_mib(median(pss))}, "
                   f"total {fmt_mib(sum(pss))}")
        report.keep(f"monitor pss_kib {label}", pss)
    bridges = {_default_bridge(b)}
    # the checks find what they look for: the same checks while the 100 run
    report.say(f"   while running: {len(inits)} init and {len(monitors)} monitor processes, "
               f"{len(mounts_under(b.root))} mounts under the state root, "
               f"{len(cgroups_named(ids))} cgroups named after the containers, "
               f"{len(veths_on(bridges))} veths on {', '.join(bridges)}")

    short = b.md("ps", "-q").stdout.split()
    if parallel_processes:
        how = f"{len(short)} concurrent `minidocker stop -t 1 <id>` processes"
        t = time.perf_counter()
        procs_ = [subprocess.Popen(b.md_argv("stop", "-t", "1", c), env=env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in short]
        errors = []
        for c, p in zip(short, procs_):
            try:
                _, err = p.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
                err = f"did not finish in {TIMEOUT} s".encode()
            if p.returncode != 0:
                errors.append(f"{c}: {err.decode(errors='replace').strip()}")
        stop = time.perf_counter() - t
        if errors:
            report.say(f"   stop errors ({len(errors)}): {errors[:3]}")
    else:
        how = "one `minidocker stop -t 1 $(minidocker ps -q)`"
        stop = timed(b.md_argv("stop", "-t", "1", *short), env=env, timeout=STOP_TIMEOUT)
    running = b.md("ps", "-q").stdout.split()
    report.say(f"   stop of all {N} ({how}): {fmt_time(stop)}; still running after: {len(running)}")
    rm = timed(b.md_argv("rm", *b.md("ps", "-aq").stdout.split()), env=env)
    report.say(f"   rm of all {N} (one command): {fmt_time(rm)}")
    clean = _check_clean(b, report, ids, inits, monitors, bridges)
    report.keep(f"stop {label}", stop)
    report.keep(f"rm {label}", rm)
    return dict(times=times, ps=ps, stop=stop, rm=rm, clean=clean, pss=pss)


def _docker_set(b: Bench, report: Report) -> dict:
    ids, times = _start(lambda i: b.dk_argv("run", "-d", "--network", "none", "busybox", "sleep", "600"), N)
    report.say(f"   docker run -d --network none x{N}: {spread(times[0], times, times[-1])}; {_growth(times)}")
    ps = _ps(b.dk_argv("ps"), None, N)
    report.say(f"   docker ps ({N} running): {stats.describe(ps)}")
    pss = []
    for line in b.dk("inspect", "-f", "{{.State.Pid}}", *ids).stdout.split():
        try:
            pss.append(pss_kib(ppid(int(line))))
        except (OSError, ValueError):
            pass
    if pss:
        report.say(f"   containerd-shim-runc-v2 with {N} running: PSS median {fmt_mib(median(pss))}, "
                   f"total {fmt_mib(sum(pss))}")
    stop = timed(b.dk_argv("stop", "-t", "1", *ids))
    rm = timed(b.dk_argv("rm", *ids))
    report.say(f"   docker stop -t 1 (one command, {N} ids): {fmt_time(stop)}; docker rm: {fmt_time(rm)}")
    report.keep("docker", dict(run=times, ps=ps, stop=stop, rm=rm, pss=pss))
    return dict(times=times, ps=ps, stop=stop, rm=rm, pss=pss)


def run(b: Bench, report: Report, bridge_set: bool = True) -> None:
    report.start("many", f"{N} running containers: ps, run -d #1 vs #{N}, parallel stop, rm, leftovers")
    dk = _docker_set(b, report)
    sets = [("--network none", ["--network", "none"], False)]
    if bridge_set:
        sets.append(("(default bridge)", [], True))
    for label, args, parallel in sets:
        name = "none" if args else "bridge"
        try:
            md = _md_set(b, report, label, args, parallel)
        except Exception as e:  # noqa: BLE001 -- the other set can still be measured
            report.error(f"many ({name})", e)
            b.remove_all_containers()
            continue
        report.row(stats.goal_row(f"ps with {N} running ({name})", minidocker=fmt_time(median(md["ps"])),
                                  docker=fmt_time(median(dk["ps"])) + ("" if name == "none" else " (none)"),
                                  value=median(md["ps"]), best=min(md["ps"]),
                                  ratio_value=stats.ratio(median(md["ps"]), median(dk["ps"])), against="docker",
                                  goal=GOAL_PS))
        t = md["times"]
        report.row(stats.goal_row(f"run -d #{N} vs #1 ({name})",
                                  minidocker=f"{fmt_time(t[0])} -> {fmt_time(t[-1])}",
                                  docker=f"{fmt_time(dk['times'][0])} -> {fmt_time(dk['times'][-1])}"
                                  if name == "none" else "-",
                                  value=t[-1] / t[0], best=_tenths(t)[1], best_is=f"last/first {_tenths(t)[0]}",
                                  against="first", goal=GOAL_GROWTH))
        report.row(stats.Row(f"stop {N} ({f'{N} processes' if parallel else 'one command'})"
                             f" + rm ({name}): left behind",
                             minidocker=f"{fmt_time(md['stop'])} + {fmt_time(md['rm'])}",
                             docker=f"{fmt_time(dk['stop'])} + {fmt_time(dk['rm'])}" if name == "none" else "-",
                             goal=CLEAN, verdict="PASS" if md["clean"] else "MISS"))
        if md["pss"]:
            report.row(stats.goal_row(f"  monitor PSS with {N} running ({name}), median",
                                      minidocker=fmt_mib(median(md["pss"])),
                                      docker=fmt_mib(median(dk["pss"])) + " shim" if dk["pss"] else "-",
                                      value=stats.ratio(median(md["pss"]), median(dk["pss"]) if dk["pss"] else None),
                                      against="docker"))
