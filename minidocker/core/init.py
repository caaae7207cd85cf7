"""Inside the container: the child side, from new namespaces to execve() of the user's command.

Taught in notebooks 01 (a container is a process) and 03 (namespaces); rebuilt step by step
in notebook 99 (find_executable, enter_namespaces: core/steps.py). core/runc.py has
already entered the PID namespace and fork()ed us, so this process is PID 1 of a new PID
namespace. From here (runc calls this "init"), reading only config.json (`spec`):

    enter_namespaces():                         setns() into those the spec gives a path for
                                                (--network container:x), unshare() the others:
                                                mount, UTS, IPC, network
    tell the runtime "ready", wait for "go"     (it puts us in our cgroup, plugs the network in)
    unshare(cgroup)                             now our cgroup looks like "/" from inside
    rootfs.setup()                              mounts, /dev, pivot_root, masked paths
    sethostname()                               in our own UTS namespace only
    [terminal] make a pty inside the container and hand its master to the monitor
    finalize()                                  rlimits, seccomp, groups, gid, uid, capabilities,
                                                cwd, no_new_privs, find the program, close fds
    execve(process.args)                        from here on, PID 1 is the user's program

`finalize` is shared with `docker exec` (core/nsexec.py), as runc's finalizeNamespace is.
Any failure before execve is reported on `err_fd` (closed automatically by a successful
execve thanks to O_CLOEXEC), so the monitor can tell "could not start" (exit 125/126/127)
from "started, then exited".
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import signal
import socket
import stat
import struct
import termios

from . import apparmor, bundle, rootfs, security, steps
from .linux import netdev
from .linux import syscalls as sc

TIOCSPTLCK = getattr(termios, "TIOCSPTLCK", 0x40045431)
TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StartError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def find_executable(name: str, path_env: str) -> str:
    """Go's exec.LookPath, as runc uses it, evaluated inside the new root."""
    def check(p: str) -> None:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise StartError(127, f'exec: "{name}": stat {p}: no such file or directory') from None
        except NotADirectoryError:
            raise StartError(127, f'exec: "{name}": stat {p}: not a directory') from None
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise StartError(126, f'exec: "{name}": permission denied')

    if "/" in name:
        check(name)
        return name
    for d in path_env.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise StartError(127, f'exec: "{name}": executable file not found in $PATH')


def make_terminal(console_sock: int) -> None:
    """Open a pty pair on the container's own /dev/pts (as runc does with --console-socket),
    make the slave our controlling terminal and stdio, and pass the master to the monitor."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("i", fcntl.ioctl(master, TIOCGPTN, struct.pack("i", 0)))[0]
    slave_path = f"/dev/pts/{n}"
    slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    # /dev/console is the container's terminal too
    if not os.path.exists("/dev/console"):
        open("/dev/console", "a").close()
    sc.mount(slave_path, "/dev/console", None, sc.MS_BIND)
    sock = socket.socket(fileno=console_sock)
    try:
        socket.send_fds(sock, [b"pty"], [master])
    finally:
        sock.close()  # closes console_sock too
    os.close(master)


# ---------------------------------------------------------------- finalize: shared with exec
def _home_of(uid: int) -> str:
    """runc sets HOME from the container's /etc/passwd when the spec's env has none."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def set_user(user: dict, caps: dict) -> None:
    """Groups, gid, uid, then the capability sets, in that order (runc's finalizeNamespace).
    The bounding set goes first: what is not in it is gone for good, even for setuid programs."""
    keep = security.cap_mask(caps.get("bounding") or [])
    for cap in range(sc.cap_last_cap() + 1):
        if not keep >> cap & 1:
            sc.capbset_drop(cap)
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    os.setgroups([int(g) for g in user.get("additionalGids") or []])
    os.setgid(gid)
    os.setuid(uid)  # a non-root uid loses all remaining capabilities here
    if uid == 0:
        try:  # (fails for a capability the runtime itself lacks: runc's "unable to apply caps")
            sc.capset(security.cap_mask(caps.get("effective") or []), security.cap_mask(caps.get("permitted") or []),
                      security.cap_mask(caps.get("inheritable") or []))
        except OSError as e:
            raise StartError(125, f"unable to apply caps: {os.strerror(e.errno).lower()}") from None
    raisable = set(caps.get("inheritable") or []) & set(caps.get("permitted") or [])
    for name in caps.get("ambient") or []:
        if name in raisable:  # (the kernel refuses the others; runc skips them too: `runc spec` lists some)
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, security.cap_number(name))


