"""Container commands: run, create, start, stop, kill, restart, rm, prune, ps, inspect, logs, wait."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from ...container import hostconfig, logs as logsmod
from ...container import confinement, health, restart, runconfig
from ...container import state as st
from ... import gotime
from ...engine.runtime import Runtime
from ...errors import InvalidArgument, MinidockerError
from . import format as fmt
from .common import (confirm, each, err, parse_format, parse_labels, print_inspect, print_section,
                     render_table, unescape_format)


def _runtime() -> Runtime:
    return Runtime()


# ---------------------------------------------------------------------------- run / create
def _add_create_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("--entrypoint", default=None, help="Overwrite the default ENTRYPOINT of the image")
    p.add_argument("-h", "--hostname", default=None, help="Container host name")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("-l", "--label", action="append", default=[], help="Set meta data on a container")
    p.add_argument("--name", default=None, help="Assign a name to the container")
    p.add_argument("--rm", action="store_true", help="Automatically remove the container when it exits")
    p.add_argument("--restart", default="no",
                   help="Restart policy to apply when a container exits (default \"no\")")
    p.add_argument("--health-cmd", default=None, help="Command to run to check health")
    p.add_argument("--health-interval", default="0s", help="Time between running the check (ms|s|m|h) (default 0s)")
    p.add_argument("--health-timeout", default="0s",
                   help="Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
    p.add_argument("--health-start-period", default="0s",
                   help="Start period for the container to initialize before starting health-retries "
                        "countdown (ms|s|m|h) (default 0s)")
    p.add_argument("--health-retries", default="0", help="Consecutive failures needed to report unhealthy")
    p.add_argument("--no-healthcheck", action="store_true", help="Disable any container-specified HEALTHCHECK")
    p.add_argument("--log-driver", default=None, help="Logging driver for the container (json-file, none)")
    p.add_argument("--log-opt", action="append", default=[], help="Log driver options (max-size=, max-file=)")
    p.add_argument("--init", action="store_true",
                   help="Run an init inside the container that forwards signals and reaps processes")
    p.add_argument("--cap-add", action="append", default=[], help="Add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    p.add_argument("--group-add", action="append", default=[], help="Add additional groups to join")
    p.add_argument("--userns", default="", help="User namespace to use (host: none, under --userns-remap too)")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to this container")
    p.add_argument("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    p.add_argument("--security-opt", action="append", default=[], help="Security Options")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])")
    _add_resource_flags(p)
    p.add_argument("--network", "--net", default="default", help="Connect a container to a network")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[],
                   help="Add network-scoped alias for the container")
    p.add_argument("--ip", default=None, help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("-p", "--publish", action="append", default=[], help="Publish a container's port(s) to the host")
    p.add_argument("-P", "--publish-all", action="store_true", help="Publish all exposed ports to random ports")
    p.add_argument("--expose", action="append", default=[], help="Expose a port or a range of ports")
    p.add_argument("-v", "--volume", action="append", default=[], help="Bind mount a volume")
    p.add_argument("--mount", action="append", default=[], help="Attach a filesystem mount to the container")
    p.add_argument("--tmpfs", action="append", default=[], help="Mount a tmpfs directory")
    p.add_argument("--stop-signal", default=None, help="Signal to stop the container")
    p.add_argument("--stop-timeout", type=int, default=None, help="Timeout (in seconds) to stop a container")
    p.add_argument("-w", "--workdir", default=None, help="Working directory inside the container")
    p.add_argument("image", help="Image to run")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="Command and arguments")


def _add_resource_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--memory", default=None, help="Memory limit")
    p.add_argument("--memory-swap", default=None,
                   help="Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
    p.add_argument("--cpus", default=None, help="Number of CPUs")
    p.add_argument("-c", "--cpu-shares", type=int, default=None, help="CPU shares (relative weight)")
    p.add_argument("--pids-limit", type=int, default=None, help="Tune container pids limit (set -1 for unlimited)")


def _resources_from_args(args, for_update: bool = False) -> dict:
    """The HostConfig keys for the resource flags that were given."""
    return hostconfig.resources(args.memory, args.memory_swap, args.cpus, None, args.cpu_shares,
                                args.pids_limit, updating=for_update)


def _create_from_args(rt: Runtime, args, attach: bool, is_run: bool, cid: str | None = None) -> str:
    if attach and args.tty and args.interactive and not os.isatty(0):
        raise MinidockerError("the input device is not a TTY")
    host_env = dict(os.environ)
    env = []
    for path in args.env_file:
        env += runconfig.read_env_file(path, host_env)
    for e in args.env:
        kv = runconfig.parse_env_opt(e, host_env)
        if kv is not None:
            env.append(kv)
    labels = parse_labels(args.label, "-l, --label")
    try:
        policy = restart.parse(args.restart)
        check = health.from_flags(args.health_cmd, _duration(args.health_interval, "--health-interval"),
                                  _duration(args.health_timeout, "--health-timeout"),
                                  _duration(args.health_start_period, "--health-start-period"),
                                  _int_flag(args.health_retries, "--health-retries"), args.no_healthcheck)
        return rt.create(args.image, args.cmd or None, name=args.name, entrypoint=args.entrypoint,
                         env=env, workdir=args.workdir, user=args.user, hostname=args.hostname,
                         tty=args.tty, stdin_open=args.interactive, attach=attach,
                         auto_remove=args.rm, restart_policy=policy, healthcheck=check, init=args.init,
                         log_config=logsmod.log_config(args.log_driver, args.log_opt),
                         labels=labels,
                         resources=_resources_from_args(args),
                         stop_signal=args.stop_signal, stop_timeout=args.stop_timeout,
                         network=args.network, network_aliases=args.network_alias,
                         publish=args.publish, publish_all=args.publish_all, expose=args.expose,
                         ip=args.ip, volumes=args.volume, mounts=args.mount, tmpfs=args.tmpfs,
                         confine=_confinement_from_args(args), cid=cid)
    except MinidockerError as e:
        if e.exit_code == 1 and is_run:
            e.exit_code = 125  # `docker run` turns every daemon error into 125 (create: 1)
        raise


def _confinement_from_args(args) -> dict:
    """The HostConfig keys of the confinement flags (container/confinement.py); only those given,
    as the docker CLI sends them (names as typed; a seccomp profile file read and compacted)."""
    host = {}
    if args.cap_add:
        host["CapAdd"] = list(args.cap_add)
    if args.cap_drop:
        host["CapDrop"] = list(args.cap_drop)
    if args.group_add:
        host["GroupAdd"] = list(args.group_add)
    if args.userns not in ("", "host"):  # (the docker CLI's check)
        raise InvalidArgument("--userns: invalid USER mode")
    if args.userns:
        host["UsernsMode"] = args.userns
    if args.privileged:
        host["Privileged"] = True
    if args.read_only:
        host["ReadonlyRootfs"] = True
    if args.security_opt:
        host["SecurityOpt"] = confinement.cli_security_opts(args.security_opt)
    return host


def _duration(value: str, flag: str) -> int:
    """A Go duration flag ("30s", "1m30s") in nanoseconds, refused as the docker CLI's flag parser does."""
    try:
        return gotime.parse_duration(value)
    except ValueError as e:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {e}') from None


