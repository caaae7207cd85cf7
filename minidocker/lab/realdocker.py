"""A private, real Docker daemon to compare minidocker against, side by side.

Tests, benchmarks and notebooks start one with `RealDocker.start()`: Debian/Ubuntu's
`docker.io` dockerd, with its own data root, socket and exec root under a temporary
directory, a bridge of its own (made before and removed after it; `--bridge=none` would make
dockerd delete the host's docker0 at start-up), no iptables rules and no ip_forward change,
so it changes nothing on the host's own Docker and never needs the internet. Our offline busybox image is imported
into it, so both runtimes run the very same files.

    with RealDocker.start() as docker:
        docker.run("--rm", "--network", "none", "busybox", "echo", "hi").stdout  # 'hi\\n'
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from ..errors import MinidockerError

# The docker.io client matches the daemon's API; a newer /usr/local/bin/docker may not.
CLIENT_CANDIDATES = ["/usr/bin/docker", "/usr/local/bin/docker"]
DAEMON_CANDIDATES = ["/usr/sbin/dockerd", "/usr/bin/dockerd"]


def _find(candidates: list[str]) -> str | None:
    return next((p for p in candidates if os.access(p, os.X_OK)), None)


def available() -> bool:
    return os.geteuid() == 0 and _find(DAEMON_CANDIDATES) is not None and _find(CLIENT_CANDIDATES) is not None


BRIDGE_PREFIX = "mdrd-"  # + 6 hex: the private daemons' bridges (interface names: 15 characters)


def make_bridge(workdir: str) -> str:
    """A bridge for the private daemon, on a /24 no host route uses; its name is kept in
    the work directory so that stop() (or a later start after a crash) removes it."""
    import ipaddress
    import secrets
    from ..network import bridge
    from ..network.store import read_routes
    taken = [ipaddress.ip_network(r) for r in read_routes()]
    subnet = next(n for n in ipaddress.ip_network("10.123.0.0/16").subnets(new_prefix=24)
                  if not any(n.overlaps(t) for t in taken))
    name = BRIDGE_PREFIX + secrets.token_hex(3)
    with open(os.path.join(workdir, "bridge"), "w") as f:
        f.write(name)
    bridge.ensure_bridge(name, str(subnet[1]), subnet.prefixlen)
    return name


def remove_bridge(workdir: str) -> None:
    from ..network import bridge
    try:
        with open(os.path.join(workdir, "bridge")) as f:
            bridge.delete_link(f.read().strip())
    except (OSError, ValueError):
        pass


def remove_stale_bridges() -> None:
    """Bridges of private daemons that are gone (a killed test run): nothing uses them.
    The bridges are listed *before* the work directories are read: a daemon starting meanwhile
    writes its bridge's name before it makes the bridge, so any bridge listed has its name on
    disk by the time we look (read the other way round, a bridge made between the two reads
    was taken for stale and deleted under a starting dockerd: "bridge device with non default
    name ... must be created manually", found by notebook 07 beside concurrent tests)."""
    import glob
    from ..network import bridge
    candidates = bridge.links((BRIDGE_PREFIX,))
    live = set()
    for wd in glob.glob(os.path.join(tempfile.gettempdir(), "realdocker-*")):
        try:
            name = open(os.path.join(wd, "bridge")).read().strip()
            if time.time() - os.stat(wd).st_mtime < 120:
                live.add(name)  # (a daemon starting right now has no pid file yet)
                continue
            os.kill(int(open(os.path.join(wd, "dockerd.pid")).read()), 0)
            live.add(name)
        except (OSError, ValueError):
            continue
    for name in candidates:
        if name not in live:
            bridge.delete_link(name)


_DEFAULT_SIGNALS_THEN_EXEC = """
import os, sys
sys.path.insert(0, %r)
from minidocker.core.linux.syscalls import default_signal_action
for sig in range(1, 65):
    if sig not in (9, 19):
        default_signal_action(sig)
os.execv(sys.argv[1], sys.argv[1:])
""" % os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RealDocker:
    def __init__(self, workdir: str, proc: subprocess.Popen, client: str):
        self.workdir = workdir
        self.proc = proc
        self.client = client
        self.socket = os.path.join(workdir, "docker.sock")

    @classmethod
    def start(cls, timeout: float = 60, extra_args: tuple[str, ...] = ()) -> "RealDocker":
        daemon, client = _find(DAEMON_CANDIDATES), _find(CLIENT_CANDIDATES)
        if not daemon or not client:
            raise MinidockerError("dockerd not found: apt-get install docker.io")
        remove_stale_bridges()
        workdir = tempfile.mkdtemp(prefix="realdocker-")
        if "--userns-remap" in extra_args:
            os.chmod(workdir, 0o711)  # (dockerd wants o+x on the way to a remapped data root)
        sock = os.path.join(workdir, "docker.sock")
        bridge = make_bridge(workdir)
        self = cls(workdir, None, client)
        # dockerd starts with no signal ignored, as systemd starts it, whatever our own parents
        # ignored (GNU make leaves 32 and 33 ignored, which glibc's sigaction and `env
        # --default-signal` cannot undo; the containers would inherit it through runc)
        self.argv = [sys.executable, "-c", _DEFAULT_SIGNALS_THEN_EXEC,
                     daemon, "--data-root", os.path.join(workdir, "data"),
                     "--exec-root", os.path.join(workdir, "exec"), "--pidfile", os.path.join(workdir, "dockerd.pid"),
                     "-H", f"unix://{sock}", f"--bridge={bridge}", "--iptables=false", "--ip-masq=false",
                     "--ip-forward=false", "--storage-driver=overlay2", "--log-level=warn", *extra_args]
        self._spawn(timeout)
        return self

    def _spawn(self, timeout: float) -> None:
        with open(os.path.join(self.workdir, "dockerd.log"), "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise MinidockerError(f"dockerd exited with {self.proc.returncode}; see its log")
            if os.path.exists(self.socket) and self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.2)
        self.stop()
        raise MinidockerError("dockerd did not start in time")

    def restart_daemon(self, timeout: float = 60) -> None:
        """Stop dockerd as a shutdown does (SIGTERM: it stops its containers) and start it again
        on the same data: what a host's reboot looks like to the containers' restart policies."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self._spawn(timeout)

    def docker(self, *args: str, check: bool = True, input: bytes | str | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        return subprocess.run([self.client, "-H", f"unix://{self.socket}", *args], input=input,
                              capture_output=True, text=text, check=check, timeout=timeout,
                              stdin=None if input is not None else subprocess.DEVNULL)

    run = docker  # docker.run("run", ...) reads oddly; both names work

    def load_rootfs(self, rootfs_tar: str, name: str, changes: list[str] = ()) -> None:
        """`docker import` a root filesystem tarball as image `name`."""
        args = ["import"]
        for c in changes:
            args += ["-c", c]
        with open(rootfs_tar, "rb") as f:
            self.docker(*args, "-", name, input=f.read())

    def load_busybox(self, store) -> None:
        """Our offline busybox image (made in ImageStore `store` if needed) as busybox:latest
        here, so that both runtimes run the very same files."""
        from ..images import busybox
        image = busybox.ensure_busybox(store)
        with tempfile.TemporaryDirectory(prefix="realdocker-busybox-") as tmp:
            tar = os.path.join(tmp, "busybox.tar")
            busybox.export_rootfs(store, image, tar)
            self.load_rootfs(tar, "busybox:latest", busybox.DOCKER_IMPORT_CHANGES)

    def stop(self) -> None:
        """Stop the daemon (it stops its containerd) and delete everything it made."""
        try:
            ids = self.docker("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False, timeout=60)
        except Exception:
            pass
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        from ..core.linux.procfs import mounts_under
        from ..core.linux import syscalls as sc
        for target in mounts_under(self.workdir):
            try:
                sc.umount2(target, sc.MNT_DETACH)
            except OSError:
                pass
        remove_bridge(self.workdir)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RealDocker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
