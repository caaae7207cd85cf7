"""Rootless mode (非 root 运行): containers for a user who is not root on the host.

Taught in notebook 03 (namespaces: the user-namespace cells) and in the security notebook to come.

On the host, a user who is not root may not mount, make network devices or write cgroups. In
a user namespace of their own they may: there they are uid 0 with every capability, and those
capabilities count only for what that namespace owns (the mount and network namespaces made
together with it). Docker's rootless mode (rootlesskit) and podman work this way, and so does
minidocker when someone who is not root runs it:

    your command (uid 1000)          the parent (python -m minidocker.core.rootless)
    start the parent ------------->  fork the holder ------------>  the holder
                                                                    unshare(USER | NS | NET), "U"
                                     newuidmap <holder> 0 1000 1  1 100000 65536
                                     newgidmap <holder> 0 1000 1  1 100000 65536
                                     "M" ------------------------>  lo up, "R"; then it waits,
                                                                    keeping the namespaces alive
    every minidocker command from then on:
      setns(user), setns(mnt), setns(net) into the holder's (join()): uid 0 in there.

Only a setuid helper may map more ids than one's own: newuidmap/newgidmap (package uidmap)
write the ranges /etc/subuid and /etc/subgid give the user, so that an image's files owned
by other users can be unpacked. What changes for the runtime inside (each place says so):
no device nodes (bound from the host instead), overlayfs marks opaque directories with
user.* xattrs (`userxattr`), no cgroups (limits are discarded, with Docker's warnings), no
AppArmor, and the network is private: containers reach each other, not the outside.

Publishing a port (-p) crosses from the host's network namespace into the private one as
rootlesskit's "builtin" port driver does: the parent stays in the host's namespace and listens
there; for each connection, the holder, inside, connects to the container and hands the
connected socket back over a unix socket pair (SCM_RIGHTS). The parent copies the bytes.
"""
from __future__ import annotations

import errno
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading

from ..errors import MinidockerError
from . import userns
from .linux import syscalls as sc

HOLDER_PID = "holder.pid"   # in run_dir(): the process whose namespaces every command joins
PORTS_SOCK = "ports.sock"   # in run_dir(): where monitors ask the parent to publish ports
NAMESPACES = (("user", sc.CLONE_NEWUSER), ("mnt", sc.CLONE_NEWNS), ("net", sc.CLONE_NEWNET))


# ---------------------------------------------------------------- where things live
def data_root() -> str:
    """~/.local/share/minidocker: the state root (rootless dockerd: ~/.local/share/docker)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "minidocker")


def run_dir() -> str:
    """$XDG_RUNTIME_DIR/minidocker (rootless dockerd: $XDG_RUNTIME_DIR/docker.sock and friends).
    Without a login session there is no XDG_RUNTIME_DIR: then a private directory in /tmp."""
    base = os.environ.get("XDG_RUNTIME_DIR") or ""
    if not base or not _owned_dir(base):
        base = f"/tmp/minidocker-run-{os.getuid()}"
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            pass
        if not _owned_dir(base):  # someone else made it first: refuse rather than share it
            raise MinidockerError(f"{base} is not a private directory of yours: set XDG_RUNTIME_DIR", exit_code=1)
    return os.path.join(base, "minidocker")


def _owned_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def active() -> bool:
    """Is this process in a rootless namespace (or any user namespace)? The kernel's answer:
    /proc/self/uid_map is the identity "0 0 4294967295" only in the host's own."""
    return userns.running_in_user_namespace()


