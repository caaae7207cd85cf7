"""The container's monitor process: Docker's part around the shim (daemonless).

Taught in notebook 01. `minidocker start` spawns `python -m minidocker.engine.monitor`; it
does, for this one container, what dockerd and containerd would do around containerd-shim:

    before:  hold containers/<id>/shim.lock ("this container has a monitor"), mount the overlay
             rootfs, write the OCI bundle (engine/oci.py)
    hooks:   created  plug the network in (veth, address, routes, NAT; the embedded DNS)
             started  record "running" and the PID
             failed   undo, record the start error (docker's 125/126/127)
             exited   undo, record the exit code (and OOM kill); --rm removes the container;
                      or, if the restart policy says so (container/restart.py), record
                      "restarting", wait out the back-off and run the container again
    after:   unmount the rootfs
and core/shim.py does the rest: runc.start, logs, wait.

A `stop` or `kill` during the back-off marks the container manually stopped and wakes the
monitor with SIGUSR1 (engine/stop.py): it records the exit instead of restarting.
"""
from __future__ import annotations

import fcntl
import os
import signal
import sys
import time

from .. import events, fsutil
from ..container import confinement, health, restart
from ..container import state as st
from ..container import logs
from ..container.store import ContainerStore
from ..core import apparmor, cgroups, shim
from ..errors import MinidockerError
from ..images.store import ImageStore
from ..network import delegate, netlink_helper
from ..network.modes import Networking
from ..network.netlink_helper import HELPER_ENV, NetlinkHelper
from ..network.store import PREDEFINED, register_root
from ..paths import StateRoot
from . import oci


def _has_address(settings: dict) -> bool:
    return any(ep.get("IPAddress") for ep in (settings.get("Networks") or {}).values())


