"""`minidocker-runc`: runc's command line over minidocker's runtime (core/runc.py, core/nsexec.py).

    minidocker-runc [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] VERB ...

The verbs containerd's shim (containerd-shim-runc-v2) calls, and those a person uses:
spec, create, start, run, state, list, ps, kill, delete, exec, pause, resume, update, events,
features. Errors are one line, exit status 1, written where runc writes them: the --log file
(as JSON with --log-format json: the shim reads the last one to tell dockerd why), and stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from ... import __version__
from ...core import bundle, cgroups
from ...core import runc as core_runc
from . import hooks
from .state import DEFAULT_ROOT, Container, RuncError, all_ids, new_state

SPEC_VERSION = "1.0.2-dev"
DEFAULT_CGROUP_PARENT = "minidocker-runc"


# ---------------------------------------------------------------- create, start, run
def _prepare_spec(spec: dict, cid: str, systemd: bool) -> dict:
    """linux.cgroupsPath as minidocker's drivers take it: /<parent>/<name>. The systemd form
    ("system.slice:docker:<id>", what dockerd sends with the systemd cgroup driver) becomes
    the path systemd would give it (/system.slice/docker-<id>.scope), made directly."""
    linux = spec.setdefault("linux", {})
    path = linux.get("cgroupsPath") or ""
    if ":" in path:
        sl, prefix, name = (path.split(":") + ["", ""])[:3]
        linux["cgroupsPath"] = f"/{sl or 'system.slice'}/{prefix + '-' if prefix else ''}{name or cid}.scope"
    elif not path:
        linux["cgroupsPath"] = f"/{DEFAULT_CGROUP_PARENT}/{cid}"
    elif systemd:
        raise RuncError(f'expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got "{path}"')
    return spec


def _connect_console(path: str) -> int:
    import socket
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise RuncError(f"failed to connect to the console socket {path}: {e}") from None
    return s.detach()


def create(g, cid: str, bundle_dir: str, console_socket: str | None, pid_file: str | None,
           foreground_console: int | None = None) -> Container:
    bundle_dir = os.path.abspath(bundle_dir)
    c = Container(g.root, cid)
    try:
        spec = _prepare_spec(bundle.load(bundle_dir, runs_hooks=True), cid, g.systemd_cgroup)
    except bundle.BundleError as e:
        raise RuncError(str(e)) from None
    except FileNotFoundError:
        raise RuncError(f"JSON specification file {os.path.join(bundle_dir, 'config.json')} not found") from None
    terminal = bool((spec.get("process") or {}).get("terminal"))
    if terminal and not console_socket and foreground_console is None:
        raise RuncError("cannot allocate tty if runc will detach without setting console socket")
    if not terminal and console_socket:
        raise RuncError("cannot use console socket if runc will not detach or allocate tty")
    os.makedirs(g.root, mode=0o700, exist_ok=True)
    try:
        os.mkdir(c.dir, 0o711)
    except FileExistsError:
        raise RuncError("container with given ID already exists") from None
    try:
        os.mkfifo(c.fifo, 0o622)
        fifo = os.open(c.fifo, os.O_RDWR | os.O_CLOEXEC)  # (held by the init until start)
        console = _connect_console(console_socket) if console_socket else foreground_console
        rootfs = bundle.root_path(bundle_dir, spec)
        parent, name = core_runc.cgroup_of(spec, cid)
        spec_hooks = spec.get("hooks") or {}

        def on_created(pid: int) -> None:  # in its namespaces, in its cgroup, before pivot_root
            st = {"ociVersion": spec.get("ociVersion", SPEC_VERSION), "id": cid, "pid": pid,
                  "status": "created", "bundle": bundle_dir, "annotations": spec.get("annotations") or {}}
            hooks.run(spec_hooks, "prestart", st)
            hooks.run(spec_hooks, "createRuntime", st)
        try:
            pid = core_runc.start(bundle_dir, cid, (0, 1, 2), spec=spec, console_sock=console,
                                  on_created=on_created, exec_fifo=fifo)
        except core_runc.StartFailed as e:
            raise RuncError(str(e)) from None
        finally:
            os.close(fifo)
            if console is not None and console_socket:
                os.close(console)
        c.state = new_state(cid, pid, bundle_dir, rootfs, spec, parent, name)
        c.save()
        if pid_file:
            tmp = pid_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(pid))  # (runc writes no newline)
            os.replace(tmp, pid_file)
        return c
    except BaseException:
        _remove_dir(c.dir)
        raise


def _remove_dir(d: str) -> None:
    import shutil
    shutil.rmtree(d, ignore_errors=True)


def start(g, cid: str) -> None:
    c = Container(g.root, cid).load()
    status = c.status()
    if status == "stopped":
        raise RuncError("cannot start a container that has stopped")
    if status != "created":
        raise RuncError("cannot start an already running container")
    try:
        fd = os.open(c.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # ENXIO: its init is gone
    except OSError:
        raise RuncError("cannot start a container that has stopped") from None
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)
        os.unlink(c.fifo)
    try:
        hooks.run(c.state.get("hooks") or {}, "poststart", c.oci_state())
    except RuncError as e:  # (runc only warns: the program runs already)
        log(g, "warning", str(e))


def run(g, a) -> int:
    """create + start; without --detach wait for the program and exit with its status (the
    container is deleted then), forwarding the signals we get."""
    console = relay = None
    if not a.detach and not a.console_socket:
        spec = bundle.load(os.path.abspath(a.bundle), runs_hooks=True)
        if (spec.get("process") or {}).get("terminal"):
            import socket
            relay, theirs = socket.socketpair()
            console = theirs.detach()
    c = create(g, a.id, a.bundle, a.console_socket, a.pid_file, foreground_console=console)
    if console is not None:
        os.close(console)
    start(g, a.id)
    if a.detach:
        return 0
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(s, lambda signo, frame: _kill_quietly(c.pid, signo))
    if relay is not None:
        _relay_terminal(relay)
    _, status = os.waitpid(c.pid, 0)
    code = core_runc.exit_status(status)
    delete(g, a.id, force=True)
    return code


def _kill_quietly(pid: int, signo: int) -> None:
    try:
        os.kill(pid, signo)
    except ProcessLookupError:
        pass


def _relay_terminal(sock) -> None:
    """`run` in the foreground with process.terminal: our terminal <-> the container's pty
    (the master comes over the console socket; core/nsexec.py's relay does the copying)."""
    import socket
    import termios
    import tty
    from ...core.nsexec import relay
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    sock.close()
    old = None
    if os.isatty(0):
        old = termios.tcgetattr(0)
        tty.setraw(0)
    try:
        relay(fds[0], interactive=True)
    finally:
        if old is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, old)


