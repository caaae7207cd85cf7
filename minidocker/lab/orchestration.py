"""Notebook 12's engines, started together and stopped together: a private real dockerd (in
swarm mode when asked), a real registry on loopback, and `minidocker serve` on a private socket;
plus what the notebook measures them with (the daemon's event stream, a bounded client loop on
loopback, a small TCP load balancer for blue/green) and draws.

    from minidocker.lab import orchestration as orch
    orch.reap_stale()                       # what a crashed earlier run left: torn down first
    stack = orch.Stack.start(lab)           # dockerd + registry + minidocker serve
    stack.swarm_init()                      # a single-node swarm, loopback only (see below)
    stack.docker("service", "ls")           # (exit code, stdout, stderr) of the real docker CLI
    stack.compose(project_dir, "up", "-d")  # docker-compose against minidocker serve
    with orch.EventRecorder(stack) as rec:  # `docker events`, live, while something happens
        stack.docker("service", "update", ...)
    spans = orch.container_spans(rec.events)
    stack.stop(); stack.leftovers()         # [] : nothing of it is left on the host

Nothing here orchestrates anything: scheduling, rolling updates, rollbacks and secrets are the
real Docker's swarm mode; Compose is the real docker-compose. What this module adds is the
plumbing a notebook needs to start them privately and to leave the host as it found it.

Swarm on a shared host, and what it leaves behind (measured with dockerd 20.10 here):
- `docker swarm init` listens on 0.0.0.0:2377 and uses UDP 4789 for VXLAN unless told otherwise:
  two daemons on one host would collide, so we listen on 127.0.0.1:<free port> and pick a free
  data-path port (it must lie in 1024-49151, or init fails).
- It creates the `ingress` overlay network (the routing mesh) and its sandbox; the mesh needs
  IPVS, which this kernel lacks (CONFIG_IP_VS is not set), so we remove `ingress` and publish
  ports in host mode.
- It creates a *host* bridge for the containers' way out, named `docker_gwbridge`: one fixed
  name per host, so two swarm-mode daemons would share one Linux bridge (and the second's
  `network rm` would delete the first's), on a 172.x subnet that may overlap another runtime's.
  dockerd creates it only if its *network* `docker_gwbridge` does not exist yet, and the network's
  Linux bridge name is an option (`com.docker.network.bridge.name`): so we create that network
  ourselves before `swarm init`, on a bridge named `mdgw-<6 hex>` and a free 10.124.x.0/24.
  The name is recorded before the bridge exists, so a crashed run's bridge is found again.
- `swarm leave --force` removes the swarm's state but *not* docker_gwbridge: without
  `docker network rm docker_gwbridge` the Linux bridge outlives the daemon. stop() removes it.
- A killed dockerd leaves its containerd shims (and the containers under them) running; stop()
  and reap_stale() end those of our daemon (their command line names its directory), by PID.

The pure pieces (argument lists, event parsing, replica counts) are tested without root in
tests/test_lab_orchestration.py.
"""
from __future__ import annotations

import atexit
import glob
import http.client
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from ..core.linux import procfs
from .realdocker import RealDocker
from .registry import LocalRegistry, free_port

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK_PREFIX = "mdstack-"          # /tmp/mdstack-XXXXXXXX: one notebook run's engines
GW_PREFIX = "mdgw-"                # + 6 hex: our docker_gwbridge's Linux name (15 characters at most)
GW_RANGE = "10.124.0.0/16"         # its /24 (the private dockerds' own bridges use 10.123.0.0/16)
RECORD = "stack.json"
COMPOSE = "/usr/bin/docker-compose"


# ------------------------------------------------------------------ pure pieces
def identity(pid: int) -> dict | None:
    """PID plus start time: names one process for good (PIDs are recycled)."""
    start = procfs.start_time(pid)
    return None if start is None else {"pid": pid, "start": start}


def alive(ident: dict | None) -> bool:
    """That very process still runs (a zombie, dead but not yet reaped by its parent, does not)."""
    if not ident or identity(ident["pid"]) != ident:
        return False
    try:
        return procfs.stat(ident["pid"])[3] not in ("Z", "X")
    except OSError:
        return False


