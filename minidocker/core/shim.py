"""The container monitor ("shim"): one small process per running container.

Taught in notebook 01 (a container is a process). Docker has a daemon; minidocker does not.
Something must still outlive the `minidocker run -d` command that started a container, to
collect its output and its exit code. That is this process, like containerd-shim/conmon:

    minidocker CLI (or a notebook) --spawns--> monitor (engine/monitor.py: Docker's part)
                                                 | Shim(...).run()  (this file: no Docker here)
                                                 | runc.start(bundle): unshare(CLONE_NEWPID); fork()
                                                 v
                                               init.py (PID 1 in the container) --execve--> program

The monitor is started with subprocess (never fork() in the caller: a Jupyter kernel is
multi-threaded, and fork() of a threaded process can deadlock the child). It runs in its
own session, so closing the terminal or the notebook does not kill the container.

What the shim does, in order:
  1. make the container's stdio: pipes it reads, or (process.terminal) a pty the container
     makes and sends back;
  2. runc.start(bundle): the container runs; report "started" (or the start error) to
     whoever spawned the monitor, on a status pipe;
  3. copy the container's stdout/stderr to the log (and to an attached CLI);
  4. wait for PID 1 to exit (and reap orphans: it is the subreaper), runc.delete;
     report "exited <code>".
The Docker-side work around these steps (the overlay mount, the network, the container's
record, --rm) is done through `hooks`, which engine/monitor.py provides.
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys

from . import bundle, cgroups, runc, steps
from .stdio import StdinFeeder, split_detach
from .linux import syscalls as sc


def report(status_fd: int, **event) -> int:
    """One JSON event per line on the status pipe; returns -1 once the reader has gone."""
    if status_fd < 0:
        return -1
    try:
        os.write(status_fd, (json.dumps(event) + "\n").encode())
        return status_fd
    except OSError:
        return -1  # the CLI went away: carry on without it


class Hooks:
    """What the monitor's owner does at each step (all optional)."""

    def created(self, pid: int) -> None: ...           # the createRuntime moment (runc.start)
    def started(self, pid: int) -> None: ...           # the program runs
    def failed(self, code: int, message: str) -> None: ...  # it never ran
    def exited(self, code: int, oom: bool) -> None: ...     # it ran and ended
    def watch(self) -> dict:                           # {fd: callback(fd)} served while it runs
        return {}

    def poll(self, sel) -> float | None:               # before each wait: may (un)register its own
        return None                                    # fds as ("hook", callback); seconds to wake

    def output(self, stream: str, data: bytes) -> None: ...  # what the container wrote (for attach)
    def stdin(self, fd: int) -> None: ...              # where input for the container goes (-i, -t)


WINSIZE_FILE = "winsize"  # beside the bundle: the terminal size a caller without a tty asks for