class DockerHooks(shim.Hooks):
    """What dockerd does at each moment of one container's life."""

    def __init__(self, monitor: "Monitor", rec: dict, joined: dict | None):
        self.m, self.rec, self.joined = monitor, rec, joined
        self.net = Networking(monitor.root)
        self.dns = None
        self.published = None  # rootless mode's port forwarding (core/rootless.py)
        self.prober = None
        self.attach = None  # the attach socket's clients (engine/attach.py)

    def created(self, pid: int) -> None:
        try:
            self.rec["NetworkSettings"] = self.net.attach(self.rec, pid)
        finally:
            self.m.close_netlink()  # plugged in: the helper (and pyroute2) can go
        self.published = self._publish_rootless(self.rec["NetworkSettings"])
        self.net.etc_files(self.rec, self.joined)
        if any(n not in PREDEFINED for n in self.rec["NetworkSettings"]["Networks"]):
            self.dns = self._start_dns(pid)

    def _publish_rootless(self, settings: dict):
        """Rootless mode: the bridge lives in a private network namespace, so -p is carried
        from the host's by the rootless parent (core/rootless.py) for as long as we live."""
        from ..core import userns
        ports = {k: v for k, v in (settings.get("Ports") or {}).items() if v}
        if not ports or not userns.running_in_user_namespace():
            return None
        from ..core import rootless
        from ..core.runc import StartFailed
        ep = next((ep for ep in settings["Networks"].values() if ep.get("IPAddress")), {})
        pub = rootless.Publication()
        try:
            for key, bindings in ports.items():
                port, proto = key.split("/")
                if proto not in ("tcp", "udp"):
                    raise MinidockerError(f"publishing {key}: rootless mode forwards tcp and udp ports only")
                for b in bindings:
                    pub.add(proto, b["HostIp"], int(b["HostPort"]), ep["IPAddress"], int(port))
        except MinidockerError as e:
            pub.close()
            message = (f"driver failed programming external connectivity on endpoint {self.rec['Name'].lstrip('/')} "
                       f"({ep.get('EndpointID', '')}): {e}")
            # (docker's CLI exits 126 when a start error says "permission denied", 125 otherwise)
            raise StartFailed(126 if "permission denied" in message else 125, message) from None
        except BaseException:
            pub.close()
            raise
        return pub

    def _start_dns(self, pid: int):
        from ..network import dns
        # names it does not know go to the host's nameservers; MINIDOCKER_DNS_UPSTREAM overrides
        # them ("" = answer only our own names: the tests use that to stay off the network)
        override = os.environ.get("MINIDOCKER_DNS_UPSTREAM")
        if override is not None:
            upstreams = [x for x in override.split(",") if x]
        else:
            upstreams = dns.upstream_servers(fsutil.read_text("/etc/resolv.conf", "") or "")
        return dns.EmbeddedServer(pid, lambda: self.net.dns_records(self.m.cid), upstreams)

    def watch(self) -> dict:
        fds = {self.attach.fd: self.attach.accept} if self.attach is not None else {}
        if self.dns:
            fds.update({fd: self.dns.handle for fd in self.dns.fds()})
        return fds

    def poll(self, sel) -> float | None:
        if self.attach is not None:
            self.attach.poll(sel)
        return self.prober.poll(sel) if self.prober else None

    def output(self, stream: str, data: bytes) -> None:
        if self.attach is not None:
            self.attach.output(stream, data)

    def stdin(self, fd: int) -> None:
        if self.attach is not None:
            self.attach.stdin_fd = fd

    def started(self, pid: int) -> None:
        from ..core.linux import procfs
        from .attach import Listener
        self.m.started_at = time.time()
        try:  # `docker attach` connects here (engine/attach.py)
            self.attach = Listener(self.m.containers.dir(self.m.cid), bool(self.rec["Config"].get("Tty")))
        except OSError as e:
            print(f"minidocker-shim: no attach socket for {self.m.cid}: {e}", file=sys.stderr)
        fsutil.write_atomic(self.m.containers.init_identity_path(self.m.cid),
                            f"{pid} {procfs.start_time(pid)}", durable=False)
        check = self.rec["Config"].get("Healthcheck")
        with self.m.containers.update(self.m.cid) as r:
            st.set_running(r["State"], pid, time.time_ns())
            r["NetworkSettings"] = self.rec["NetworkSettings"]
            if health.enabled(check):  # State.Health: `starting` until the first probe says
                r["State"]["Health"] = health.on_start(r["State"].get("Health"))
            events.emit(self.m.root, "container", "start", self.m.cid, events.container_attributes(r))
            stopped_meanwhile = bool(r.get("RestartCanceled"))
        if stopped_meanwhile:
            # a stop/kill came after the back-off ended but before this PID was recorded: it
            # signalled nobody, so the restarted process ends here (the exit is recorded as usual)
            os.kill(pid, signal.SIGKILL)
        if health.enabled(check):
            from .health import Prober
            from .runtime import Runtime
            self.prober = Prober(Runtime(self.m.root), self.m.cid, check, self.rec["Config"].get("Shell"),
                                 int(self.m.started_at * 1e9))

    def _teardown(self) -> dict:
        """Undo what start did outside the container: health probe, DNS socket, addresses, firewall rules."""
        if self.prober is not None:
            self.prober.stop()
            self.prober = None
        if self.attach is not None:
            self.attach.close()
            self.attach = None
        if self.dns is not None:
            self.dns.close()
            self.dns = None
        if self.published is not None:
            self.published.close()  # the rootless parent stops listening
            self.published = None
        try:
            # the record as it is now: `network connect` / `disconnect` may have changed its
            # networks since this monitor read it at start (else a connected network keeps the
            # address, and the record forgets the network)
            on_disk = self.m.containers.read(self.m.cid).get("NetworkSettings")
            # ...unless the start failed after the network was plugged in but before the record
            # was written (the program could not be run): then only we know the address and rules
            if on_disk and (_has_address(on_disk) or not _has_address(self.rec["NetworkSettings"])):
                self.rec["NetworkSettings"] = on_disk
        except (MinidockerError, OSError, ValueError):
            pass  # removed meanwhile: what we knew at start
        try:
            return self.net.detach(self.rec)
        except (MinidockerError, OSError) as e:
            print(f"minidocker-shim: network teardown of {self.m.cid}: {e}", file=sys.stderr)
            return self.rec.get("NetworkSettings") or {}

    def failed(self, code: int, message: str) -> None:
        self._teardown()
        self.m.record_failure(code, message)

    def exited(self, code: int, oom: bool) -> None:
        settings = self._teardown()
        now = time.time()
        with self.m.containers.update(self.m.cid) as r:
            again = not r.get("RestartCanceled") and restart.should_restart(
                r["HostConfig"].get("RestartPolicy"), code, r.get("HasBeenManuallyStopped", False),
                r.get("RestartCount", 0))
            if again:  # Docker counts the restart when it decides it, before the back-off
                self.m.delay = restart.next_delay(self.m.delay, now - self.m.started_at)
                r["RestartCount"] = r.get("RestartCount", 0) + 1
                st.set_restarting(r["State"], code, int(now * 1e9), oom=oom)
            else:
                st.set_exited(r["State"], code, int(now * 1e9), oom=oom)
            if r["State"].get("Health"):
                r["State"]["Health"] = health.on_stop(r["State"]["Health"])
            r["NetworkSettings"] = settings
            auto_remove = r["HostConfig"].get("AutoRemove")
            if oom:
                events.emit(self.m.root, "container", "oom", self.m.cid, events.container_attributes(r))
            events.emit(self.m.root, "container", "die", self.m.cid, events.container_attributes(r, exitCode=code))
        self.m.restart_in = self.m.delay if again else None
        if auto_remove and not again:  # --rm: the monitor removes the container (and its anonymous volumes)
            from .remove import remove_files
            self.m.images.driver.unmount(self.m.images.container_mount_id(self.m.cid))
            remove_files(self.m.root, self.m.cid, self.rec)
            events.emit(self.m.root, "container", "destroy", self.m.cid, events.container_attributes(self.rec))


