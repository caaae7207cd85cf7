"""The container monitor ("shim"): one small process per running container.

Docker has a daemon; minidocker does not. Something must still outlive the `minidocker run -d`
command that started a container, to collect its output and its exit code. That is
this process, like containerd-shim/conmon:

    minidocker CLI (or a notebook) --spawns--> shim (this file, a fresh Python process)
                                                 | unshare(CLONE_NEWPID); fork()
                                                 v
                                               init.py (PID 1 in the container) --execve--> user command

The shim is started with subprocess (never fork() in the caller: a Jupyter kernel is
multi-threaded, and fork() of a threaded process can deadlock the child). It runs in its
own session, so closing the terminal or the notebook does not kill the container.

What it does, in order:
  1. hold containers/<id>/shim.lock for its whole life ("this container has a monitor");
  2. mount the container's overlay (storage/overlay2.py);
  3. fork the container's init in a new PID namespace, let it set itself up;
  4. report "started" (or the start error) to whoever spawned it, on a status pipe;
  5. copy the container's stdout/stderr to the json-file log (and to an attached CLI);
  6. wait for PID 1 to exit, record ExitCode/FinishedAt, unmount, and remove the
     container if it was run with --rm; report "exited <code>".
"""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

from .. import cgroups
from ..cgroups import limits
from ..errors import MinidockerError
from ..images.store import ImageStore
from ..linux import syscalls as sc
from ..paths import StateRoot
from . import init as initmod
from . import logs, state as st
from .store import ContainerStore