# ---------------------------------------------------------------- the id maps
def id_maps(uid: int, gid: int, name: str, subuid: str, subgid: str) -> tuple[userns.IdMap, userns.IdMap]:
    """Our own id as 0, then the subordinate ranges from 1 on (pure). Raises if there are none."""
    out = []
    for own, text, path in ((uid, subuid, "/etc/subuid"), (gid, subgid, "/etc/subgid")):
        ranges = userns.subid_ranges(text, name, uid)
        if not ranges:
            raise MinidockerError(
                f"rootless mode needs a range of subordinate ids for {name} in {path} "
                f"(as root: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {name})", exit_code=1)
        tail = userns.map_from_subids(ranges).ranges
        out.append(userns.IdMap([(0, own, 1)] + [(c + 1, h, n) for c, h, n in tail]))
    return out[0], out[1]


def helper_args(idmap: userns.IdMap) -> list[str]:
    """newuidmap's arguments after the PID: "inside outside count" triples, flattened (pure)."""
    return [str(x) for r in idmap.ranges for x in r]


# ---------------------------------------------------------------- joining (every command)
def ensure() -> int:
    """The holder's PID: the running one, or a new one (with a lock, so that two commands
    started together make one)."""
    import fcntl
    rundir = run_dir()
    os.makedirs(rundir, mode=0o700, exist_ok=True)
    with open(os.path.join(rundir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = holder_pid(rundir)
        if pid:
            return pid
        return _start_parent(rundir)


def holder_pid(rundir: str) -> int:
    """The holder's PID if it is alive (and ours, and in a user namespace), else 0."""
    try:
        with open(os.path.join(rundir, HOLDER_PID)) as f:
            pid = int((f.read().split() or ["0"])[0])  # "<holder> <parent>"
        if pid and os.stat(f"/proc/{pid}").st_uid == os.getuid() and \
                os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user"):
            return pid
    except (OSError, ValueError):
        pass
    return 0


def _start_parent(rundir: str) -> int:
    for prog in ("newuidmap", "newgidmap"):
        if shutil.which(prog) is None:
            raise MinidockerError(f"rootless mode needs {prog}: install the package uidmap "
                                  "(apt-get install uidmap)", exit_code=1)
    log = open(os.path.join(rundir, "rootless.log"), "ab")
    proc = subprocess.Popen([sys.executable, "-m", "minidocker.core.rootless", rundir],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                            start_new_session=True, close_fds=True)
    log.close()
    line = proc.stdout.readline().decode(errors="replace").strip()
    proc.stdout.close()
    if not line.startswith("ok "):
        proc.wait()
        raise MinidockerError(line.removeprefix("error: ") or
                              f"the rootless namespaces could not be made: see {rundir}/rootless.log", exit_code=1)
    proc.returncode = 0  # it lives on, detached: no "still running" warning at our exit
    return int(line.split()[1])


def join(pid: int) -> None:
    """setns() into the holder's user, mount and network namespaces. Must run before any
    thread starts (the kernel refuses a multithreaded process a new user namespace)."""
    cwd = os.getcwd()
    fds = [(os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), flag) for kind, flag in NAMESPACES]
    try:
        for fd, flag in fds:  # the user namespace first: it gives the rights for the other two
            sc.setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)
    try:
        os.chdir(cwd)  # setns(mnt) moved us to the namespace's root
    except OSError:
        os.chdir("/")


def enter() -> None:
    """What the CLI does first when its user is not root: join (making it if needed) the
    rootless namespaces, with the state root in the user's home."""
    os.environ.setdefault("MINIDOCKER_ROOT", data_root())
    os.environ.setdefault("MINIDOCKER_RUN_DIR", run_dir())
    os.environ["MINIDOCKER_ROOTLESS"] = "1"
    join(ensure())


def stop(rundir: str | None = None) -> bool:
    """End the parent and the holder (system prune does, when no container runs). Our own
    process keeps the namespaces until it exits; the next command makes new ones."""
    rundir = rundir or os.environ.get("MINIDOCKER_RUN_DIR") or run_dir()
    try:
        with open(os.path.join(rundir, HOLDER_PID)) as f:
            pids = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return False
    for pid in reversed(pids):  # the parent first: the holder dies with it (PDEATHSIG)
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    for name in (HOLDER_PID, PORTS_SOCK):
        try:
            os.unlink(os.path.join(rundir, name))
        except OSError:
            pass
    return True