class Monitor:
    def __init__(self, root: StateRoot, cid: str, status_fd: int, attach: tuple[int, int, int] | None,
                 caller: int = -1):
        self.root, self.cid, self.status_fd, self.attach = root, cid, status_fd, attach
        # the attached caller's pidfd, opened before we daemonize, while the caller surely lives
        self.caller_fd = -1
        if caller > 0 and attach:
            try:
                self.caller_fd = os.pidfd_open(caller)
            except OSError:
                pass
        self.containers = ContainerStore(root)
        self.images = ImageStore(root)
        # the netlink helper (network/netlink_helper.py) our starter spawned, if it did
        self.netlink = None
        if os.environ.get(HELPER_ENV):
            self.netlink = NetlinkHelper.from_fds(os.environ.pop(HELPER_ENV))
        # the restart policy's bookkeeping (container/restart.py): the last back-off, when the
        # current run started, and the delay before the next run (None: no restart)
        self.delay, self.started_at, self.restart_in = 0.0, time.time(), None

    def open_netlink(self, rec: dict) -> None:
        """A bridge-attached container: its veth is made by a netlink helper (the one our
        starter spawned for the first run, a new one for a restart)."""
        if not netlink_helper.needed(rec):
            self.close_netlink()
            return
        if self.netlink is None:
            self.netlink = NetlinkHelper.spawn(stderr=2)  # (errors: our shim.log)
        delegate.use(self.netlink)

    def close_netlink(self) -> None:
        delegate.use(None)
        if self.netlink is not None:
            self.netlink.close()
            self.netlink = None

    def report(self, **event) -> None:
        self.status_fd = shim.report(self.status_fd, **event)

    def record_failure(self, code: int, message: str) -> None:
        with self.containers.update(self.cid) as r:
            st.set_start_failed(r["State"], code, message)

    def fail(self, code: int, message: str) -> int:
        self.record_failure(code, message)
        self.report(event="error", code=code, message=message)
        return code

    def run(self) -> int:
        shim.become_monitor()
        lock_fd = os.open(self.containers.shim_lock_path(self.cid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
            # (--rm: its writable layer goes at the exit; overlayfs need not sync it: core/overlay2.py)
            rootfs = self.images.driver.mount(mount_id, volatile=bool(rec["HostConfig"].get("AutoRemove")))
        except OSError as e:
            self.report(event="error", code=125, message=f"error mounting the container's rootfs: {e}")
            return 125
        # stop/kill wake us from a back-off with SIGUSR1: blocked, so that it waits for sigtimedwait
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        try:
            while True:
                code = self._run(rec, rootfs)
                if self.restart_in is None or not self._back_off(self.restart_in):
                    return code
                rec = self.containers.read(self.cid)
                self._detach_caller()  # an attached `run` saw the first exit; the rest runs detached
        finally:
            self.images.driver.unmount(mount_id)

    def _back_off(self, delay: float) -> bool:
        """Wait `delay` seconds before restarting; False if the user stopped the container meanwhile
        (then its exit is recorded here: there is no process left to end)."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if signal.sigtimedwait({signal.SIGUSR1}, left) is not None and self._manually_stopped():
                break
        if not self._manually_stopped():
            return True
        with self.containers.update(self.cid) as r:
            s = r["State"]
            st.set_exited(s, s["ExitCode"], time.time_ns(), oom=s.get("OOMKilled", False))
        return False

    def _manually_stopped(self) -> bool:
        try:
            return bool(self.containers.read(self.cid).get("RestartCanceled"))
        except MinidockerError:
            return True  # removed

    def _detach_caller(self) -> None:
        """After the first run: the caller that started us has had its answer (the shim closed
        its stdio); the restarts are nobody's but the log's."""
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1
        self.attach = None
        if self.caller_fd >= 0:
            os.close(self.caller_fd)
            self.caller_fd = -1


    def _run(self, rec: dict, rootfs: str) -> int:
        self.restart_in = None  # (set by DockerHooks.exited if the policy restarts it)
        try:
            self.open_netlink(rec)  # (first: it imports pyroute2 while we go on)
            parent = oci.cgroup_parent(self.root)
            register_root(self.root)  # (so that a prune elsewhere can clean up if this root is deleted)
            version = cgroups.driver(parent).version
            kind, join_pid, joined = Networking(self.root).join_target(rec, self.containers)
            bundle = oci.write_bundle(rec, self.containers.dir(self.cid), rootfs, cgroup_version=version,
                                      cgroup_parent=parent,
                                      join_netns=f"/proc/{join_pid}/ns/net" if join_pid else None, joined=joined)
            profile = confinement.apparmor_profile(rec["HostConfig"], apparmor.enabled())
            if rec.get("AppArmorProfile") != profile:  # what inspect shows from now on (saveAppArmorConfig)
                with self.containers.update(self.cid) as r:
                    r["AppArmorProfile"] = rec["AppArmorProfile"] = profile
        except MinidockerError as e:
            self.close_netlink()
            return self.fail(e.exit_code if e.exit_code != 1 else 125, str(e))
        except OSError as e:
            self.close_netlink()
            return self.fail(125, str(e))
        log = logs.open_driver(rec["HostConfig"].get("LogConfig"), self.containers.log_path(self.cid))
        try:
            return shim.Shim(bundle, self.cid, self.status_fd, log, DockerHooks(self, rec, joined),
                             attach=self.attach, caller_fd=self.caller_fd,
                             interactive=bool(rec["Config"].get("OpenStdin"))).run()
        finally:
            self.close_netlink()  # (if the start failed before the network was plugged in)


def _warm_up() -> None:
    """An early monitor ready before its "go": import now what starting the container imports
    on its way (the storage and cgroup drivers, the attach socket, the removal of a --rm
    container, the seccomp library that the container's init loads), instead of after "go", on
    the container's critical path. Not if "go" (or EOF) is here already."""
    import select
    if select.select([0], [], [], 0)[0]:
        return
    from ..core import overlay2  # noqa: F401
    from ..storage import shift  # noqa: F401
    from . import attach, remove  # noqa: F401
    try:
        cgroups.driver()
        from ..core.linux import libseccomp
        libseccomp.lib()
    except (OSError, cgroups.CgroupError):
        pass  # (the start says why, if it matters)


def _wait_for_go(argv: list[str]) -> list[str] | None:
    """`monitor --early ROOT ID STATUS IN OUT ERR CALLER` (engine/spawn_monitor.py, EarlyMonitor):
    spawned by `run` before the container exists, so that starting Python and the imports above
    overlap its create. "go" on stdin: the container exists; EOF: the create failed, nothing to
    do. "go" says which of the caller's stdin, stdout and stderr the container is attached to
    ("go 011": stdout and stderr; a plain "go": none, `run -d`); the others are closed. Then we
    are what start would have spawned (the argv it would have given us, returned), with stdin
    /dev/null and stderr the container's shim.log."""
    _warm_up()
    words = os.read(0, 64).split()
    if words[:1] != [b"go"]:
        return None
    root, cid, status, fds, caller = argv[0], argv[1], argv[2], argv[3:6], argv[6]
    mask = words[1].decode() if len(words) > 1 else "000"
    for i, fd in enumerate(fds):
        if mask[i] != "1":
            os.close(int(fd))
            fds[i] = "-1"
    devnull = os.open(os.devnull, os.O_RDONLY)
    log = os.open(os.path.join(ContainerStore(StateRoot(root)).dir(cid), "shim.log"),
                  os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(devnull, 0)
    os.dup2(log, 2)
    os.close(devnull)
    os.close(log)
    return [root, cid, status] + (fds + [caller] if "1" in mask else [])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--early"]:
        argv = _wait_for_go(argv[1:])
        if argv is None:
            return 0
    root, cid, status_fd = argv[0], argv[1], int(argv[2])
    attach = tuple(int(x) for x in argv[3:6]) if len(argv) >= 6 else None
    caller = int(argv[6]) if len(argv) >= 7 else -1
    try:
        monitor = Monitor(StateRoot(root), cid, status_fd, attach, caller)
    except MinidockerError as e:
        shim.report(status_fd, event="error", code=125, message=str(e))
        return 125
    # Daemonize: the parent exits at once so whoever spawned us can reap it right away
    # and never keeps a zombie; we carry on, adopted by init (or the nearest subreaper).
    if os.fork() > 0:
        os._exit(0)
    try:
        return monitor.run()
    except MinidockerError as e:
        monitor.report(event="error", code=125, message=str(e))
        return 125


if __name__ == "__main__":
    sys.exit(main())