def pick_subnet(taken: list[str], pool: str = GW_RANGE, rng: random.Random | None = None) -> str:
    """A /24 of `pool` that overlaps none of `taken` (CIDR strings), chosen at random (two
    daemons starting at once are then unlikely to pick the same one)."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    free = [n for n in ipaddress.ip_network(pool).subnets(new_prefix=24) if not any(n.overlaps(u) for u in used)]
    if not free:
        raise RuntimeError(f"no free /24 left in {pool}")
    return str((rng or random).choice(free))


def gwbridge_args(bridge: str, subnet: str) -> list[str]:
    """`docker network create` arguments for a docker_gwbridge of our own, made before swarm init:
    the swarm then uses it instead of making a host bridge named docker_gwbridge."""
    if not bridge.startswith(GW_PREFIX) or len(bridge) > 15:
        raise ValueError(f"{bridge!r}: the bridge is named {GW_PREFIX}<6 hex> (15 characters at most)")
    return ["network", "create", "--driver", "bridge", "--subnet", subnet,
            "--opt", f"com.docker.network.bridge.name={bridge}",
            "--opt", "com.docker.network.bridge.enable_icc=false",
            "--opt", "com.docker.network.bridge.enable_ip_masquerade=false",
            "docker_gwbridge"]


def swarm_init_args(listen_port: int, data_path_port: int) -> list[str]:
    """`docker swarm init` on loopback only: the managers' port and the VXLAN port chosen free
    (dockerd's defaults, 2377 and 4789 on every address, would collide with another daemon)."""
    if not 1024 <= data_path_port <= 49151:
        raise ValueError(f"--data-path-port must lie in 1024-49151, not {data_path_port}")
    addr = f"127.0.0.1:{listen_port}"
    return ["swarm", "init", "--advertise-addr", addr, "--listen-addr", addr,
            "--data-path-port", str(data_path_port)]


def free_udp_port(low: int = 20000, high: int = 49151, tries: int = 200) -> int:
    """A UDP port in [low, high] nobody holds right now (for --data-path-port)."""
    for _ in range(tries):
        port = random.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free UDP port found")


def parse_event(line: str | dict) -> dict | None:
    """One line of `docker events --format '{{json .}}'`, reduced to what the notebook reads:
    t (seconds, float), type, action ('health_status: healthy' -> 'healthy'), id, name (a swarm
    task's container is named after its task, service.slot.taskid), service, slot (int or None),
    image (without @digest), tag (the image's tag), and for a service event its update state."""
    e = json.loads(line) if isinstance(line, str) else line
    if not isinstance(e, dict) or "Action" not in e:
        return None
    actor = e.get("Actor") or {}
    attrs = actor.get("Attributes") or {}
    action = e["Action"]
    if action.startswith("health_status: "):
        action = action.split(": ", 1)[1]
    kind = e.get("Type", "")
    name = attrs.get("com.docker.swarm.task.name") or attrs.get("name", "")
    service = attrs.get("com.docker.swarm.service.name", "") or (name if kind == "service" else "")
    image = attrs.get("image", "").split("@", 1)[0]
    last = image.rsplit("/", 1)[-1]
    parts = name.split(".")
    slot = int(parts[1]) if kind == "container" and service and len(parts) == 3 and parts[1].isdigit() else None
    t = e["timeNano"] / 1e9 if e.get("timeNano") else float(e.get("time", 0))
    return {"t": t, "type": kind, "action": action, "id": actor.get("ID", e.get("id", "")), "name": name,
            "service": service, "slot": slot, "image": image, "tag": last.split(":", 1)[1] if ":" in last else "",
            "update": attrs.get("updatestate.new", "")}


def container_spans(events: list[dict], service: str | None = None) -> list[dict]:
    """Per container, when it was created, started, first healthy, first unhealthy, told to stop
    (kill), and died (None: not seen); in the order they were first seen. `service` keeps one
    service's tasks."""
    spans: dict[str, dict] = {}
    for e in sorted(events, key=lambda e: e["t"]):
        if e["type"] != "container" or (service and e["service"] != service):
            continue
        s = spans.setdefault(e["id"], {"id": e["id"], "name": e["name"], "service": e["service"], "slot": e["slot"],
                                       "tag": e["tag"], "first": e["t"], "created": None, "started": None,
                                       "healthy": None, "unhealthy": None, "kill": None, "died": None})
        key = {"create": "created", "start": "started", "healthy": "healthy", "unhealthy": "unhealthy",
               "kill": "kill", "die": "died"}.get(e["action"])
        if key and s[key] is None:
            s[key] = e["t"]
    return sorted(spans.values(), key=lambda s: s["first"])


def counts_over_time(spans: list[dict], end: float | None = None) -> list[tuple]:
    """[(t, running, healthy)] after every change: running = started and not yet dead; healthy =
    reported healthy and not yet told to stop (kill) nor dead. (EventRecorder reports the
    containers already up when it began as started, and healthy, at that moment.)"""
    marks = []
    for s in spans:
        if s["started"] is None:
            continue
        marks.append((s["started"], "run", +1))
        if s["died"] is not None:
            marks.append((s["died"], "run", -1))
        if s["healthy"] is not None:
            marks.append((s["healthy"], "ok", +1))
            ends = [v for v in (s["kill"], s["died"], s["unhealthy"] if (s["unhealthy"] or 0) > s["healthy"] else None)
                    if v is not None]
            if ends:
                marks.append((min(ends), "ok", -1))
    marks.sort(key=lambda m: m[0])
    out, running, healthy = [], 0, 0
    for i, (t, what, d) in enumerate(marks):
        if what == "run":
            running += d
        else:
            healthy += d
        if i + 1 == len(marks) or marks[i + 1][0] != t:  # (one point per instant: its final counts)
            out.append((t, running, healthy))
    if end is not None:
        out.append((end, running, healthy))
    return out


def extremes(series: list[tuple], since: float | None = None, until: float | None = None) -> dict:
    """min/max of running and healthy over [since, until] (the value in force at `since` counts)."""
    inside, before = [], None
    for t, r, h in series:
        if since is not None and t < since:
            before = (t, r, h)
            continue
        if until is not None and t > until:
            break
        inside.append((t, r, h))
    if before is not None:
        inside.insert(0, before)
    if not inside:
        return {"min_running": 0, "max_running": 0, "min_healthy": 0, "max_healthy": 0}
    return {"min_running": min(r for _, r, _ in inside), "max_running": max(r for _, r, _ in inside),
            "min_healthy": min(h for _, _, h in inside), "max_healthy": max(h for _, _, h in inside)}


def read_upstream(text: str) -> tuple[str, int]:
    """The balancer's route file: one line `127.0.0.1:PORT` (loopback only)."""
    host, _, port = text.strip().rpartition(":")
    if not host.startswith("127.") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"a route is 127.x.y.z:PORT on loopback, not {text.strip()!r}")
    return host, int(port)