# ---------------------------------------------------------------- ports (-p), from a monitor
class Publication:
    """One container's published ports, kept by the parent while this connection is open:
    the monitor holds it for the container's run; if the monitor dies, the ports go too."""

    def __init__(self, rundir: str | None = None):
        rundir = rundir or os.environ.get("MINIDOCKER_RUN_DIR") or run_dir()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.connect(os.path.join(rundir, PORTS_SOCK))
        except OSError as e:
            self.sock.close()
            raise MinidockerError(f"rootless port publishing is not available ({e.strerror})") from None
        self.reader = self.sock.makefile("r")

    def add(self, proto: str, host_ip: str, host_port: int, target_ip: str, target_port: int) -> None:
        self.sock.sendall(json.dumps({"proto": proto, "host_ip": host_ip, "host_port": host_port,
                                      "target_ip": target_ip, "target_port": target_port}).encode() + b"\n")
        reply = json.loads(self.reader.readline() or '{"error": "the rootless parent went away"}')
        if reply.get("error"):
            raise MinidockerError(reply["error"])

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# ---------------------------------------------------------------- the engine's own connections
def connect_outside(address: tuple, timeout=None, source_address=None) -> socket.socket:
    """socket.create_connection, but made by the parent, in the host's network namespace: a
    registry on the host's loopback (or anywhere the host reaches) is not reachable from the
    private namespace we joined. The connected socket comes back over SCM_RIGHTS."""
    host, port = address[0], address[1]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.connect(os.path.join(os.environ.get("MINIDOCKER_RUN_DIR") or run_dir(), PORTS_SOCK))
        t = timeout if isinstance(timeout, (int, float)) else None
        s.sendall(json.dumps({"op": "connect", "host": host, "port": port, "timeout": t}).encode() + b"\n")
        msg, fds, _, _ = socket.recv_fds(s, 1024, 1)
    if not fds:
        err = json.loads(msg or b'{"errno": 0, "error": "the rootless parent went away"}')
        raise OSError(err["errno"], err["error"])
    sock = socket.socket(fileno=fds[0])
    sock.settimeout(t)
    return sock