def finalize(process: dict, seccomp_bpf: bytes | None = None) -> tuple[str, list[str], dict]:
    """From a privileged helper to the user's process: rlimits, seccomp, user, capabilities,
    cwd, no_new_privs, the AppArmor profile for the execve, the program's path; everything
    but the execve itself (the caller has closed every fd the program must not get).
    Returns (program path, argv, environment)."""
    nnp = bool(process.get("noNewPrivileges"))
    if seccomp_bpf and not nnp:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the capabilities
        # go (runc does the same). The calls left before execve are all in Docker's allow-list.
        sc.seccomp_filter(seccomp_bpf)
    for r in process.get("rlimits") or []:  # (2**64-1 in the spec is RLIM_INFINITY)
        soft, hard = (resource.RLIM_INFINITY if int(v) >= 2**63 else int(v) for v in (r["soft"], r["hard"]))
        resource.setrlimit(bundle.RLIMITS[r["type"]], (soft, hard))
    user = process.get("user") or {}
    env = list(process.get("env") or [])
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={_home_of(int(user.get('uid', 0)))}")
    cwd = process.get("cwd") or "/"
    set_user(user, process.get("capabilities") or {})
    try:
        os.chdir(cwd)  # as the user: fails if they may not enter it
    except OSError as e:
        raise StartError(126, f'chdir to cwd ("{cwd}") set in config.json failed: '
                              f"{os.strerror(e.errno).lower()}") from None
    if nnp:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
        if seccomp_bpf:
            sc.seccomp_filter(seccomp_bpf)  # as late as possible: few calls run under it before execve
    try:  # AppArmor: the profile the program starts under, at execve (core/apparmor.py)
        apparmor.apply_on_exec(process.get("apparmorProfile"))
    except apparmor.ApplyError as e:
        raise StartError(e.code, str(e)) from None
    path_env = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    argv = list(process["args"])
    exe = steps.get("find_executable", find_executable)(argv[0], path_env)
    return exe, argv, dict(e.split("=", 1) for e in env if "=" in e)


def compile_seccomp(spec: dict) -> bytes | None:
    """The BPF program of the spec's linux.seccomp (None: no filter, e.g. --privileged)."""
    section = (spec.get("linux") or {}).get("seccomp")
    if not section:
        return None
    from . import seccomp
    return seccomp.compile(section)


def close_fds(keep: set[int]) -> None:
    """No host file descriptor may leak into the container (CVE-2024-21626)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def execve(exe: str, argv: list[str], env: dict) -> None:
    try:
        os.execve(exe, argv, env)
    except OSError as e:
        code = 127 if e.errno == errno.ENOENT else 126
        raise StartError(code, f'exec: "{argv[0]}": {os.strerror(e.errno).lower()}') from None


def report(err_fd: int, code: int, message: str) -> None:
    """The reason a start failed, to the runtime (or, once it has gone: a `runc create`
    that returned, to the container's stderr, as runc init logs it)."""
    try:
        if err_fd < 0:
            os.write(2, f"exec failed: {message}\n".encode())
        else:
            os.write(err_fd, json.dumps({"code": code, "message": message}).encode())
    except OSError:
        pass


CREATED = b"C"  # said on the error pipe by an init that waits for `start` (runc's "created")


def wait_for_start(err_fd: int, exec_fifo: int) -> None:
    """runc's create/start split: everything is ready, the program found; tell the runtime
    ("created": it may exit now) and wait for `start` to write a byte into exec.fifo. The
    fifo was opened read-write by the runtime, so this read blocks until then (and no open
    of a path is needed from inside the container)."""
    os.write(err_fd, CREATED)
    os.close(err_fd)
    while not os.read(exec_fifo, 1):
        pass
    os.close(exec_fifo)


def reset_signals() -> None:
    """Every signal to its default action and none blocked: an ignored signal survives execve,
    and the program must start as Docker's do, whatever the runtime's own parents ignored
    (the monitor ignores SIGINT/HUP/TERM/QUIT; GNU make leaves 32 and 33 ignored)."""
    for sig in range(1, signal.SIGRTMAX + 1):
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            sc.default_signal_action(sig)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


# ---------------------------------------------------------------- the container's init
def enter_namespaces(new: int, join: dict[str, str]) -> None:
    """setns() into each namespace the spec gives a path for ({"net": "/proc/42/ns/net"}), then
    unshare() the new ones (`new`: CLONE_NEW* flags), but not PID (core/runc.py did it before the
    fork: it applies to children) nor cgroup (only once the runtime has put us in our cgroup)."""
    for kind, path in join.items():
        if kind != "pid":  # (the PID namespace was entered before the fork)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, bundle.NAMESPACES[kind])
            finally:
                os.close(fd)
    sc.unshare(new & ~(sc.CLONE_NEWPID | sc.CLONE_NEWCGROUP))


def stay_as_init(exe: str, argv: list[str], env: dict, err_fd: int = -1, profile: str | None = None) -> None:
    """`--init` (Docker's docker-init, which is tini): PID 1 does not become the program; it
    starts it as its child and stays, doing the two jobs of an init that most programs skip:

      * reap: an orphan anywhere in the container is re-parented to PID 1; if PID 1 never
        wait()s for it, it stays a zombie (a `Z` in ps) for as long as the container runs;
      * forward signals: the kernel delivers to a namespace's PID 1 only the signals it has a
        handler for, so `docker stop`'s SIGTERM does nothing to a program that has none; an
        init passes it on to the program, which then gets the default action (it ends).

    Signals are blocked and taken with sigwaitinfo (tini does the same with sigtimedwait);
    PID 1 exits with the program's exit status (128 + n if a signal ended it). The runtime
    learns that the program started as without --init: `err_fd` (close-on-exec) reaches EOF
    when the child's execve succeeds, or carries its error."""
    catchable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, catchable)
    child = os.fork()
    if child == 0:
        try:
            if os.isatty(0):  # (tini's way: the terminal's ^C goes to the program, once, not to us too)
                os.setpgid(0, 0)
                os.tcsetpgrp(0, os.getpgrp())  # (SIGTTOU is still blocked here)
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            execve(exe, argv, env)
        except StartError as e:
            report(err_fd, e.code, f"unable to start container process: {e}")
            os._exit(e.code)
        except BaseException as e:  # noqa: BLE001 -- nothing may escape a forked child
            report(err_fd, 125, f"{type(e).__name__}: {e}")
            os._exit(125)
        finally:
            os._exit(127)
    if err_fd >= 0:
        os.close(err_fd)  # our copy: the child's goes at its execve
    sc.prctl(sc.PR_SET_DUMPABLE, 0)  # our memory and environment are the host's: keep them unreadable
    sc.set_process_name("minidocker-init")
    _show_as(["/sbin/minidocker-init", "--"] + argv)
    apparmor.change_profile(profile)  # (the program got it at its execve; now us too, as tini has it)
    while True:
        info = signal.sigwaitinfo(catchable)
        if info.si_signo != signal.SIGCHLD:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass
            continue
        while True:  # reap everything that ended; the program's end is ours too
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid == 0:
                break
            if pid == child:
                os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status)
                         else 128 + os.WTERMSIG(status))