# ------------------------------------------------------------------ the engines
def _record_path(stack_dir: str) -> str:
    return os.path.join(stack_dir, RECORD)


def _write_record(stack_dir: str, rec: dict) -> None:
    tmp = _record_path(stack_dir) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1)
    os.replace(tmp, _record_path(stack_dir))


def _end(ident: dict | None, grace: float = 5) -> bool:
    """SIGTERM, then SIGKILL, one process we started (named by PID and start time)."""
    if not alive(ident):
        return False
    pid = ident["pid"]
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)  # (our child: reap it)
                if done:
                    return True
            except ChildProcessError:
                pass
            if not alive(ident):
                return True
            time.sleep(0.05)
    return True


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(p))
            except (OSError, ValueError, IndexError):
                continue
    return out


def daemon_processes(workdir: str) -> list[int]:
    """dockerd, containerd and the containerd shims of the private daemon in `workdir` (their
    command lines name it), e.g. what a killed dockerd left running."""
    mine = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            argv = _cmdline(int(p))
            if argv and os.path.basename(argv[0]).startswith(("dockerd", "containerd")) and \
                    any(workdir + "/" in a or a == workdir for a in argv):
                mine.append(int(p))
    return sorted(mine)


def docker_cgroups(ids: list[str]) -> list[str]:
    """The cgroup directories dockerd's runc made for containers `ids` (cgroupfs driver:
    <tree>/docker/<id>), in every mounted hierarchy."""
    found = []
    for m in procfs.mountinfo():
        if m["fstype"] in ("cgroup", "cgroup2"):
            found += [d for i in ids if os.path.isdir(d := os.path.join(m["target"], "docker", i))]
    return sorted(set(found))


def _link_exists(name: str) -> bool:
    return bool(name) and os.path.exists(f"/sys/class/net/{name}")


def _ip_link_del(name: str) -> bool:
    if not _link_exists(name):
        return False
    subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
    return True