class Shim:
    def __init__(self, bundle_dir: str, container_id: str, status_fd: int, log, hooks: Hooks = Hooks(),
                 attach: tuple[int, int, int] | None = None, caller_fd: int = -1, interactive: bool = False):
        self.bundle_dir = bundle_dir
        self.cid = container_id
        self.status_fd = status_fd
        self.log = log              # .feed(stream, data), .end(stream), .close()
        self.hooks = hooks
        self.attach_in, self.attach_out, self.attach_err = attach or (-1, -1, -1)
        # A pidfd of the attached caller: it becomes readable when the caller exits, and then
        # we let go of its stdio (otherwise whoever reads the caller's stdout would wait for
        # the container to end).
        self.caller_fd = caller_fd
        self.interactive = interactive
        self.held = b""  # input that may be the start of the detach keys

    def report(self, **event) -> None:
        self.status_fd = report(self.status_fd, **event)

    def _write_attached(self, fd_attr: str, data: bytes) -> None:
        fd = getattr(self, fd_attr)
        if fd < 0:
            return
        try:
            os.write(fd, data)
        except OSError:
            setattr(self, fd_attr, -1)

    # --- the main sequence ---
    def fail(self, code: int, message: str) -> int:
        self.hooks.failed(code, message)
        self.report(event="error", code=code, message=message)
        return code

    def run(self) -> int:
        try:
            spec = bundle.load(self.bundle_dir)
        except bundle.BundleError as e:
            return self.fail(e.exit_code, str(e))
        tty = bool(spec["process"].get("terminal"))
        io = self._stdio(tty)
        try:
            pid = runc.start(self.bundle_dir, self.cid, (io["child_in"], io["out_w"], io["err_w"]), spec=spec,
                             console_sock=io["console_child"].fileno() if io["console_child"] else None,
                             on_created=self.hooks.created)
        except runc.StartFailed as e:
            self._close_child_ends(io)
            if io["console_parent"]:
                io["console_parent"].close()
            for fd in (io["out_r"], io["err_r"], io["keep_open_w"]):
                if fd >= 0:
                    os.close(fd)
            return self.fail(e.code, str(e))
        self._close_child_ends(io)
        master = self._receive_terminal(io)
        if master >= 0:
            # the attached caller's window changes size: it sends us SIGWINCH (run -it), we pass
            # the new size on to the container's terminal (whose programs then get SIGWINCH);
            # a caller without a terminal of its own (the Engine API) writes the size to a file
            signal.signal(signal.SIGWINCH, lambda *_: self._copy_winsize(master))
        self.hooks.started(pid)
        self.report(event="started", pid=pid)

        if master >= 0 and self.interactive:
            self.hooks.stdin(master)
        elif io["keep_open_w"] >= 0 and self.attach_in < 0:
            self.hooks.stdin(io["keep_open_w"])
        feeder = None
        if io["keep_open_w"] >= 0 and self.attach_in >= 0:  # -i, attached: copy the caller's input
            feeder, io["keep_open_w"] = StdinFeeder(self.attach_in, io["keep_open_w"]), -1
        self._pump(io["out_r"], io["err_r"], master, tty, feeder)
        code = self._reap(pid)
        if io["keep_open_w"] >= 0:
            os.close(io["keep_open_w"])
        oom = False
        try:
            oom = oom_killed(spec, self.cid)  # the kernel counted an OOM kill in our cgroup
        except (OSError, cgroups.CgroupError):
            pass
        try:
            runc.delete(spec, self.cid)
        except (OSError, cgroups.CgroupError) as e:  # prune retries; the exit code matters more
            print(f"minidocker-shim: cannot remove the cgroup of {self.cid}: {e}", file=sys.stderr, flush=True)
        self.hooks.exited(code, oom)
        self.report(event="exited", code=code)
        self._detach()  # the output has ended: let go of the attached caller's stdio
        if self.attach_in >= 0:
            os.close(self.attach_in)
            self.attach_in = -1
        return 0

    def _stdio(self, tty: bool) -> dict:
        """The container's stdin/stdout/stderr: pipes we read (or, with a terminal, one the
        container makes itself). Its stdin (-i) is a pipe we write what the attached caller
        types into (or hold open, -d -i), never the caller's own terminal (core/stdio.py);
        without -i, /dev/null."""
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        io = {"keep_open_w": -1, "out_r": -1, "out_w": devnull, "err_r": -1, "err_w": devnull,
              "console_parent": None, "console_child": None, "devnull": devnull}
        if self.interactive and not tty:
            io["child_in"], io["keep_open_w"] = os.pipe()
        else:
            io["child_in"] = devnull
        if tty:
            io["console_parent"], io["console_child"] = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            io["out_r"], io["out_w"] = os.pipe()
            io["err_r"], io["err_w"] = os.pipe()
        return io

    def _close_child_ends(self, io: dict) -> None:
        for fd in {io["child_in"], io["out_w"], io["err_w"], io["devnull"]}:
            if fd >= 0:
                os.close(fd)
        if self.attach_in >= 0 and not io["console_parent"] and io["keep_open_w"] < 0:
            os.close(self.attach_in)  # no -i: the caller's input goes nowhere
            self.attach_in = -1
        if io["console_child"]:
            io["console_child"].close()
            io["console_child"] = None

    def _receive_terminal(self, io: dict) -> int:
        """With a terminal the container opens a pty on its own /dev/pts and sends us the master."""
        if not io["console_parent"]:
            return -1
        try:
            _, fds, _, _ = socket.recv_fds(io["console_parent"], 16, 1)
            master = fds[0] if fds else -1
        except OSError:
            master = -1
        io["console_parent"].close()
        if master >= 0:
            self._copy_winsize(master)
        return master

    def _detach(self) -> None:
        for attr in ("attach_out", "attach_err"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def _copy_winsize(self, master: int) -> None:
        import fcntl
        import struct
        import termios
        src = self.attach_out if self.attach_out >= 0 else self.attach_in
        try:
            if src >= 0 and os.isatty(src):
                ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
            else:  # "rows cols" beside the bundle (POST /containers/{id}/resize)
                with open(os.path.join(os.path.dirname(self.bundle_dir), WINSIZE_FILE)) as f:
                    rows, cols = (int(x) for x in f.read().split()[:2])
                ws = struct.pack("HHHH", rows, cols, 0, 0)
            fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
        except (OSError, ValueError):
            pass

    def _pump(self, out_r: int, err_r: int, master: int, tty: bool, feeder: StdinFeeder | None = None) -> None:
        """Copy container output to the log (and the attached caller) until it closes, and the
        caller's input to the container's stdin; serve the hooks' file descriptors (Docker's
        embedded DNS) and timers (health probes) meanwhile. (poll, not epoll: a caller's stdin
        may be a regular file.)"""
        sel = selectors.PollSelector()
        if feeder is not None:
            feeder.register(sel)
        streams = 0
        if tty:
            if master >= 0:
                sel.register(master, selectors.EVENT_READ, ("stdout", "attach_out"))
                streams += 1
                if self.interactive and self.attach_in >= 0:
                    sel.register(self.attach_in, selectors.EVENT_READ, ("stdin", None))
        else:
            for fd, stream, attr in ((out_r, "stdout", "attach_out"), (err_r, "stderr", "attach_err")):
                sel.register(fd, selectors.EVENT_READ, (stream, attr))
                streams += 1
        if self.caller_fd >= 0:
            sel.register(self.caller_fd, selectors.EVENT_READ, ("caller", None))
        for fd, callback in self.hooks.watch().items():
            sel.register(fd, selectors.EVENT_READ, ("hook", callback))
        while streams:
            try:
                wake = self.hooks.poll(sel)
            except Exception as e:  # noqa: BLE001 -- a hook's trouble must not end the monitor
                print(f"minidocker-shim: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                wake = 1.0
            for key, _ in sel.select(None if wake is None else min(wake, 3600.0)):
                fd = key.fd
                stream, attr = key.data
                if stream == "hook":
                    try:
                        attr(fd)
                    except Exception as e:  # noqa: BLE001 -- (as above)
                        print(f"minidocker-shim: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                    continue
                if stream == "stdin-feed":
                    attr.handle(fd)
                    continue
                if stream == "caller":  # the attached CLI is gone: detach from its stdio
                    sel.unregister(fd)
                    self._detach()
                    if feeder is not None:
                        feeder.close()  # the container sees the end of its input, as in Docker
                    if self.attach_in >= 0 and self.attach_in in sel.get_map():
                        sel.unregister(self.attach_in)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO on a pty master: every slave fd is closed
                    data = b""
                if stream == "stdin":
                    detached, ended = False, not data
                    if data:  # (a lone ctrl-p is held back: not sent on yet, and not an end either)
                        data, self.held, detached = split_detach(data, self.held)
                    if data and master >= 0:
                        try:
                            os.write(master, data)
                        except OSError:
                            pass
                    if ended:  # the caller's input ended
                        if self.held and master >= 0:
                            try:
                                os.write(master, self.held)
                            except OSError:
                                pass
                        self.held = b""
                        sel.unregister(fd)
                    if detached:  # ctrl-p ctrl-q (run -it): the caller leaves, the container runs on
                        sel.unregister(fd)
                        self.report(event="detached")
                        self._detach()
                        if self.caller_fd >= 0 and self.caller_fd in sel.get_map():
                            sel.unregister(self.caller_fd)
                    continue
                if not data:
                    sel.unregister(fd)
                    self.log.end(stream)
                    os.close(fd)
                    streams -= 1
                    continue
                self._write_attached(attr, data)
                self.hooks.output(stream, data)
                self.log.feed(stream, data)
        if feeder is not None:
            feeder.close()
        self.log.close()

    def _reap(self, pid: int) -> int:
        """Wait for PID 1; as a subreaper we also collect any re-parented orphans."""
        while True:
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if got == pid:
                return steps.get("exit_status", runc.exit_status)(status)


def oom_killed(spec: dict, container_id: str) -> bool:
    parent, name = runc.cgroup_of(spec, container_id)
    return cgroups.driver(parent).oom_kills(name) > 0


def become_monitor() -> None:
    """The process-wide settings of a monitor: its name in `ps`, and no signal from a terminal
    or a parent ends it (only the container decides when it ends)."""
    sc.set_process_name("minidocker-shim")
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