def _show_as(args: list[str]) -> None:
    """What `ps` shows for us: /proc/self/cmdline is the memory the kernel recorded as our argv
    (the monitor's, which we were forked from, host paths included); write over it, as
    setproctitle does, cutting what does not fit."""
    import ctypes
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start, end = int(fields[48 - 3]), int(fields[49 - 3])  # arg_start, arg_end (proc(5))
    except (OSError, IndexError, ValueError):
        return
    room = end - start
    text = b"\0".join(a.encode() for a in args) + b"\0"
    ctypes.memmove(start, text[:room - 1].ljust(room, b"\0"), room)


def enter_user_namespace(spec: dict, join: dict[str, str], sync_r: int, sync_w: int, err_fd: int) -> None:
    """The middle process of a start with a new user namespace (core/runc.py's
    _map_user_namespace has the whole exchange). Returns in its child, PID 1 of the new PID
    namespace, inside the user namespace as its root; the middle process itself exits here."""
    try:
        _set_oom_score_adj(spec)  # (lowering it needs CAP_SYS_RESOURCE on the host: before we lose it)
        for kind, path in join.items():  # (a namespace to join belongs to the host: join it while we can)
            if kind not in ("pid", "user"):
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, bundle.NAMESPACES[kind])
                finally:
                    os.close(fd)
        new, _ = bundle.namespaces(spec)
        sc.unshare(sc.CLONE_NEWUSER | (new & sc.CLONE_NEWNS))  # (the mount namespace: the user namespace's)
        _open_bind_sources(spec)
        os.write(sync_w, b"U")
        if os.read(sync_r, 1) != b"M":
            os._exit(1)  # the runtime gave up on us
        os.setresgid(0, 0, 0)  # root of the new namespace: full capabilities inside it, none outside
        os.setresuid(0, 0, 0)
        if new & sc.CLONE_NEWPID:
            sc.unshare(sc.CLONE_NEWPID)  # owned by the user namespace, so PID 1 may mount its /proc
        _fork_pid_one(sync_w)
    except BaseException as e:  # noqa: BLE001 -- nothing may escape a forked child
        report(err_fd, 125, f"user namespace: {type(e).__name__}: {e}")
        os._exit(125)