def teardown(stack_dir: str) -> list[str]:
    """Everything a stack recorded in `stack_dir`, ended and removed, whether its kernel is alive
    or crashed long ago: the balancer and other helpers, minidocker serve, the swarm (services,
    leave), dockerd and what it left (shims, containers' cgroups, mounts, its bridge and our
    docker_gwbridge), the registry, and the directory. Returns what was done."""
    try:
        with open(_record_path(stack_dir)) as f:
            rec = json.load(f)
    except (OSError, ValueError):
        rec = {}
    done = []
    for name, ident in rec.get("children", {}).items():
        if _end(ident):
            done.append(f"stopped {name}")
    if _end(rec.get("serve")):
        done.append("stopped minidocker serve")
    wd = rec.get("dockerd")
    if wd and os.path.isdir(wd):
        sock = os.path.join(wd, "docker.sock")
        client = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"

        def dk(*args, timeout=60):
            try:
                return subprocess.run([client, "-H", f"unix://{sock}", *args], capture_output=True, text=True,
                                      timeout=timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                return subprocess.CompletedProcess(args, 124, "", "timeout")
        pid_ident = None
        try:
            pid_ident = identity(int(open(os.path.join(wd, "dockerd.pid")).read()))
        except (OSError, ValueError):
            pass
        if pid_ident and os.path.exists(sock):
            services = dk("service", "ls", "-q").stdout.split()
            if services:
                dk("service", "rm", *services)
                done.append(f"removed {len(services)} swarm services")
            if dk("swarm", "leave", "--force").returncode == 0:
                done.append("left the swarm")
            ids = dk("ps", "-aq").stdout.split()
            if ids:
                dk("rm", "-f", *ids)
            dk("network", "rm", "docker_gwbridge")
        ids = sorted(os.listdir(os.path.join(wd, "data", "containers"))) \
            if os.path.isdir(os.path.join(wd, "data", "containers")) else []
        if pid_ident and alive(pid_ident):
            # dockerd proper: our own RealDocker's stop() would do it; after a crash we do it here
            _end(pid_ident, grace=30)
            done.append("stopped dockerd")
        for pid in daemon_processes(wd):  # containerd, shims: their containers first
            for child in _children(pid):
                if not os.path.basename((_cmdline(child) or [""])[0]).startswith("containerd"):
                    _end(identity(child), grace=1)
            _end(identity(pid), grace=2)
            done.append(f"stopped a process of dockerd's ({pid})")
        for d in docker_cgroups(ids):
            try:
                os.rmdir(d)
            except OSError:
                pass
        RealDocker(wd, None, client).stop()  # unmounts, its bridge, its directory
        done.append("dockerd's directory, mounts and bridge")
    if _ip_link_del(rec.get("gwbridge", "")):
        done.append(f"bridge {rec['gwbridge']} (our docker_gwbridge)")
    reg = rec.get("registry") or {}
    if _end(reg.get("process")):
        done.append("stopped the registry")
    if reg.get("workdir"):
        shutil.rmtree(reg["workdir"], ignore_errors=True)
    shutil.rmtree(stack_dir, ignore_errors=True)
    return done


def reap_stale(base: str = "/tmp", grace: float = 60) -> list[str]:
    """Tear down the stacks in `base` whose kernel (owner) is gone: what an earlier run that
    crashed or was killed left running. A stack without an owner yet is left alone for `grace` s."""
    done = []
    for d in sorted(glob.glob(os.path.join(base, STACK_PREFIX + "*"))):
        try:
            with open(_record_path(d)) as f:
                owner = json.load(f).get("owner")
        except (OSError, ValueError):
            owner = None
            try:
                if time.time() - os.stat(d).st_mtime < grace:
                    continue
            except OSError:
                continue
        if owner and alive(owner):
            continue
        done.append(f"{d}: " + ", ".join(teardown(d)))
    return done


class Stack:
    """A private dockerd, a loopback registry and `minidocker serve`, recorded in
    /tmp/mdstack-XXXXXXXX/stack.json as they start, so that stop() or a later reap_stale()
    finds every one of them."""

    def __init__(self, lab, stack_dir: str):
        self.lab = lab
        self.dir = stack_dir
        self.rec: dict = {"owner": identity(os.getpid()), "children": {}}
        self.docker_daemon: RealDocker | None = None
        self.registry: LocalRegistry | None = None
        self.serve_proc: subprocess.Popen | None = None
        self.serve_socket = os.path.join(stack_dir, "md.sock")
        self._procs: dict[str, subprocess.Popen] = {}
        self.stopped = False

    def _save(self) -> None:
        _write_record(self.dir, self.rec)

    @classmethod
    def start(cls, lab, base: str = "/tmp", serve: bool = True) -> "Stack":
        reap_stale(base)
        self = cls(lab, tempfile.mkdtemp(prefix=STACK_PREFIX, dir=base))
        self._save()
        atexit.register(self.stop)
        try:
            self.registry = LocalRegistry.start(base=self.dir)
            self.rec["registry"] = {"process": identity(self.registry.pid), "workdir": self.registry.workdir}
            self._save()
            self.docker_daemon = RealDocker.start()
            self.rec["dockerd"] = self.docker_daemon.workdir
            with open(os.path.join(self.docker_daemon.workdir, "bridge")) as f:
                self.rec["bridge"] = f.read().strip()
            self._save()
            if serve:
                self._start_serve()
        except BaseException:
            self.stop()
            raise
        return self

    # -------------------------------------------------------------- the pieces
    @property
    def docker_socket(self) -> str:
        return self.docker_daemon.socket

    def serve_env(self) -> dict:
        """The environment of minidocker serve: the lab's state root, no DNS forwarding beyond
        this machine, no pulls from the internet."""
        return self.lab.child_env({"MINIDOCKER_DNS_UPSTREAM": "", "MINIDOCKER_OFFLINE": "1"})

    def _start_serve(self, timeout: float = 30) -> None:
        with open(os.path.join(self.dir, "serve.log"), "ab") as log:
            self.serve_proc = subprocess.Popen(
                [sys.executable, "-m", "minidocker", "--root", self.lab.root, "serve", "-H", f"unix://{self.serve_socket}"],
                env=self.serve_env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=PACKAGE_PARENT,
                start_new_session=True)
        self.rec["serve"] = identity(self.serve_proc.pid)
        self._save()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.serve_proc.poll() is not None:
                raise RuntimeError(f"minidocker serve exited with {self.serve_proc.returncode}: {self.serve_log()}")
            if os.path.exists(self.serve_socket) and self.docker("version", engine="minidocker")[0] == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"minidocker serve did not answer in {timeout} s: {self.serve_log()}")

    def serve_log(self) -> str:
        try:
            with open(os.path.join(self.dir, "serve.log"), errors="replace") as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def socket_of(self, engine: str) -> str:
        if engine == "docker":
            return self.docker_socket
        if engine == "minidocker":
            return self.serve_socket
        raise ValueError(f"engine is 'docker' or 'minidocker', not {engine!r}")

    def docker(self, *args: str, engine: str = "docker", input: str | None = None,
               timeout: float = 120) -> tuple[int, str, str]:
        """The real docker CLI (Debian's 20.10) against the private dockerd (engine="docker") or
        minidocker serve (engine="minidocker"): (exit code, stdout, stderr); never raises."""
        try:
            p = subprocess.run([self.docker_daemon.client, "-H", f"unix://{self.socket_of(engine)}", *args],
                               capture_output=True, text=True, timeout=timeout, input=input,
                               stdin=None if input is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "", f"docker {' '.join(args)}: no answer in {timeout:g} s"
        return p.returncode, p.stdout, p.stderr

    def compose(self, project_dir: str, *args: str, engine: str = "minidocker", project: str | None = None,
                env: dict | None = None, timeout: float = 180) -> tuple[int, str, str]:
        """docker-compose 1.29 in `project_dir`, pointed (DOCKER_HOST) at minidocker serve or at the
        private dockerd: (exit code, stdout, stderr)."""
        e = dict(os.environ, DOCKER_HOST=f"unix://{self.socket_of(engine)}", COMPOSE_INTERACTIVE_NO_CLI="1",
                 **(env or {}))
        if project:
            e["COMPOSE_PROJECT_NAME"] = project
        try:
            p = subprocess.run([COMPOSE, *args], cwd=project_dir, capture_output=True, text=True, timeout=timeout,
                               env=e, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "", f"docker-compose {' '.join(args)}: no answer in {timeout:g} s"
        return p.returncode, p.stdout, p.stderr

    def spawn(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        """A helper process of the notebook's (the balancer, an event stream), recorded so that
        stop() or reap_stale() ends it."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self._procs[name] = p
        self.rec["children"][name] = identity(p.pid)
        self._save()
        return p

    def end(self, name: str) -> None:
        p = self._procs.pop(name, None)
        if p is not None:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
        self.rec["children"].pop(name, None)
        self._save()

    # -------------------------------------------------------------- swarm
    def swarm_init(self) -> list[list[str]]:
        """A single-node swarm on the private dockerd, as described at the top of this module:
        our own docker_gwbridge first, then `swarm init` on loopback, then `ingress` removed.
        Returns the docker commands it ran (for the notebook to show)."""
        from ..network.store import read_routes
        bridge = GW_PREFIX + os.urandom(3).hex()
        self.rec["gwbridge"] = bridge       # recorded before it exists: a crash cannot lose it
        self._save()
        commands = [gwbridge_args(bridge, pick_subnet(read_routes())),
                    swarm_init_args(free_port(), free_udp_port()),
                    ["network", "rm", "ingress"]]
        for args in commands:
            code, out, err = self.docker(*args, input="y\n" if args[-1] == "ingress" else None)
            if code != 0:
                raise RuntimeError(f"docker {' '.join(args)}: {err.strip()}")
        deadline = time.monotonic() + 15   # (the removal completes a moment later)
        while "ingress" in self.docker("network", "ls", "--format", "{{.Name}}")[1].split() \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        return commands

    def replicas(self, service: str) -> tuple[int, int]:
        """(running, desired) as `docker service ls` shows them ("2/3"); a task with a health
        check counts as running once it is healthy."""
        _, out, _ = self.docker("service", "ls", "--filter", f"name={service}", "--format",
                                "{{.Name}} {{.Replicas}}")
        for line in out.splitlines():
            name, reps = line.split()[:2]
            if name == service:
                running, desired = reps.split("/")
                return int(running), int(desired)
        return 0, 0

    def wait_replicas(self, service: str, timeout: float = 60) -> tuple[int, int]:
        """Poll until every desired task of `service` runs (without `docker service create`'s own
        5-second wait for stability, which `--detach` skips). Returns (running, desired)."""
        deadline = time.monotonic() + timeout
        while True:
            running, desired = self.replicas(service)
            if (desired and running == desired) or time.monotonic() > deadline:
                return running, desired
            time.sleep(0.2)

    def update_state(self, service: str) -> str:
        """UpdateStatus.State of a service: updating, completed, rollback_started, rollback_completed,
        paused, ... ('' before its first update)."""
        return self.docker("service", "inspect", "-f", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
                           service)[1].strip()

    def wait_update(self, service: str, timeout: float = 90) -> str:
        """Poll until the service's update (or rollback) is over; returns its final state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.update_state(service)
            if state in ("", "completed", "rollback_completed", "paused", "rollback_paused") \
                    or time.monotonic() > deadline:
                return state
            time.sleep(0.2)

    def swarm_leave(self) -> list[str]:
        """Services removed, the swarm left, our docker_gwbridge removed (`swarm leave` keeps it)."""
        done = []
        services = self.docker("service", "ls", "-q")[1].split()
        if services:
            self.docker("service", "rm", *services)
            done.append(f"service rm ({len(services)})")
        if self.docker("swarm", "leave", "--force")[0] == 0:
            done.append("swarm leave --force")
        deadline = time.monotonic() + 30
        while self.docker("ps", "-aq")[1].split() and time.monotonic() < deadline:
            time.sleep(0.2)   # (the tasks' containers go away shortly after)
        if self.docker("network", "rm", "docker_gwbridge")[0] == 0:
            done.append("network rm docker_gwbridge")
        return done

    # -------------------------------------------------------------- the end
    def stop(self) -> list[str]:
        """Stop everything (safe to call twice)."""
        if self.stopped:
            return []
        done = []
        for name in list(self._procs):
            self.end(name)
        if self.serve_proc is not None and self.serve_proc.poll() is None:
            self.serve_proc.terminate()
            try:
                self.serve_proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.serve_proc.kill()
                self.serve_proc.wait(timeout=5)
            done.append("minidocker serve")
        if self.docker_daemon is not None and self.docker_daemon.proc is not None:
            if os.path.exists(self.docker_socket):
                done += self.swarm_leave()
            self.docker_daemon.stop()
            done.append("dockerd")
        if self.registry is not None:
            self.registry.stop()
            done.append("registry")
        done += [d for d in teardown(self.dir) if d]   # whatever is still there, the record's way
        self.stopped = True
        try:
            atexit.unregister(self.stop)
        except Exception:  # noqa: BLE001 -- at interpreter exit
            pass
        return done

    def bridge_names(self) -> list[str]:
        """The Linux bridges of this stack: dockerd's own (mdrd-...) and our docker_gwbridge (mdgw-...)."""
        return [b for b in (self.rec.get("bridge"), self.rec.get("gwbridge")) if b]

    def leftovers(self) -> list[str]:
        """What of this stack is still on the host (empty after stop())."""
        out = []
        if os.path.exists(self.dir):
            out.append(f"directory {self.dir}")
        for name, ident in [("minidocker serve", self.rec.get("serve")),
                            ("registry", (self.rec.get("registry") or {}).get("process"))] + \
                list(self.rec.get("children", {}).items()):
            if alive(ident):
                out.append(f"process {name}")
        wd = self.rec.get("dockerd")
        if wd:
            if os.path.exists(wd):
                out.append(f"directory {wd}")
            out += [f"process {p} of dockerd's" for p in daemon_processes(wd)]
            out += [f"mount {m}" for m in procfs.mounts_under(wd)]
            bridge_file = os.path.join(wd, "bridge")
            if os.path.exists(bridge_file) and _link_exists(open(bridge_file).read().strip()):
                out.append("dockerd's bridge")
        out += [f"bridge {b}" for b in self.bridge_names() if _link_exists(b)]
        out += [f"firewall rule {r}" for r in firewall_mentions(self.bridge_names())]
        return out


def firewall_mentions(names: list[str]) -> list[str]:
    """Lines of `nft list ruleset` and `iptables-save` that name one of `names` (interfaces): what a
    daemon with iptables on would have added for its bridges. (Ours run with --iptables=false.)"""
    found = []
    for argv in (["nft", "list", "ruleset"], ["iptables-save"]):
        try:
            text = subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        found += [line.strip() for line in text.splitlines() if names and any(n in line for n in names)]
    return found


# ------------------------------------------------------------------ watching
class EventRecorder:
    """`docker events` of the private dockerd, streamed live into a file while the `with` block
    runs (dockerd keeps only its last 256 events for `--since`; health checks fill that fast),
    then parsed: `.events` is a list of parse_event() dicts, `.t0` when recording began."""

    ACTIONS = ("create", "start", "health_status", "kill", "die", "destroy", "update")

    def __init__(self, stack: Stack, types: tuple[str, ...] = ("container", "service")):
        self.stack = stack
        self.types = types
        self.path = os.path.join(stack.dir, f"events-{time.monotonic_ns()}.jsonl")
        self.events: list[dict] = []
        self.t0 = self.t1 = None

    def snapshot(self, t: float) -> list[dict]:
        """The containers up right now, as start (and healthy) events at time t: the state the
        recording starts from."""
        fmt = '{{.ID}}|{{.Names}}|{{.Image}}|{{.Status}}|{{.Label "com.docker.swarm.service.name"}}'
        code, out, _ = self.stack.docker("ps", "--no-trunc", "--format", fmt)
        events = []
        for line in out.splitlines():
            cid, name, image, status, service = line.split("|", 4)
            base = {"Type": "container", "timeNano": int(t * 1e9), "Actor": {"ID": cid, "Attributes": {
                "name": name, "image": image, "com.docker.swarm.service.name": service,
                "com.docker.swarm.task.name": name if service else ""}}}
            events.append(parse_event(dict(base, Action="start")))
            if "(healthy)" in status:
                events.append(parse_event(dict(base, Action="health_status: healthy")))
        return events

    def __enter__(self) -> "EventRecorder":
        self.t0 = time.time()
        self.before = self.snapshot(self.t0)
        argv = [self.stack.docker_daemon.client, "-H", f"unix://{self.stack.docker_socket}", "events",
                "--since", f"{self.t0:.3f}", "--format", "{{json .}}"]
        for t in self.types:
            argv += ["--filter", f"type={t}"]
        for a in self.ACTIONS:
            argv += ["--filter", f"event={a}"]
        self._out = open(self.path, "w")
        self.proc = self.stack.spawn("events", argv, stdout=self._out, stderr=subprocess.DEVNULL)
        time.sleep(0.2)  # (subscribed: --since covers the moment in between anyway)
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.3)  # the last events on their way
        self.t1 = time.time()
        self.stack.end("events")
        self._out.close()
        with open(self.path) as f:
            self.events = self.before + [e for line in f if line.strip() and (e := parse_event(line))]
        os.unlink(self.path)


def http_get(port: int, path: str = "/", timeout: float = 2.0, host: str = "127.0.0.1") -> tuple[int, str]:
    """GET http://127.0.0.1:port/path (loopback only): (status, body)."""
    if not host.startswith("127."):
        raise ValueError("loopback only")
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


class LoadLoop:
    """A bounded client loop on loopback: GET / every `interval` s in a thread until stop() (or
    `max_requests`, or `max_seconds`), each on a new connection; samples (t, ok, body or error).
    stop() joins the thread, so nothing runs after the cell that started it."""

    def __init__(self, port: int, path: str = "/", interval: float = 0.02, max_requests: int = 3000,
                 max_seconds: float = 60, timeout: float = 2.0):
        self.port, self.path, self.interval = port, path, interval
        self.max_requests, self.max_seconds, self.timeout = max_requests, max_seconds, timeout
        self.samples: list[tuple[float, bool, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set() and len(self.samples) < self.max_requests and \
                time.monotonic() - start < self.max_seconds:
            t = time.time()
            try:
                status, body = http_get(self.port, self.path, timeout=self.timeout)
                self.samples.append((t, status == 200, body.strip() if status == 200 else f"HTTP {status}"))
            except (OSError, http.client.HTTPException) as e:
                self.samples.append((t, False, type(e).__name__))
            self._stop.wait(self.interval)

    def start(self) -> "LoadLoop":
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, bool, str]]:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)
        return self.samples

    def __enter__(self) -> "LoadLoop":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def failed(self) -> int:
        return sum(1 for _, ok, _ in self.samples if not ok)


def journal_events(root: str, since: float = 0.0) -> list[dict]:
    """minidocker's own events (its journal, <root>/events.log: what `docker events` against
    minidocker serve replays) since `since`, as parse_event() dicts."""
    from ..events import journal
    out = []
    try:
        with open(journal(root)) as f:
            for line in f:
                e = parse_event(line) if line.strip() else None
                if e and e["t"] >= since:
                    out.append(e)
    except OSError:
        pass
    return out


# ------------------------------------------------------------------ figures
COLORS = {"1": "#4c72b0", "2": "#dd8452", "3": "#8172b3", "bad": "#c44e52", "blue": "#1f77b4",
          "green": "#2ca02c", "failed": "#d62728"}


def color_of(tag: str) -> str:
    return COLORS.get(tag, "#7f7f7f")


def plot_rollout(ax, spans: list[dict], t0: float, t1: float, title: str = "", floor: int | None = None,
                 count_ax=None) -> None:
    """One row per container (first seen at the top): creating (light), starting (hatched: its
    health check has not passed yet), healthy (solid, the image tag's colour), stopping (dark),
    a red x where it turned unhealthy. With `count_ax`, the healthy and running counts below,
    and `floor` as a dashed line (the fewest healthy replicas allowed)."""
    from matplotlib.patches import Patch
    rows = list(reversed(spans))
    for y, s in enumerate(rows):
        def bar(a, b, **kw):
            if a is not None:
                b = t1 if b is None else b
                ax.broken_barh([(a - t0, max(b - a, 0.02))], (y - 0.35, 0.7), **kw)
        c = color_of(s["tag"])
        bar(s["created"], s["started"], color="#dddddd")
        ends = [v for v in (s["kill"], s["died"], s["unhealthy"]) if v is not None]
        bar(s["started"], s["healthy"] if s["healthy"] is not None else (min(ends) if ends else None),
            facecolor="white", edgecolor=c, hatch="///")
        if s["healthy"] is not None:
            bar(s["healthy"], s["kill"] if s["kill"] is not None else s["died"], color=c)
        if s["kill"] is not None:
            bar(s["kill"], s["died"], color="#555555")
        if s["unhealthy"] is not None:
            ax.plot([s["unhealthy"] - t0], [y], "x", color="red", markersize=9, mew=2)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{s['service']}.{s['slot']}: {s['tag']}" if s["slot"] else s["name"] for s in rows])
    ax.set_xlim(0, t1 - t0)
    ax.set_title(title)
    tags = list(dict.fromkeys(s["tag"] for s in spans))
    ax.legend(handles=[Patch(color=color_of(t), label=f"healthy: {t}") for t in tags] +
              [Patch(color="#dddddd", label="created"),
               Patch(facecolor="white", edgecolor="#444444", hatch="///", label="starting"),
               Patch(color="#555555", label="stopping")], loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    if count_ax is not None:
        series = counts_over_time(spans, t1)
        xs = [0.0] + [t - t0 for t, _, _ in series]
        count_ax.step(xs, [series[0][2] if series else 0] + [h for _, _, h in series], where="post",
                      label="healthy", color="#2ca02c", lw=2)
        count_ax.step(xs, [series[0][1] if series else 0] + [r for _, r, _ in series], where="post",
                      label="running", color="#7f7f7f", lw=1, ls="-.")
        if floor is not None:
            count_ax.axhline(floor, color="red", ls="--", lw=1, label=f"floor: {floor}")
        count_ax.set_xlim(0, t1 - t0)
        count_ax.set_ylim(0, max([r for _, r, _ in series] + [1]) + 1)
        count_ax.set_xlabel("seconds")
        count_ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


def plot_requests(ax, samples: list[tuple], t0: float | None = None, width: float = 0.25, title: str = "",
                  marks: dict | None = None) -> None:
    """Requests per `width`-second bin, stacked by what they got (a body such as 'blue' or
    'green', or a failure in red); `marks` {label: time} draws vertical lines."""
    if not samples:
        return
    t0 = samples[0][0] if t0 is None else t0
    n = int((samples[-1][0] - t0) / width) + 1
    kinds = list(dict.fromkeys(b if ok else "failed" for _, ok, b in samples))
    bottom = [0] * n
    for k in kinds:
        counts = [0] * n
        for t, ok, b in samples:
            if (b if ok else "failed") == k:
                counts[int((t - t0) / width)] += 1
        ax.bar([i * width for i in range(n)], counts, width=width, bottom=bottom, align="edge",
               color=color_of(k), label=f"{k}: {sum(counts)}")
        bottom = [a + b for a, b in zip(bottom, counts)]
    for (label, t), style in zip((marks or {}).items(), (":", "--", "-.", "-")):
        ax.axvline(t - t0, color="black", ls=style, lw=1, label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel(f"requests per {width:g} s")
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)


# ------------------------------------------------------------------ a load balancer for blue/green
class Balancer:
    """A TCP load balancer on 127.0.0.1:<port> in a process of its own (this module's `balance`
    command): each new connection goes to the upstream named in its route file at that moment;
    connections already open stay where they are (draining). What a cloud load balancer, HAProxy
    or a Kubernetes Service does in front of blue and green; the switch is `route_to()`."""

    def __init__(self, stack: Stack, port: int, route_file: str, stats_file: str):
        self.stack, self.port, self.route_file, self.stats_file = stack, port, route_file, stats_file

    @classmethod
    def start(cls, stack: Stack, upstream_port: int, timeout: float = 10) -> "Balancer":
        port = free_port()
        route_file = os.path.join(stack.dir, "balancer.route")
        stats_file = os.path.join(stack.dir, "balancer.stats")
        self = cls(stack, port, route_file, stats_file)
        self.route_to(upstream_port)
        stack.spawn("balancer", [sys.executable, "-m", "minidocker.lab.orchestration", "balance", str(port),
                                 route_file, stats_file], env=dict(os.environ, PYTHONPATH=PACKAGE_PARENT),
                    stdout=subprocess.DEVNULL, stderr=open(os.path.join(stack.dir, "balancer.log"), "ab"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the balancer did not start")

    def route_to(self, upstream_port: int) -> None:
        """From now on, new connections go to 127.0.0.1:upstream_port (atomic: a rename)."""
        tmp = self.route_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"127.0.0.1:{upstream_port}\n")
        os.replace(tmp, self.route_file)

    def upstream(self) -> int:
        with open(self.route_file) as f:
            return read_upstream(f.read())[1]

    def active(self) -> dict[int, int]:
        """{upstream port: connections open through the balancer right now}."""
        try:
            with open(self.stats_file) as f:
                return {int(k): v for k, v in json.load(f).get("active", {}).items() if v}
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        self.stack.end("balancer")


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def balance(port: int, route_file: str, stats_file: str) -> None:  # pragma: no cover (its own process)
    """The balancer's process: accept on 127.0.0.1:port, forward each connection to the route
    file's upstream of the moment, keep the count of open connections per upstream in stats_file."""
    lock = threading.Lock()
    active: dict[int, int] = {}
    total: dict[int, int] = {}

    def save():
        tmp = stats_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"active": active, "total": total}, f)
        os.replace(tmp, stats_file)

    def serve(client: socket.socket) -> None:
        with lock:  # the route read and the connection counted at once: a drain never misses one
            try:
                with open(route_file) as f:
                    host, up = read_upstream(f.read())
            except (OSError, ValueError):
                client.close()
                return
            active[up] = active.get(up, 0) + 1
            total[up] = total.get(up, 0) + 1
            save()
        try:
            upstream = socket.create_connection((host, up), timeout=5)
        except OSError:
            client.close()
            with lock:
                active[up] -= 1
                save()
            return
        try:
            t = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            t.start()
            _pipe(client, upstream)
            t.join()
        finally:
            client.close()
            upstream.close()
            with lock:
                active[up] -= 1
                save()

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(128)
    save()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        client, _ = srv.accept()
        threading.Thread(target=serve, args=(client,), daemon=True).start()


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) == 5 and sys.argv[1] == "balance":
        balance(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit("usage: python -m minidocker.lab.orchestration balance PORT ROUTE_FILE STATS_FILE")