class Shim:
    def __init__(self, root: StateRoot, cid: str, status_fd: int, attach: tuple[int, int, int] | None,
                 caller: int = -1):
        self.root = root
        self.cid = cid
        self.status_fd = status_fd
        self.attach_in, self.attach_out, self.attach_err = attach or (-1, -1, -1)
        # A pidfd of the attached caller: it becomes readable when the caller exits, and then
        # we let go of its stdio (otherwise whoever reads the caller's stdout would wait for
        # the container to end). Opened before we daemonize, while the caller surely lives.
        self.caller_fd = -1
        if caller > 0 and attach:
            try:
                self.caller_fd = os.pidfd_open(caller)
            except OSError:
                pass
        self.containers = ContainerStore(root)
        self.images = ImageStore(root)

    # --- talking to the process that started us ---
    def report(self, **event) -> None:
        if self.status_fd < 0:
            return
        try:
            os.write(self.status_fd, (json.dumps(event) + "\n").encode())
        except OSError:
            self.status_fd = -1  # the CLI went away: carry on without it

    def _write_attached(self, fd_attr: str, data: bytes) -> None:
        fd = getattr(self, fd_attr)
        if fd < 0:
            return
        try:
            os.write(fd, data)
        except OSError:
            setattr(self, fd_attr, -1)

    # --- the main sequence ---
    def run(self) -> int:
        sc.set_process_name("minidocker-shim")
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)  # only the container decides when we end
        lock_fd = os.open(self.containers.shim_lock_path(self.cid),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        import fcntl
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.report(event="error", code=125, message="container is already running")
            return 125
        os.ftruncate(lock_fd, 0)
        os.write(lock_fd, str(os.getpid()).encode())
        rec = self.containers.read(self.cid)
        mount_id = self.images.container_mount_id(self.cid)
        try:
            merged = self.images.driver.mount(mount_id)
        except OSError as e:
            self.report(event="error", code=125, message=f"error mounting the container's rootfs: {e}")
            return 125
        try:
            return self._run_container(rec, merged)
        finally:
            self.images.driver.unmount(mount_id)

    def _container_spec(self, rec: dict, merged: str) -> dict:
        cfg = rec["Config"]
        return {
            "rootfs": merged,
            "etc_files": {"/etc/hostname": rec["HostnamePath"], "/etc/hosts": rec["HostsPath"],
                          "/etc/resolv.conf": rec["ResolvConfPath"]},
            "hostname": cfg.get("Hostname") or rec["Id"][:12],
            "argv": [rec["Path"]] + list(rec["Args"]),
            "env": cfg.get("Env") or [],
            "cwd": cfg.get("WorkingDir") or "/",
            "user": cfg.get("User") or "",
            "tty": bool(cfg.get("Tty")),
        }

    def _run_container(self, rec: dict, merged: str) -> int:
        spec = self._container_spec(rec, merged)
        try:
            cg = cgroups.driver()
        except MinidockerError as e:
            self.report(event="error", code=125, message=str(e))
            return 125
        spec["cgroup_mounts"] = cg.container_mounts()
        if cg.version == 2:
            # Docker guards device access on v2 with an eBPF program; we have none, so the
            # container's root must not create device nodes at all.
            spec["drop_caps"] = ["MKNOD"]
        tty = spec["tty"]
        interactive = bool(rec["Config"].get("OpenStdin"))

        # stdin: the attached caller's stdin (-i), a pipe kept open (-d -i), or /dev/null
        keep_open_w = -1
        if interactive and self.attach_in >= 0 and not tty:
            child_in = self.attach_in
        elif interactive and not tty:
            child_in, keep_open_w = os.pipe()
        else:
            child_in = os.open("/dev/null", os.O_RDONLY)
        out_r = out_w = err_r = err_w = -1
        console_parent = console_child = None
        if tty:
            console_parent, console_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
        sync_parent_r, sync_child_w = os.pipe()
        sync_child_r, sync_parent_w = os.pipe()
        err_r_pipe, err_w_pipe = os.pipe2(os.O_CLOEXEC)

        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # orphans in the container are ours to reap
        sc.unshare(sc.CLONE_NEWPID)             # our next child is PID 1 of a new namespace
        pid = os.fork()
        if pid == 0:  # ---- child: becomes the container
            try:
                devnull = os.open("/dev/null", os.O_RDWR)
                os.dup2(child_in, 0)
                os.dup2(out_w if out_w >= 0 else devnull, 1)
                os.dup2(err_w if err_w >= 0 else devnull, 2)
                initmod.run(spec, sync_child_r, sync_child_w, err_w_pipe,
                            console_child.detach() if console_child else None)
            finally:
                os._exit(125)

        # ---- parent: the monitor
        for fd in (child_in, out_w, err_w, sync_child_r, sync_child_w, err_w_pipe):
            if fd >= 0 and fd != self.attach_in:
                os.close(fd)
        if not tty and self.attach_in >= 0:
            os.close(self.attach_in)  # the container has it now; we only relay stdin for -t
            self.attach_in = -1
        if console_child:
            console_child.close()

        setup_error = None
        if os.read(sync_parent_r, 1) == b"R":
            # The child waits while we put it in its cgroup (and later: network), so the
            # user's command starts already limited.
            try:
                cg.create(self.cid)
                cg.apply(self.cid, limits.resources_from_hostconfig(rec["HostConfig"]))
                cg.add_process(self.cid, pid)
                os.write(sync_parent_w, b"G")
            except (MinidockerError, OSError) as e:
                setup_error = str(e)
        os.close(sync_parent_r)
        os.close(sync_parent_w)  # without "G" the child gives up
        if setup_error:
            os.waitpid(pid, 0)
            self._remove_cgroup(cg)
            with self.containers.update(self.cid) as r:
                st.set_start_failed(r["State"], 125, setup_error)
            self.report(event="error", code=125, message=setup_error)
            return 125

        master = -1
        if console_parent:
            try:
                _, fds, _, _ = socket.recv_fds(console_parent, 16, 1)
                master = fds[0] if fds else -1
            except OSError:
                master = -1
            console_parent.close()
            if master >= 0:
                self._copy_winsize(master)

        failure = b""
        while True:
            chunk = os.read(err_r_pipe, 65536)
            if not chunk:
                break
            failure += chunk
        os.close(err_r_pipe)
        if failure:
            _, status = os.waitpid(pid, 0)
            self._remove_cgroup(cg)
            err = json.loads(failure)
            msg = err["message"]
            with self.containers.update(self.cid) as r:
                st.set_start_failed(r["State"], err["code"], msg)
            self.report(event="error", code=err["code"], message=msg)
            return err["code"]

        with self.containers.update(self.cid) as r:
            st.set_running(r["State"], pid, time.time_ns())
        self.report(event="started", pid=pid)

        self._pump(out_r, err_r, master, tty, interactive)
        code = self._reap(pid)
        if keep_open_w >= 0:
            os.close(keep_open_w)

        oom = False
        try:
            oom = cg.oom_kills(self.cid) > 0  # the kernel counted an OOM kill in our cgroup
        except OSError:
            pass
        self._remove_cgroup(cg)
        with self.containers.update(self.cid) as r:
            st.set_exited(r["State"], code, time.time_ns(), oom=oom)
            auto_remove = r["HostConfig"].get("AutoRemove")
        if auto_remove:  # --rm: the monitor removes the container itself
            self.images.driver.unmount(self.images.container_mount_id(self.cid))
            self.images.remove_container_layers(self.cid)
            self.containers.delete(self.cid)
        self.report(event="exited", code=code)
        return 0

    def _remove_cgroup(self, cg) -> None:
        try:
            cg.remove(self.cid)
        except (MinidockerError, OSError) as e:  # prune retries; the exit code matters more
            print(f"minidocker-shim: cannot remove cgroup of {self.cid}: {e}", file=sys.stderr)

    def _detach(self) -> None:
        for attr in ("attach_out", "attach_err"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

    def _copy_winsize(self, master: int) -> None:
        import fcntl
        import termios
        src = self.attach_out if self.attach_out >= 0 else self.attach_in
        if src < 0:
            return
        try:
            ws = fcntl.ioctl(src, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, ws)
        except OSError:
            pass

    def _pump(self, out_r: int, err_r: int, master: int, tty: bool, interactive: bool) -> None:
        """Copy container output to the log (and the attached caller) until it closes."""
        writer = logs.JsonFileWriter(self.containers.log_path(self.cid))
        sel = selectors.DefaultSelector()
        splitters = {}
        if tty:
            if master >= 0:
                sel.register(master, selectors.EVENT_READ, ("stdout", "attach_out"))
                splitters[master] = logs.LineSplitter("stdout")
                if interactive and self.attach_in >= 0:
                    sel.register(self.attach_in, selectors.EVENT_READ, ("stdin", None))
        else:
            for fd, stream, attr in ((out_r, "stdout", "attach_out"), (err_r, "stderr", "attach_err")):
                sel.register(fd, selectors.EVENT_READ, (stream, attr))
                splitters[fd] = logs.LineSplitter(stream)
        if self.caller_fd >= 0:
            sel.register(self.caller_fd, selectors.EVENT_READ, ("caller", None))
        open_outputs = len(splitters)
        while open_outputs:
            for key, _ in sel.select():
                fd = key.fd
                stream, attr = key.data
                if stream == "caller":  # the attached CLI is gone: detach from its stdio
                    sel.unregister(fd)
                    self._detach()
                    if self.attach_in >= 0 and self.attach_in in sel.get_map():
                        sel.unregister(self.attach_in)
                    continue
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO on a pty master: every slave fd is closed
                    data = b""
                if stream == "stdin":
                    if data and master >= 0:
                        try:
                            os.write(master, data)
                        except OSError:
                            pass
                    else:
                        sel.unregister(fd)
                    continue
                if not data:
                    sel.unregister(fd)
                    for line in splitters[fd].flush():
                        writer.write(line, stream)
                    os.close(fd)
                    open_outputs -= 1
                    continue
                self._write_attached(attr, data)
                for line in splitters[fd].feed(data):
                    writer.write(line, stream)
        writer.close()

    def _reap(self, pid: int) -> int:
        """Wait for PID 1; as a subreaper we also collect any re-parented orphans."""
        while True:
            try:
                got, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 255
            if got == pid:
                return st.exit_code_from_wait_status(status)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root, cid, status_fd = argv[0], argv[1], int(argv[2])
    attach = tuple(int(x) for x in argv[3:6]) if len(argv) >= 6 else None
    caller = int(argv[6]) if len(argv) >= 7 else -1
    try:
        shim = Shim(StateRoot(root), cid, status_fd, attach, caller)
    except MinidockerError as e:
        os.write(status_fd, (json.dumps({"event": "error", "code": 125, "message": str(e)}) + "\n").encode())
        return 125
    # Daemonize: the parent exits at once so whoever spawned us can reap it right away
    # and never keeps a zombie; we carry on, adopted by init (or the nearest subreaper).
    if os.fork() > 0:
        os._exit(0)
    try:
        return shim.run()
    except MinidockerError as e:
        os.write(status_fd, (json.dumps({"event": "error", "code": 125, "message": str(e)}) + "\n").encode())
        return 125


if __name__ == "__main__":
    sys.exit(main())