def enter_pid_namespace(join: dict[str, str], sync_w: int, err_fd: int) -> None:
    """The middle process of a start in rootless mode, where the runtime may not go back to
    its own PID namespace after entering the container's (that namespace belongs to the host:
    setns to it needs the host's CAP_SYS_ADMIN). So a child enters it instead and forks PID 1
    there; it reports PID 1's PID (as seen by the runtime) and exits. Returns in PID 1."""
    try:
        if "pid" in join:
            fd = os.open(join["pid"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                sc.setns(fd, sc.CLONE_NEWPID)
            finally:
                os.close(fd)
        else:
            sc.unshare(sc.CLONE_NEWPID)
        _fork_pid_one(sync_w)
    except BaseException as e:  # noqa: BLE001 -- nothing may escape a forked child
        report(err_fd, 125, f"PID namespace: {type(e).__name__}: {e}")
        os._exit(125)


def _fork_pid_one(sync_w: int) -> None:
    """The middle process's last step: fork PID 1 (of the PID namespace it entered), tell the
    runtime its PID (4 bytes), exit. Returns in PID 1, once the PID has been told."""
    go_r, go_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(go_w)
        os.read(go_r, 1)  # let the middle process report our PID before we say anything
        os.close(go_r)
        return
    os.close(go_r)
    os.write(sync_w, child.to_bytes(4, "little"))
    os.close(go_w)
    os._exit(0)


def _open_bind_sources(spec: dict) -> None:
    """Root of a user namespace is nobody to the host's directories: a bind mount's source under
    a directory only the host's root may enter (/root/data, a 0700 temporary directory) would
    be out of its reach. Opened now, while our files' uid is still the host's 0, each source is
    mounted later through /proc/self/fd/<n>, which walks no directory on the way (runc too
    opens the sources before the container's init may no longer reach them)."""
    for m in spec.get("mounts") or []:
        if bundle.is_bind(m) and m.get("source"):
            try:
                fd = os.open(m["source"], os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # (mount_entry reports it, as without a user namespace)
            m["source"] = f"/proc/self/fd/{fd}"


def _set_oom_score_adj(spec: dict) -> None:
    if "oomScoreAdj" in spec["process"]:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(int(spec["process"]["oomScoreAdj"])))


def run(spec: dict, root: str, cgroup_mounts: list[tuple], sync_r: int, sync_w: int, err_fd: int,
        console_sock: int | None, exec_fifo: int | None = None) -> None:
    """Never returns: execve()s the user's command or exits with the error code.
    `exec_fifo`: wait there for `start` before the execve (minidocker-runc create)."""
    try:
        reset_signals()
        new, join = bundle.namespaces(spec)
        if new & sc.CLONE_NEWUSER:  # enter_user_namespace did the user and mount namespaces, the joins
            new, join = new & ~(sc.CLONE_NEWUSER | sc.CLONE_NEWNS), {}
        else:
            _set_oom_score_adj(spec)
        steps.get("enter_namespaces", enter_namespaces)(new, join)
        if new & sc.CLONE_NEWNET:
            netdev.link_up("lo")  # a new network namespace's loopback starts down
        os.write(sync_w, b"R")
        # compiled while the host's libseccomp is still reachable; installed by finalize().
        # (Now, while the runtime moves us into our cgroup: ~10 ms each, done side by side.)
        seccomp_bpf = compile_seccomp(spec)
        if os.read(sync_r, 1) != b"G":
            os._exit(1)  # the runtime gave up on us
        os.close(sync_r)
        os.close(sync_w)
        if new & sc.CLONE_NEWCGROUP:
            # Now that the runtime has put us in our cgroup, a new cgroup namespace makes that
            # cgroup look like the root ("/") from inside, as /proc/self/cgroup will show.
            sc.unshare(sc.CLONE_NEWCGROUP)
        rootfs.setup(root, spec, cgroup_mounts)
        if spec.get("hostname") and new & sc.CLONE_NEWUTS:
            sc.sethostname(spec["hostname"])
        process = spec["process"]
        # a missing working directory is made now, inside (as runc does: under the volumes too)
        os.makedirs(process.get("cwd") or "/", mode=0o755, exist_ok=True)
        if process.get("terminal"):
            make_terminal(console_sock)
        close_fds({err_fd} | ({exec_fifo} if exec_fifo is not None else set()))
        exe, argv, env = finalize(process, seccomp_bpf)
        if exec_fifo is not None:
            wait_for_start(err_fd, exec_fifo)
            err_fd = -1  # (the runtime has gone: a failure from here on is for stderr)
        if (spec.get("annotations") or {}).get(bundle.INIT_ANNOTATION) == "true":
            stay_as_init(exe, argv, env, err_fd, process.get("apparmorProfile"))  # --init: never returns
        execve(exe, argv, env)
    except StartError as e:
        report(err_fd, e.code, f"unable to start container process: {e}")
        os._exit(e.code)
    except steps.StepError as e:  # MINIDOCKER_STEPS' file, or a step in it, failed: its one line
        report(err_fd, e.exit_code, str(e))
        os._exit(e.exit_code)
    except BaseException as e:  # noqa: BLE001 -- nothing may escape a forked child
        report(err_fd, 125, f"{type(e).__name__}: {e}")
        os._exit(125)