# ---------------------------------------------------------------- the others
def signal_number(text: str) -> int:
    """"KILL", "SIGKILL", "9" -> 9 (runc's parseSignal)."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(getattr(signal, name))
    except AttributeError:
        raise RuncError(f"unknown signal {text!r}") from None


def kill(g, cid: str, sig: str, all_: bool) -> None:
    c = Container(g.root, cid).load()
    signo = signal_number(sig)
    if c.status() == "stopped":
        raise RuncError("container not running")
    for pid in (c.processes() if all_ else [c.pid]):
        _kill_quietly(pid, signo)


def delete(g, cid: str, force: bool) -> None:
    c = Container(g.root, cid)
    if not c.exists():
        if force:
            return
        raise RuncError("container does not exist")
    c.load()
    status = c.status()
    if status in ("running", "paused") and not force:
        raise RuncError(f"cannot delete container {cid} that is not stopped: {status}")
    if status != "stopped":  # (a created one is deleted without --force, as runc does)
        cg, name = c.cgroup()
        if status == "paused":
            cg.thaw(name)
        for pid in c.processes() or [c.pid]:
            _kill_quietly(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while c.alive() and time.monotonic() < deadline:
            time.sleep(0.01)
    cg, name = c.cgroup()
    for _ in range(100):  # (the last processes leave the cgroup as they exit)
        try:
            cg.remove(name)
            break
        except (OSError, cgroups.CgroupError):
            time.sleep(0.02)
    if c.state["cgroup_parent"] == DEFAULT_CGROUP_PARENT:  # (ours, for bundles that name none)
        try:
            cg.remove_parent()
        except (OSError, cgroups.CgroupError):
            pass
    st = c.oci_state()
    _remove_dir(c.dir)
    try:
        hooks.run(c.state.get("hooks") or {}, "poststop", st)
    except RuncError as e:
        log(g, "warning", str(e))


def pause(g, cid: str, resume: bool) -> None:
    c = Container(g.root, cid).load()
    status = c.status()
    cg, name = c.cgroup()
    if resume:
        if status != "paused":
            raise RuncError("container not paused")
        cg.thaw(name)
    else:
        if status not in ("running", "created"):
            raise RuncError("container not running")
        cg.freeze(name)


def state(g, cid: str) -> None:
    print(json.dumps(Container(g.root, cid).load().oci_state(), indent=2))


def list_(g, fmt: str, quiet: bool) -> None:
    rows = [Container(g.root, i).load().oci_state() for i in all_ids(g.root)]
    if quiet:
        for r in rows:
            print(r["id"])
    elif fmt == "json":
        print(json.dumps(rows or None))
    else:
        table = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        table += [[r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"]] for r in rows]
        widths = [max(12, max(len(row[i]) for row in table) + 3) for i in range(6)]  # (Go's tabwriter: min 12, pad 3)
        for row in table:
            print("".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + row[-1])


def ps(g, cid: str, fmt: str) -> None:
    c = Container(g.root, cid).load()
    pids = c.processes()
    if fmt == "json":
        print(json.dumps(pids))
        return
    from ...core.linux import procfs
    from ..cli.containers import top_rows
    rows = top_rows(pids, time.time(), procfs.boot_time(), os.sysconf("SC_CLK_TCK"))
    print("UID        PID  PPID  C STIME TTY          TIME CMD")
    for r in rows:
        print(f"{r[0]:<8} {r[1]:>5} {r[2]:>5} {r[3]:>2} {r[4]:<5} {r[5]:<8} {r[6]:>8} {r[7]}")


def update(g, cid: str, resources_file: str | None, a) -> None:
    c = Container(g.root, cid).load()
    res: dict = {}
    if resources_file:
        f = sys.stdin if resources_file == "-" else open(resources_file)
        with f:
            res = json.load(f)
    if a.memory is not None:
        res.setdefault("memory", {})["limit"] = a.memory
    if a.pids_limit is not None:
        res.setdefault("pids", {})["limit"] = a.pids_limit
    if a.cpu_quota is not None:
        res.setdefault("cpu", {})["quota"] = a.cpu_quota
    if a.cpu_period is not None:
        res.setdefault("cpu", {})["period"] = a.cpu_period
    cg, name = c.cgroup()
    cgroups.apply_resources(cg.version, cg.paths(name), res)


def events(g, cid: str, stats: bool, interval: float) -> None:
    """`events --stats`: the container's counters as runc's stats event (once); without
    --stats, a stats event every `interval` seconds until it stops."""
    c = Container(g.root, cid).load()
    cg, name = c.cgroup()
    while True:
        try:
            s = cg.sample(name)
        except (OSError, cgroups.CgroupError):
            return
        data = {"cpu": {"usage": {"total": s["cpu_usage_ns"]}},
                "memory": {"usage": {"usage": s["memory_usage"], "limit": s["memory_limit"]},
                           "raw": {"inactive_file": s["memory_inactive_file"]}},
                "pids": {"current": s["pids_current"], "limit": max(s["pids_limit"], 0)},
                "blkio": {"ioServiceBytesRecursive": [{"op": "Read", "value": s["blkio_read"]},
                                                      {"op": "Write", "value": s["blkio_write"]}]}}
        print(json.dumps({"type": "stats", "id": cid, "data": data}), flush=True)
        if stats or c.status() == "stopped":
            return
        time.sleep(interval)


def exec_(g, a) -> int:
    """Run a process in the container (core/nsexec.py joins its namespaces and cgroup). With
    --detach: return once it runs (its PID in --pid-file); it is re-parented to our caller's
    subreaper, containerd's shim. Otherwise wait and exit with its status."""
    from ...core import nsexec
    c = Container(g.root, a.id).load()
    if c.status() == "stopped":
        raise RuncError("cannot exec in a stopped container")
    spec = bundle.load(c.state["bundle"], runs_hooks=True)
    if a.process:
        with open(a.process) as f:
            process = json.load(f)
    else:
        if not a.command:
            raise RuncError("process args cannot be empty")
        process = json.loads(json.dumps(spec["process"]))
        process.update(args=list(a.command), terminal=bool(a.tty))
        process["env"] = list(process.get("env") or []) + list(a.env or [])
        if a.cwd:
            process["cwd"] = a.cwd
        if a.user:
            uid, _, gid = a.user.partition(":")
            process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        if a.no_new_privs:
            process["noNewPrivileges"] = True
    tty = bool(process.get("terminal"))
    if tty and a.detach and not a.console_socket:
        raise RuncError("cannot allocate tty if runc will detach without setting console socket")
    req = {"cid": c.state["cgroup_name"], "pid": c.pid, "cgroup_parent": c.state["cgroup_parent"],
           "process": process, "tty": tty, "interactive": tty and not a.detach,
           "seccomp": (spec.get("linux") or {}).get("seccomp"), "detach": bool(a.detach), "inherit_stdio": True}
    if a.console_socket and tty:
        req["console_fd"] = _connect_console(a.console_socket)
    if a.pid_file:  # (opened here: the command's PID is written after we joined its mount namespace)
        req["pid_fd"] = os.open(a.pid_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    r, w = os.pipe()
    code = nsexec.run(req, w)
    try:
        os.close(w)
    except OSError:
        pass  # (closed by run once the command started)
    failure = os.read(r, 65536)
    os.close(r)
    if failure:
        raise RuncError(json.loads(failure)["message"])
    return code


def features() -> None:
    print(json.dumps({
        "ociVersionMin": "1.0.0", "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(bundle.MOUNT_FLAGS) + sorted(bundle.PROPAGATION),
        "linux": {"namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
                  "capabilities": [], "cgroup": {"v1": True, "v2": True, "systemd": False},
                  "seccomp": {"enabled": True}, "apparmor": {"enabled": True}},
        "annotations": {"org.minidocker.runc.version": __version__},
    }, indent=4))


def spec_cmd(bundle_dir: str, rootless: bool) -> None:
    from . import spec as specmod
    if rootless:
        raise RuncError("rootless specs are not supported by minidocker-runc")
    path = os.path.join(bundle_dir, "config.json")
    if os.path.exists(path):
        raise RuncError("File config.json exists. Remove it first")
    with open(path, "w") as f:
        json.dump(specmod.example(), f, indent="\t")


# ---------------------------------------------------------------- errors, the parser, main
def log(g, level: str, msg: str) -> None:
    """Where runc's logrus writes: the --log file (JSON or text), else stderr as text."""
    from ... import gotime
    now = gotime.rfc3339nano(time.time_ns()).split(".")[0] + "Z"
    if g.log:
        line = (json.dumps({"level": level, "msg": msg, "time": now}, separators=(",", ":")) if g.log_format == "json"
                else f'time="{now}" level={level} msg="{msg}"')
        try:
            with open(g.log, "a") as f:
                f.write(line + "\n")
        except OSError:
            pass
        if level == "error":
            print(msg, file=sys.stderr)
    else:
        print(f'time="{now}" level={level} msg="{msg}"', file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minidocker-runc", description="runc's command line over minidocker")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--log", default="")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    p.add_argument("--systemd-cgroup", action="store_true")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--criu", default="")
    p.add_argument("--rootless", default="auto")
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="verb")

    def verb(name: str, id_: bool = True):
        q = sub.add_parser(name)
        if id_:
            q.add_argument("id")
        return q
    for name in ("create", "run"):
        q = verb(name)
        q.add_argument("-b", "--bundle", default=".")
        q.add_argument("--console-socket")
        q.add_argument("--pid-file")
        q.add_argument("--no-pivot", action="store_true")
        q.add_argument("--no-new-keyring", action="store_true")
        q.add_argument("--preserve-fds", type=int, default=0)
        if name == "run":
            q.add_argument("-d", "--detach", action="store_true")
            q.add_argument("--keep", action="store_true")
    verb("start")
    verb("state")
    q = verb("kill")
    q.add_argument("signal", nargs="?", default="SIGTERM")
    q.add_argument("-a", "--all", action="store_true")
    q = verb("delete")
    q.add_argument("-f", "--force", action="store_true")
    verb("pause")
    verb("resume")
    q = verb("list", id_=False)
    q.add_argument("-f", "--format", default="table", choices=["table", "json"])
    q.add_argument("-q", "--quiet", action="store_true")
    q = verb("ps")
    q.add_argument("-f", "--format", default="table", choices=["table", "json"])
    q = verb("exec")
    q.add_argument("command", nargs=argparse.REMAINDER)
    q.add_argument("--console-socket")
    q.add_argument("--cwd")
    q.add_argument("-e", "--env", action="append")
    q.add_argument("-t", "--tty", action="store_true")
    q.add_argument("-u", "--user")
    q.add_argument("-p", "--process")
    q.add_argument("-d", "--detach", action="store_true")
    q.add_argument("--pid-file")
    q.add_argument("--no-new-privs", action="store_true")
    q.add_argument("--preserve-fds", type=int, default=0)
    q.add_argument("--process-label")
    q.add_argument("--apparmor")
    q.add_argument("-c", "--cap", action="append")
    q = verb("update")
    q.add_argument("-r", "--resources")
    q.add_argument("-m", "--memory", type=int)
    q.add_argument("--pids-limit", type=int)
    q.add_argument("--cpu-quota", type=int)
    q.add_argument("--cpu-period", type=int)
    q = verb("events")
    q.add_argument("--stats", action="store_true")
    q.add_argument("--interval", type=float, default=5.0)
    verb("features", id_=False)
    q = verb("spec", id_=False)
    q.add_argument("-b", "--bundle", default=".")
    q.add_argument("--rootless", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    g = parser().parse_args(argv)
    if g.version:
        print(f"minidocker-runc version {__version__}\nspec: {SPEC_VERSION}")
        return 0
    if g.verb is None:
        parser().print_help()
        return 0
    try:
        if g.verb == "create":
            create(g, g.id, g.bundle, g.console_socket, g.pid_file)
        elif g.verb == "run":
            return run(g, g)
        elif g.verb == "start":
            start(g, g.id)
        elif g.verb == "state":
            state(g, g.id)
        elif g.verb == "kill":
            kill(g, g.id, g.signal, g.all)
        elif g.verb == "delete":
            delete(g, g.id, g.force)
        elif g.verb in ("pause", "resume"):
            pause(g, g.id, resume=g.verb == "resume")
        elif g.verb == "list":
            list_(g, g.format, g.quiet)
        elif g.verb == "ps":
            ps(g, g.id, g.format)
        elif g.verb == "exec":
            return exec_(g, g)
        elif g.verb == "update":
            update(g, g.id, g.resources, g)
        elif g.verb == "events":
            events(g, g.id, g.stats, g.interval)
        elif g.verb == "features":
            features()
        elif g.verb == "spec":
            spec_cmd(g.bundle, g.rootless)
    except RuncError as e:
        log(g, "error", str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
