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

from . import cgroups
from ..container import hostconfig
from ..errors import MinidockerError
from ..images.store import ImageStore
from .linux import syscalls as sc
from ..network.modes import Networking
from ..network.store import PREDEFINED
from ..paths import StateRoot
from . import init as initmod
from ..container import logs, state as st
from ..container.store import ContainerStore


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
            "mounts": list(rec.get("Mounts") or []) + [
                {"Type": "tmpfs", "Source": "", "Destination": t, "Mode": o, "RW": "ro" not in o.split(",")}
                for t, o in ((rec.get("HostConfig") or {}).get("Tmpfs") or {}).items()],
        }

    def _fail_start(self, code: int, message: str) -> int:
        with self.containers.update(self.cid) as r:
            st.set_start_failed(r["State"], code, message)
        self.report(event="error", code=code, message=message)
        return code

    def _run_container(self, rec: dict, merged: str) -> int:
        spec = self._container_spec(rec, merged)
        net = Networking(self.root)
        try:
            cg = cgroups.driver()
            kind, join_pid, joined = net.join_target(rec, self.containers)
        except MinidockerError as e:
            return self._fail_start(125, str(e))
        spec["cgroup_mounts"] = cg.container_mounts()
        if cg.version == 2:
            # Docker guards device access on v2 with an eBPF program; we have none, so the
            # container's root must not create device nodes at all.
            spec["drop_caps"] = ["MKNOD"]
        spec["net"] = {"kind": kind}
        if joined is not None:  # --network container:x shares x's namespace, name and files
            spec["net"]["join_fd"] = os.open(f"/proc/{join_pid}/ns/net", os.O_RDONLY)
            spec["hostname"] = joined["Config"]["Hostname"]
            spec["etc_files"] = {"/etc/hostname": joined["HostnamePath"], "/etc/hosts": joined["HostsPath"],
                                 "/etc/resolv.conf": joined["ResolvConfPath"]}

        io = self._stdio(spec["tty"], bool(rec["Config"].get("OpenStdin")))
        pid, sync_r, sync_w, err_r = self._fork_init(spec, io)
        if "join_fd" in spec["net"]:
            os.close(spec["net"]["join_fd"])

        # The child has its namespaces and waits ("R"): put it in its cgroup and plug its
        # network in now, so the user's command starts limited and connected ("G").
        dns = None
        try:
            if os.read(sync_r, 1) != b"R":
                raise MinidockerError("the container's init died while starting")
            cg.create(self.cid)
            cg.apply(self.cid, hostconfig.oci_resources(rec["HostConfig"]))
            cg.add_process(self.cid, pid)
            rec["NetworkSettings"] = net.attach(rec, pid)
            net.etc_files(rec, joined)
            if any(n not in PREDEFINED for n in rec["NetworkSettings"]["Networks"]):
                dns = self._start_dns(net, pid)
            os.write(sync_w, b"G")
        except (MinidockerError, OSError, RuntimeError) as e:
            setup_error = str(e) or type(e).__name__
        else:
            setup_error = None
        finally:
            os.close(sync_r)
            os.close(sync_w)  # without "G" the child gives up
        if setup_error:
            os.waitpid(pid, 0)
            self._teardown(cg, net, rec, dns)
            return self._fail_start(125, setup_error)

        master = self._receive_terminal(io)
        failure = b""
        while chunk := os.read(err_r, 65536):
            failure += chunk
        os.close(err_r)
        if failure:  # init could not execve the command: docker's 126/127
            os.waitpid(pid, 0)
            self._teardown(cg, net, rec, dns)
            err = json.loads(failure)
            return self._fail_start(err["code"], err["message"])

        with self.containers.update(self.cid) as r:
            st.set_running(r["State"], pid, time.time_ns())
            r["NetworkSettings"] = rec["NetworkSettings"]
        self.report(event="started", pid=pid)

        self._pump(io["out_r"], io["err_r"], master, spec["tty"], io["interactive"], dns)
        code = self._reap(pid)
        if io["keep_open_w"] >= 0:
            os.close(io["keep_open_w"])

        oom = False
        try:
            oom = cg.oom_kills(self.cid) > 0  # the kernel counted an OOM kill in our cgroup
        except OSError:
            pass
        settings = self._teardown(cg, net, rec, dns)
        with self.containers.update(self.cid) as r:
            st.set_exited(r["State"], code, time.time_ns(), oom=oom)
            r["NetworkSettings"] = settings
            auto_remove = r["HostConfig"].get("AutoRemove")
        if auto_remove:  # --rm: the monitor removes the container (and its anonymous volumes)
            self.images.driver.unmount(self.images.container_mount_id(self.cid))
            self.images.remove_container_layers(self.cid)
            self.containers.delete(self.cid)
            from ..engine.runtime import remove_anonymous_volumes
            remove_anonymous_volumes(self.root, rec)
        self.report(event="exited", code=code)
        return 0

    def _stdio(self, tty: bool, interactive: bool) -> dict:
        """The container's stdin/stdout/stderr: pipes we read (or, with -t, a terminal the
        container makes itself); stdin is the caller's (-i attached), a pipe held open
        (-d -i), or /dev/null."""
        io = {"tty": tty, "interactive": interactive, "keep_open_w": -1, "out_r": -1, "out_w": -1,
              "err_r": -1, "err_w": -1, "console_parent": None, "console_child": None}
        if interactive and self.attach_in >= 0 and not tty:
            io["child_in"] = self.attach_in
        elif interactive and not tty:
            io["child_in"], io["keep_open_w"] = os.pipe()
        else:
            io["child_in"] = os.open("/dev/null", os.O_RDONLY)
        if tty:
            io["console_parent"], io["console_child"] = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            io["out_r"], io["out_w"] = os.pipe()
            io["err_r"], io["err_w"] = os.pipe()
        return io

    def _fork_init(self, spec: dict, io: dict) -> tuple[int, int, int, int]:
        """unshare(CLONE_NEWPID) + fork: the child is PID 1 of a new PID namespace and runs
        init.run(). Returns (pid, our end of the sync pipes, the exec-error pipe)."""
        sync_parent_r, sync_child_w = os.pipe()
        sync_child_r, sync_parent_w = os.pipe()
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # orphans in the container are ours to reap
        sc.unshare(sc.CLONE_NEWPID)             # our next child is PID 1 of a new namespace
        pid = os.fork()
        if pid == 0:  # ---- child: becomes the container
            try:
                # our copies of the parent's ends must go, or the child would never see
                # EOF on the sync pipe when the parent gives up
                for fd in (sync_parent_r, sync_parent_w, err_r):
                    os.close(fd)
                devnull = os.open("/dev/null", os.O_RDWR)
                os.dup2(io["child_in"], 0)
                os.dup2(io["out_w"] if io["out_w"] >= 0 else devnull, 1)
                os.dup2(io["err_w"] if io["err_w"] >= 0 else devnull, 2)
                console = io["console_child"].detach() if io["console_child"] else None
                initmod.run(spec, sync_child_r, sync_child_w, err_w, console)
            finally:
                os._exit(125)
        for fd in (io["child_in"], io["out_w"], io["err_w"], sync_child_r, sync_child_w, err_w):
            if fd >= 0 and fd != self.attach_in:
                os.close(fd)
        if not io["tty"] and self.attach_in >= 0:
            os.close(self.attach_in)  # the container has it now; we only relay stdin for -t
            self.attach_in = -1
        if io["console_child"]:
            io["console_child"].close()
        return pid, sync_parent_r, sync_parent_w, err_r

    def _receive_terminal(self, io: dict) -> int:
        """With -t the container opens a pty on its own /dev/pts and sends us the master."""
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

    def _start_dns(self, net, pid: int):
        from ..network import dns
        # names it does not know go to the host's nameservers; MINIDOCKER_DNS_UPSTREAM overrides
        # them ("" = answer only our own names: the tests use that to stay off the network)
        override = os.environ.get("MINIDOCKER_DNS_UPSTREAM")
        if override is not None:
            upstreams = [x for x in override.split(",") if x]
        else:
            upstreams = dns.upstream_servers(open("/etc/resolv.conf").read() if os.path.exists("/etc/resolv.conf") else "")
        return dns.EmbeddedServer(pid, lambda: net.dns_records(self.cid), upstreams)

    def _teardown(self, cg, net, rec: dict, dns) -> dict:
        """Undo what start did outside the container: DNS socket, addresses and firewall
        rules, cgroup. Returns the cleared NetworkSettings."""
        if dns is not None:
            dns.close()
        settings = rec.get("NetworkSettings") or {}
        try:
            settings = net.detach(rec)
        except (MinidockerError, OSError) as e:
            print(f"minidocker-shim: network teardown of {self.cid}: {e}", file=sys.stderr)
        self._remove_cgroup(cg)
        return settings

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

    def _pump(self, out_r: int, err_r: int, master: int, tty: bool, interactive: bool, dns=None) -> None:
        """Copy container output to the log (and the attached caller) until it closes;
        answer the container's DNS queries meanwhile."""
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
        for fd in (dns.fds() if dns else []):
            sel.register(fd, selectors.EVENT_READ, ("dns", None))
        open_outputs = len(splitters)
        while open_outputs:
            for key, _ in sel.select():
                fd = key.fd
                stream, attr = key.data
                if stream == "dns":
                    dns.handle(fd)
                    continue
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