def url_handlers() -> list:
    """urllib handlers whose connections come from connect_outside (in rootless mode; else none)."""
    if not active():
        return []
    import http.client
    import urllib.request

    class HTTPConnection(http.client.HTTPConnection):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._create_connection = connect_outside

    class HTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._create_connection = connect_outside

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(HTTPConnection, req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(HTTPSConnection, req, context=self._context)

    return [HTTPHandler(), HTTPSHandler()]


# ---------------------------------------------------------------- the parent and the holder
def _holder(ctl: socket.socket, to_parent: int, from_parent: int) -> None:
    """The process whose namespaces everyone joins. Then: connect for the parent, forever."""
    from .linux import netdev
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # the parent gone: no one could publish ports
    sc.set_process_name("md-rootless")
    sc.unshare(sc.CLONE_NEWUSER | sc.CLONE_NEWNS | sc.CLONE_NEWNET)
    os.write(to_parent, b"U")
    if os.read(from_parent, 1) != b"M":
        os._exit(1)
    netdev.link_up("lo")
    os.write(to_parent, b"R")
    os.close(to_parent)
    os.close(from_parent)
    while line := _readline(ctl):
        proto, ip, port = line.split()
        try:
            if proto == "udp":  # a connected datagram socket: what it sends goes to ip:port
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((ip, int(port)))
            else:
                s = socket.create_connection((ip, int(port)), timeout=3)
            s.settimeout(None)
            socket.send_fds(ctl, [b"+"], [s.fileno()])
            s.close()
        except OSError as e:
            ctl.sendall(b"-" + (e.strerror or str(e)).encode()[:200] + b"\n")
    os._exit(0)


def _readline(s: socket.socket) -> str:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            return ""
        buf += chunk
    return buf.decode().strip()


class _Parent:
    """In the host's network namespace: listens for published ports, asks the holder for a
    connection into the private one, copies bytes between the two."""

    def __init__(self, rundir: str, ctl: socket.socket, holder: int):
        self.rundir, self.ctl, self.holder = rundir, ctl, holder
        self.ctl_lock = threading.Lock()

    def connect_inside(self, proto: str, ip: str, port: int) -> socket.socket:
        with self.ctl_lock:
            self.ctl.sendall(f"{proto} {ip} {port}\n".encode())
            msg, fds, _, _ = socket.recv_fds(self.ctl, 256, 1)
        if not fds:
            raise OSError(errno.ECONNREFUSED, msg[1:].decode(errors="replace").strip() or "refused")
        return socket.socket(fileno=fds[0])

    def serve(self) -> None:
        path = os.path.join(self.rundir, PORTS_SOCK)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        os.chmod(path, 0o600)
        srv.listen(64)
        threading.Thread(target=self._watch_holder, daemon=True).start()
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.client, args=(conn,), daemon=True).start()

    def _watch_holder(self) -> None:
        os.waitpid(self.holder, 0)  # the holder gone (killed): nothing left to serve
        os._exit(0)

    def client(self, conn: socket.socket) -> None:
        """One monitor: publish what it asks; when it hangs up, unpublish all of it."""
        listeners = []
        try:
            for line in conn.makefile("r"):
                req = json.loads(line)
                if req.get("op") == "connect":
                    self.connect_outside(conn, req)
                    break
                try:
                    listeners.append(self.listen(req))
                    conn.sendall(b'{"ok": true}\n')
                except OSError as e:
                    conn.sendall(json.dumps({"error": _bind_error(req, e)}).encode() + b"\n")
        except (OSError, ValueError):
            pass
        finally:
            for s in listeners:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            conn.close()

    @staticmethod
    def connect_outside(conn: socket.socket, req: dict) -> None:
        """For the engine itself (a pull, a push): a connection from the host's namespace."""
        try:
            out = socket.create_connection((req["host"], int(req["port"])), timeout=req.get("timeout") or 60)
            socket.send_fds(conn, [b"+"], [out.fileno()])
            out.close()
        except OSError as e:
            conn.sendall(json.dumps({"errno": e.errno or 0, "error": e.strerror or str(e)}).encode())

    def listen(self, req: dict) -> socket.socket:
        udp = req.get("proto") == "udp"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((req.get("host_ip") or "0.0.0.0", int(req["host_port"])))
            if not udp:
                s.listen(128)
        except OSError:
            s.close()
            raise
        loop = self.udp_loop if udp else self.accept_loop
        threading.Thread(target=loop, args=(s, req["target_ip"], int(req["target_port"])), daemon=True).start()
        return s

    def udp_loop(self, s: socket.socket, ip: str, port: int) -> None:
        """Datagrams: one connected socket inside per client address outside, so that answers
        find their way back; a client quiet for a minute is forgotten (as docker-proxy does)."""
        inner: dict[tuple, socket.socket] = {}
        client: dict[socket.socket, tuple] = {}
        last: dict[socket.socket, float] = {}
        import time
        while s.fileno() != -1:
            try:
                ready, _, _ = select.select([s, *client], [], [], 1.0)
            except (OSError, ValueError):
                break  # unpublished: the socket was closed under us
            for r in ready:
                try:
                    if r is s:
                        data, addr = s.recvfrom(65535)
                        if addr not in inner:
                            inside = self.connect_inside("udp", ip, port)
                            inner[addr], client[inside] = inside, addr
                        inner[addr].send(data)
                        last[inner[addr]] = time.monotonic()
                    else:
                        s.sendto(r.recv(65535), client[r])
                        last[r] = time.monotonic()
                except OSError:
                    continue
            for r in [r for r, t in last.items() if time.monotonic() - t > 60]:
                del inner[client.pop(r)], last[r]
                r.close()
        for r in client:
            r.close()

    def accept_loop(self, s: socket.socket, ip: str, port: int) -> None:
        while True:
            try:
                outside, _ = s.accept()
            except OSError:
                return  # unpublished
            threading.Thread(target=self.proxy, args=(outside, ip, port), daemon=True).start()

    def proxy(self, outside: socket.socket, ip: str, port: int) -> None:
        try:
            inside = self.connect_inside("tcp", ip, port)
        except OSError:
            outside.close()
            return
        pump(outside, inside)


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done (half-closes passed on), then close both."""
    open_dirs = {a: b, b: a}
    try:
        while open_dirs:
            ready, _, _ = select.select(list(open_dirs), [], [])
            for src in ready:
                data = src.recv(65536)
                if data:
                    open_dirs[src].sendall(data)
                else:
                    try:
                        open_dirs[src].shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    del open_dirs[src]
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def _bind_error(req: dict, e: OSError) -> str:
    """rootlesskit's words (what Docker's rootless mode prints), ending in Go's error text."""
    port, proto = int(req["host_port"]), req.get("proto") or "tcp"
    listen = f"listen {proto}4 {req.get('host_ip') or '0.0.0.0'}:{port}: bind: {(e.strerror or str(e)).lower()}"
    if e.errno == errno.EACCES and port < 1024:
        current = _read("/proc/sys/net/ipv4/ip_unprivileged_port_start").strip() or "1024"
        listen = (f"cannot expose privileged port {port}, you can add 'net.ipv4.ip_unprivileged_port_start={port}' "
                  f"to /etc/sysctl.conf (currently {current}), or choose a larger port number (>= {current}): "
                  + listen)
    return f"Error starting userland proxy: error while calling PortManager.AddPort(): {listen}"