def _int_flag(value: str, flag: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: strconv.ParseInt: parsing '
                              f'"{value}": invalid syntax') from None


def cmd_create(args) -> int:
    rt = _runtime()
    print(_create_from_args(rt, args, attach=True, is_run=False))
    return 0


class _TerminalRaw:
    """Put the caller's terminal in raw mode while attached to a -t container."""

    def __init__(self, fd: int, enable: bool):
        self.fd, self.enable, self.saved = fd, enable, None

    def __enter__(self):
        if self.enable and os.isatty(self.fd):
            import termios
            import tty
            self.saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)


def _attach_fds(interactive: bool) -> tuple[int, int, int]:
    """What an attached container gets of ours: stdout and stderr, stdin with -i."""
    return (0 if interactive else -1, 1, 2)


def _attach_and_wait(rt: Runtime, cid: str, interactive: bool, tty: bool, early=None) -> int:
    """Start attached: the monitor writes the container's output straight to our stdout and
    stderr; we forward signals (docker's --sig-proxy) and exit with the container's code."""
    sys.stdout.flush()
    attach = _attach_fds(interactive)
    # Signal handlers go in *before* the start: the container may print and the user may
    # press Ctrl-C before start() returns. Signals arriving that early are queued.
    proxied = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
               signal.SIGUSR1, signal.SIGUSR2)
    pending: list[int] = []
    running = False

    def forward(signo, frame):
        if not running:
            pending.append(signo)
            return
        try:
            rt.kill(cid, signo)
        except MinidockerError:
            pass
    old = {s: signal.signal(s, forward) for s in proxied} if not tty else {}
    if tty:  # our window's new size goes to the monitor, which sets the container's terminal to it
        def resize(signo, frame):
            pid = rt.containers.monitor_pid(cid)
            try:
                if pid:
                    os.kill(pid, signal.SIGWINCH)
            except ProcessLookupError:
                pass
        old[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
    try:
        with _TerminalRaw(0, tty and interactive):
            started = rt.start(cid, attach=attach, early=early)
            if started is None:
                return 0
            running = True
            for signo in pending:
                forward(signo, None)
            code = started.wait_exit()
            if started.detached:  # ctrl-p ctrl-q: the container runs on
                sys.stderr.write("read escape sequence\r\n" if tty else "read escape sequence\n")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if code is None:  # the monitor vanished without reporting: ask the record
        try:
            code = rt.inspect(cid)["State"]["ExitCode"]
        except MinidockerError:
            code = 125
    return code


def cmd_run(args) -> int:
    rt = _runtime()
    early = _early_monitor(rt, args.network)
    try:
        cid = _create_from_args(rt, args, attach=not args.detach, is_run=True,
                                cid=early.cid if early is not None else None)
    except BaseException:
        if early is not None:
            early.close()
        raise
    if args.detach:
        print(cid, flush=True)  # docker prints the id even if starting then fails
        try:
            rt.start(cid, early=early)
        except MinidockerError:
            if args.rm:
                _remove_quietly(rt, cid)
            raise
        return 0
    try:
        return _attach_and_wait(rt, cid, args.interactive, args.tty, early)
    except MinidockerError:
        if args.rm:
            _remove_quietly(rt, cid)
        raise


def _early_monitor(rt: Runtime, network: str | None):
    """The container's monitor, spawned before the container is created, with the id it will
    get: Python's start and its imports (~40 ms) overlap the create (engine/spawn_monitor.py).
    The program's entry has usually spawned it already (main.py, entry)."""
    from ...engine import spawn_monitor
    from ...network import netlink_helper
    early = spawn_monitor.take_prespawned(rt.root.root)
    if early is None:
        try:
            early = spawn_monitor.EarlyMonitor(rt.root.root,
                                               netlink_helper.needed({"HostConfig": {"NetworkMode": network}}))
        except OSError:
            return None  # (start spawns one itself)
    return early


def _remove_quietly(rt: Runtime, cid: str) -> None:
    try:
        rt.remove(cid, force=True)
    except MinidockerError:
        pass


# ---------------------------------------------------------------------------- start/stop/...
def cmd_start(args) -> int:
    rt = _runtime()
    if args.attach or args.interactive:
        if len(args.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        cid = rt.resolve(args.containers[0])
        cfg = rt.inspect(cid)["Config"]
        return _attach_and_wait(rt, cid, args.interactive and cfg.get("OpenStdin"), cfg.get("Tty"))
    failed = []

    def start(ref):
        try:
            rt.start(ref)
        except MinidockerError:
            failed.append(ref)
            raise
        return ref
    each(args.containers, start)
    if failed:
        err("failed to start containers: " + ", ".join(failed))
    return 1 if failed else 0


def cmd_stop(args) -> int:
    rt = _runtime()
    return each(args.containers, lambda ref: (rt.stop(ref, args.time), ref)[1], parallel=True)


def cmd_restart(args) -> int:
    rt = _runtime()
    return each(args.containers, lambda ref: (rt.restart(ref, args.time), ref)[1])


def cmd_kill(args) -> int:
    rt = _runtime()
    runconfig.parse_signal(args.signal)  # a bad signal fails before touching any container
    return each(args.containers, lambda ref: (rt.kill(ref, args.signal), ref)[1], parallel=True)


def cmd_rm(args) -> int:
    rt = _runtime()
    failed = each(args.containers, lambda ref: (rt.remove(ref, force=args.force, volumes=args.volumes), ref)[1],
                   ignore_missing=args.force, parallel=True)
    return failed


def cmd_container_prune(args) -> int:
    if not confirm("WARNING! This will remove all stopped containers.", args.force):
        return 0
    removed, space = _runtime().prune()
    print_section("Deleted Containers:", removed)
    print(f"Total reclaimed space: {fmt.human_size(space, 4)}")
    return 0


def cmd_wait(args) -> int:
    rt = _runtime()
    return each(args.containers, lambda ref: rt.wait(ref))


# ---------------------------------------------------------------------------- exec
def cmd_exec(args) -> int:
    rt = _runtime()
    if args.tty and args.interactive and not os.isatty(0):
        raise MinidockerError("the input device is not a TTY")
    host_env = dict(os.environ)
    env = []
    for path in args.env_file:
        env += runconfig.read_env_file(path, host_env)
    env += [kv for kv in (runconfig.parse_env_opt(e, host_env) for e in args.env) if kv]
    sys.stdout.flush()
    with _TerminalRaw(0, args.tty and args.interactive):
        try:
            proc = rt.exec_start(args.container, args.cmd, user=args.user, workdir=args.workdir, env=env,
                                 tty=args.tty, interactive=args.interactive, detach=args.detach,
                                 stdio=(0, 1, 2))
        except MinidockerError as e:
            if e.exit_code != 126:
                raise
            print(str(e))  # docker prints the runtime's exec failure on stdout
            return 126
        if args.detach:
            return 0
        return proc.wait()


# ---------------------------------------------------------------------------- top
def top_rows(pids: list[int], now: float, boot: float, clk: int) -> list[list[str]]:
    """`docker top` (ps -ef) rows for these host PIDs: UID PID PPID C STIME TTY TIME CMD."""
    import pwd
    from ...core.linux import procfs
    rows = []
    for pid in sorted(pids):
        try:
            f_ = procfs.stat(pid)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            uid = os.stat(f"/proc/{pid}").st_uid
        except OSError:
            continue  # exited meanwhile
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        start = boot + int(f_[procfs.STAT_STARTTIME]) / clk
        ticks = int(f_[procfs.STAT_UTIME]) + int(f_[procfs.STAT_STIME])
        cpu, c = ticks // clk, int(100 * ticks / clk / max(now - start, 1))
        tty_nr = int(f_[procfs.STAT_TTY_NR])
        tty = "?" if tty_nr == 0 else "pts/" + str(tty_nr & 0xFF)
        rows.append([user, str(pid), f_[procfs.STAT_PPID], str(c), time.strftime("%H:%M", time.localtime(start)),
                     tty, f"{cpu // 3600:02d}:{cpu // 60 % 60:02d}:{cpu % 60:02d}", cmd or f"[{f_[2]}]"])
    return rows


def cmd_top(args) -> int:
    """The container's processes, seen from the host: all members of its cgroup."""
    rt = _runtime()
    rec = rt.inspect(args.container)
    if not rec["State"]["Running"]:
        raise InvalidArgument(f"Container {rec['Id']} is not running", exit_code=1)
    from ...core.linux import procfs
    pids = rt.cgroups().processes(rec["Id"]) or [rec["State"]["Pid"]]
    rows = top_rows(pids, time.time(), procfs.boot_time(), os.sysconf("SC_CLK_TCK"))
    sys.stdout.write(fmt.tabwrite([["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]] + rows, minwidth=20))
    return 0


# ---------------------------------------------------------------------------- pause/update/stats
def cmd_pause(args) -> int:
    rt = _runtime()
    return each(args.containers, lambda ref: (rt.pause(ref), ref)[1], parallel=True)


def cmd_unpause(args) -> int:
    rt = _runtime()
    return each(args.containers, lambda ref: (rt.unpause(ref), ref)[1], parallel=True)


def cmd_attach(args) -> int:
    from ...engine import attach
    rt = _runtime()
    keys = attach.parse_detach_keys(args.detach_keys) if args.detach_keys else attach.DETACH_KEYS
    tty = bool(rt.inspect(args.container)["Config"].get("Tty"))
    with _TerminalRaw(0, tty and not args.no_stdin):
        return attach.attach(rt, args.container, stdin=not args.no_stdin, detach_keys=keys,
                             sig_proxy=args.sig_proxy != "false")


def cmd_cp(args) -> int:
    from ...engine import cp
    from ...errors import NotFound
    src_ref, src = cp.split_arg(args.src)
    dest_ref, dest = cp.split_arg(args.dest)
    if src_ref and dest_ref:
        raise MinidockerError("copying between containers is not supported")
    if not src_ref and not dest_ref:
        raise MinidockerError("must specify at least one container source")
    ref, path = (src_ref, src) if src_ref else (dest_ref, dest)
    rt = _runtime()
    try:
        rt.resolve(ref)
    except NotFound:
        raise NotFound(f"No such container:path: {ref}:{path}") from None
    if src_ref:
        cp.copy_from_container(rt, src_ref, src, dest, follow=args.follow_link)
    else:
        cp.copy_to_container(rt, dest_ref, src, dest)
    return 0


def cmd_rename(args) -> int:
    rt = _runtime()
    cid = rt.resolve(args.container)
    try:
        new = runconfig.validate_name(args.new_name)
    except InvalidArgument as e:
        raise InvalidArgument(str(e), exit_code=1) from None  # (dockerd refuses it: exit 1)
    rt.containers.rename(cid, new)
    return 0


def cmd_update(args) -> int:
    rt = _runtime()
    resources = _resources_from_args(args, for_update=True)
    if args.restart is not None:
        try:
            resources["RestartPolicy"] = restart.parse(args.restart)
        except InvalidArgument as e:
            e.exit_code = 1  # (dockerd refuses it: docker update exits 1)
            raise
    if not resources:
        raise InvalidArgument("you must provide one or more flags when using this command", exit_code=1)
    return each(args.containers, lambda ref: (rt.update(ref, resources), ref)[1])


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
                 "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O",
                 "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_DEFAULT = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
                 "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def stats_fields(rec: dict, row: dict | None, ref: str, trunc: bool) -> dict:
    """One `docker stats` line as template fields (pure). `row` is None for a stopped container."""
    r = row or {"cpu_percent": 0.0, "mem_used": 0, "mem_limit": 0, "mem_percent": 0.0, "net_rx": 0,
                "net_tx": 0, "block_read": 0, "block_write": 0, "pids": 0}
    return {
        "Container": ref, "ID": rec["Id"][:12] if trunc else rec["Id"], "Name": rec["Name"].lstrip("/"),
        "CPUPerc": f"{r['cpu_percent']:.2f}%",
        "MemUsage": f"{fmt.bytes_size(r['mem_used'])} / {fmt.bytes_size(r['mem_limit'])}",
        "MemPerc": f"{r['mem_percent']:.2f}%",
        "NetIO": f"{fmt.human_size(r['net_rx'])} / {fmt.human_size(r['net_tx'])}",
        "BlockIO": f"{fmt.human_size(r['block_read'])} / {fmt.human_size(r['block_write'])}",
        "PIDs": str(r["pids"]),
    }


def cmd_stats(args) -> int:
    from ...core.cgroups import stats as statsmod
    rt = _runtime()
    if args.containers:
        refs = args.containers
        for ref in refs:
            rt.resolve(ref)  # fail early: "No such container"
    else:
        refs = [r["Id"] for r in rt.list(all=args.all)]
    template = unescape_format(args.format) if args.format else unescape_format(STATS_DEFAULT)
    prev: dict[str, dict] = {}

    def take() -> list[dict]:
        rows = []
        for ref in refs:
            try:
                rec = rt.inspect(ref)
            except MinidockerError:
                continue  # removed meanwhile
            row = None
            if rec["State"]["Running"]:
                try:
                    cur = rt.stats_sample(rec["Id"])
                    row = statsmod.row(prev.get(rec["Id"], cur), cur)
                    prev[rec["Id"]] = cur
                except (MinidockerError, OSError):
                    row = None
            rows.append(stats_fields(rec, row, ref, not args.no_trunc))
        return rows

    take()  # CPU % needs two samples, as docker's daemon takes them
    while True:
        time.sleep(1.0)
        out = render_table(template, take(), STATS_HEADERS)
        if args.no_stream:
            sys.stdout.write(out)
            return 0
        sys.stdout.write("\033[2J\033[H" + out)  # clear the screen, like docker stats
        sys.stdout.flush()


# ---------------------------------------------------------------------------- ps
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
              "RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
              "Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
              "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES"}
PS_DEFAULT = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"


def ps_row(rec: dict, trunc: bool, now: float | None = None) -> dict:
    """One container as the fields `docker ps --format` knows (pure)."""
    # moby daemon/list.go: arguments containing a space are shown in single quotes
    command = " ".join([rec["Path"]] + [f"'{a}'" if " " in a else a for a in rec["Args"]])
    if trunc:
        command = fmt.ellipsis(command, 20)
    created = gotime.parse_rfc3339(rec["Created"])
    labels = rec["Config"].get("Labels") or {}
    return {
        "ID": rec["Id"][:12] if trunc else rec["Id"],
        "Image": rec["Config"].get("Image", ""),
        "Command": fmt.go_quote(command),
        "CreatedAt": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime(created or 0)),
        "RunningFor": fmt.since(created, now),
        "Ports": fmt.displayable_ports(fmt.api_ports((rec.get("NetworkSettings") or {}).get("Ports"))),
        "State": rec["State"]["Status"],
        "Status": st.status_string(rec["State"], now),
        "Size": "",
        "Names": rec["Name"].lstrip("/"),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Mounts": "",
        "Networks": ",".join(sorted((rec.get("NetworkSettings") or {}).get("Networks") or {})),
        "LocalVolumes": "0",
    }


def cmd_ps(args) -> int:
    rt = _runtime()
    groups = parse_ps_filters(args.filter)
    # (a status filter lists stopped containers without -a, as dockerd does)
    recs = rt.list(all=args.all or args.latest or args.last is not None or "status" in groups)
    if args.latest:
        recs = recs[:1]
    elif args.last is not None and args.last >= 0:
        recs = recs[:args.last]
    recs = [r for r in recs if _ps_filter(r, groups, _ancestor_ids(rt))]
    if args.quiet:
        for r in recs:
            print(r["Id"] if args.no_trunc else r["Id"][:12])
        return 0
    template = unescape_format(args.format) if args.format else PS_DEFAULT
    rows = [ps_row(r, trunc=not args.no_trunc) for r in recs]
    sys.stdout.write(render_table(template, rows, PS_HEADERS))
    return 0


PS_FILTERS = ("status", "name", "id", "label", "exited", "health", "ancestor")
HEALTH_FILTERS = ("starting", "healthy", "unhealthy", "none")


def parse_ps_filters(filters: list[str]) -> dict[str, list[str]]:
    """-f key=value flags -> {key: [values]}, refused as dockerd refuses them (exit 1)."""
    groups: dict[str, list[str]] = {}
    for f in filters or []:
        key, _, value = f.partition("=")
        if key not in PS_FILTERS:
            raise InvalidArgument(f"Invalid filter '{key}'", exit_code=1)
        if key == "status" and value not in st.STATES:
            raise InvalidArgument(f"Invalid filter 'status={value}'", exit_code=1)
        if key == "health" and value not in HEALTH_FILTERS:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}", exit_code=1)
        groups.setdefault(key, []).append(value)
    return groups


def _ps_filter(rec: dict, groups: dict[str, list[str]], ancestors=None) -> bool:
    """Docker's rule: values of one key are alternatives (OR), different keys must all hold
    (AND); but every label= must hold (moby's MatchKVList)."""
    s = rec["State"]
    labels = rec["Config"].get("Labels") or {}

    def label_ok(value: str) -> bool:
        k, eq, v = value.partition("=")
        return k in labels and (not eq or labels[k] == v)
    tests = {
        "status": lambda v: s["Status"] == v,
        "name": lambda v: v in rec["Name"].lstrip("/"),
        "id": lambda v: rec["Id"].startswith(v),
        "label": label_ok,
        "exited": lambda v: s["Status"] == "exited" and str(s["ExitCode"]) == v,
        "health": lambda v: health.status_of(s) == v,
        "ancestor": lambda v: ancestors is not None and rec["Image"] in ancestors(v),
    }
    return all((all if key == "label" else any)(tests[key](v) for v in values) for key, values in groups.items())


def _ancestor_ids(rt):
    """`--filter ancestor=IMAGE`: the ids of that image (a name, an id or an id prefix) and of
    every image built on it (its children, theirs, ...: the parent links builds and commits record)."""
    cache: dict[str, set[str]] = {}

    def ids(ref: str) -> set[str]:
        if ref not in cache:
            try:
                todo = [rt.images.resolve(ref).id]
            except MinidockerError:
                todo = []
            found: set[str] = set()
            while todo:
                image_id = todo.pop()
                if image_id not in found:
                    found.add(image_id)
                    todo += rt.images.children_of(image_id)
            cache[ref] = found
        return cache[ref]
    return ids


def cmd_inspect(args) -> int:
    template = parse_format(args.format)
    rt = _runtime()
    from ...images.store import ImageStore
    results, failed = [], 0
    for ref in args.names:
        obj = None
        if args.type in (None, "container"):
            try:
                obj = rt.inspect(ref)
            except MinidockerError:
                obj = None
        if obj is None and args.type in (None, "image"):
            try:
                from .images import image_inspect_obj
                obj = image_inspect_obj(ImageStore(rt.root), ref)
            except MinidockerError:
                obj = None
        if obj is None:
            err(f"No such {'object' if args.type is None else args.type}: {ref}")
            failed = 1
            continue
        results.append(obj)
    return print_inspect(results, template) or failed


# ---------------------------------------------------------------------------- logs
def cmd_logs(args) -> int:
    rt = _runtime()
    rec = rt.inspect(args.container)
    if (rec["HostConfig"].get("LogConfig") or {}).get("Type") == "none":
        raise MinidockerError("configured logging driver does not support reading")
    path = rec["LogPath"]
    tail = None
    if args.tail not in (None, "all"):
        try:
            tail = int(args.tail)
        except ValueError:
            raise InvalidArgument(f"invalid value for \"tail\": {args.tail}") from None
        tail = None if tail < 0 else tail
    since = _parse_since(args.since) if args.since else None
    until = _parse_since(args.until) if args.until else None
    size = logsmod.snapshot_size(path)
    for rec_ in logsmod.read(path, tail=tail, since=since, until=until, upto=size):
        _emit(rec_, args.timestamps)
    if args.follow:
        cid = rec["Id"]
        alive = lambda: rt.containers.shim_alive(cid)  # noqa: E731
        for rec_ in logsmod.follow(path, size, alive):
            _emit(rec_, args.timestamps)
    return 0


def _emit(rec: dict, timestamps: bool) -> None:
    out = sys.stderr if rec.get("stream") == "stderr" else sys.stdout
    out.write(logsmod.format_record(rec, timestamps))
    out.flush()


def _parse_since(value: str) -> float:
    """--since/--until: a unix timestamp, an RFC 3339 date, or a duration like 10s, 5m, 1h."""
    import re
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if m:
        mult = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        return time.time() - float(m.group(1)) * mult
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    t = gotime.parse_rfc3339(value if value.endswith("Z") else value + "Z")
    if t is None:
        raise InvalidArgument(f"invalid value for time: {value}")
    return t


# ---------------------------------------------------------------------------- registration
def register(sub, management: bool = False) -> None:
    def add(name, func, help, aliases=()):
        p = sub.add_parser(name, help=help, aliases=list(aliases))
        p.set_defaults(func=func)
        return p

    p = add("run", cmd_run, "Create and run a new container from an image")
    p.add_argument("-d", "--detach", action="store_true", help="Run container in background and print container ID")
    _add_create_flags(p)
    _add_create_flags(add("create", cmd_create, "Create a new container"))

    p = add("start", cmd_start, "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true", help="Attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true", help="Attach container's STDIN")
    p.add_argument("containers", nargs="+")

    for name, func, help in (("stop", cmd_stop, "Stop one or more running containers"),
                             ("restart", cmd_restart, "Restart one or more containers")):
        p = add(name, func, help)
        p.add_argument("-t", "--time", type=int, default=None, help="Seconds to wait before killing the container")
        p.add_argument("containers", nargs="+")

    p = add("kill", cmd_kill, "Kill one or more running containers")
    p.add_argument("-s", "--signal", default="KILL", help="Signal to send to the container")
    p.add_argument("containers", nargs="+")

    p = add("rm", cmd_rm, "Remove one or more containers", aliases=["remove"] if management else [])
    p.add_argument("-f", "--force", action="store_true", help="Force the removal of a running container (uses SIGKILL)")
    p.add_argument("-v", "--volumes", action="store_true", help="Remove anonymous volumes")
    p.add_argument("containers", nargs="+")

    p = add("exec", cmd_exec, "Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true", help="Detached mode: run command in the background")
    p.add_argument("-e", "--env", action="append", default=[], help="Set environment variables")
    p.add_argument("--env-file", action="append", default=[], help="Read in a file of environment variables")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open even if not attached")
    p.add_argument("--cap-add", action="append", default=[], help="Add Linux capabilities")
    p.add_argument("--cap-drop", action="append", default=[], help="Drop Linux capabilities")
    p.add_argument("--privileged", action="store_true", help="Give extended privileges to this container")
    p.add_argument("--read-only", action="store_true", help="Mount the container's root filesystem as read only")
    p.add_argument("--security-opt", action="append", default=[], help="Security Options")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-u", "--user", default=None, help="Username or UID (format: <name|uid>[:<group|gid>])")
    p.add_argument("-w", "--workdir", default=None, help="Working directory inside the container")
    p.add_argument("container")
    p.add_argument("cmd", nargs=argparse.REMAINDER)

    p = add("top", cmd_top, "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)

    p = add("pause", cmd_pause, "Pause all processes within one or more containers")
    p.add_argument("containers", nargs="+")
    p = add("unpause", cmd_unpause, "Unpause all processes within one or more containers")
    p.add_argument("containers", nargs="+")
    p = add("attach", cmd_attach, "Attach local standard input, output, and error streams to a running container")
    p.add_argument("--detach-keys", default=None, help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", default="true", choices=["true", "false"],
                   help="Proxy all received signals to the process (default true)")
    p.add_argument("container")
    p = add("cp", cmd_cp, "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="DEST")
    p = add("rename", cmd_rename, "Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    p = add("update", cmd_update, "Update configuration of one or more containers")
    _add_resource_flags(p)
    p.add_argument("--restart", default=None, help="Restart policy to apply when a container exits")
    p.add_argument("containers", nargs="+")
    p = add("stats", cmd_stats, "Display a live stream of container(s) resource usage statistics")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("--no-stream", action="store_true", help="Disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    p.add_argument("--format", default=None, help="Pretty-print stats using a Go template")
    p.add_argument("containers", nargs="*")

    p = add("wait", cmd_wait, "Block until one or more containers stop, then print their exit codes")
    p.add_argument("containers", nargs="+")

    p = add("ps" if not management else "ls", cmd_ps, "List containers",
            aliases=["ps", "list"] if management else [])
    p.add_argument("-a", "--all", action="store_true", help="Show all containers (default shows just running)")
    p.add_argument("-q", "--quiet", action="store_true", help="Only display container IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("-n", "--last", type=int, default=None, help="Show n last created containers")
    p.add_argument("-l", "--latest", action="store_true", help="Show the latest created container")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="Filter output (status=, name=, id=, label=, exited=, health=, ancestor=)")
    p.add_argument("--format", default=None, help="Pretty-print containers using a Go template")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")

    p = add("inspect", cmd_inspect, "Return low-level information on containers or images")
    p.add_argument("-f", "--format", default=None, help="Format the output using the given Go template")
    p.add_argument("-s", "--size", action="store_true", help="Display total file sizes")
    if not management:
        p.add_argument("--type", default=None, choices=["container", "image"], help="Return JSON for specified type")
    else:
        p.set_defaults(type="container")
    p.add_argument("names", nargs="+")

    p = add("logs", cmd_logs, "Fetch the logs of a container")
    p.add_argument("-f", "--follow", action="store_true", help="Follow log output")
    p.add_argument("-n", "--tail", default="all",
                   help='Number of lines to show from the end of the logs (default "all")')
    p.add_argument("-t", "--timestamps", action="store_true", help="Show timestamps")
    p.add_argument("--since", default=None, help="Show logs since timestamp or relative (e.g. 42m)")
    p.add_argument("--until", default=None, help="Show logs before a timestamp or relative (e.g. 42m)")
    p.add_argument("container")

    if management:
        p = add("prune", cmd_container_prune, "Remove all stopped containers")
        p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