def _parent_main(rundir: str) -> int:
    """`python -m minidocker.core.rootless RUNDIR`: make the holder, map it, then serve ports."""
    def fail(message: str) -> int:
        print(f"error: {message}", flush=True)
        return 1
    uid, gid = os.getuid(), os.getgid()
    name = pwd.getpwuid(uid).pw_name
    try:
        uidmap, gidmap = id_maps(uid, gid, name, _read("/etc/subuid"), _read("/etc/subgid"))
    except MinidockerError as e:
        return fail(str(e))
    ctl, ctl_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ctl.close()
            os.close(up_r)
            os.close(down_w)
            _holder(ctl_child, up_w, down_r)
        finally:
            os._exit(1)
    ctl_child.close()
    os.close(up_w)
    os.close(down_r)
    if os.read(up_r, 1) != b"U":
        return fail("the holder could not make a user namespace (are unprivileged user namespaces "
                    "allowed? sysctl user.max_user_namespaces, kernel.apparmor_restrict_unprivileged_userns)")
    for prog, idmap in (("newuidmap", uidmap), ("newgidmap", gidmap)):
        r = subprocess.run([prog, str(pid), *helper_args(idmap)], capture_output=True, text=True)
        if r.returncode != 0:
            os.kill(pid, signal.SIGKILL)
            return fail(f"{prog}: {r.stderr.strip() or 'failed'}")
    os.write(down_w, b"M")
    if os.read(up_r, 1) != b"R":
        return fail("the holder died while setting up its namespaces")
    tmp = os.path.join(rundir, HOLDER_PID + ".tmp")
    with open(tmp, "w") as f:
        f.write(f"{pid} {os.getpid()}\n")
    os.rename(tmp, os.path.join(rundir, HOLDER_PID))
    print(f"ok {pid}", flush=True)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _Parent(rundir, ctl, pid).serve()
    return 0


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(_parent_main(sys.argv[1]))
