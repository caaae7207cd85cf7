"""The container lifecycle: create, start, stop, kill, restart, remove, wait, prune.

Every `docker` verb that changes a container is here, in the order a container meets them:

    create   resolve the image, decide argv/env/user (spec.py), reserve the name, make the
             `-init` and writable overlay layers, write the record       -> state "created"
    start    spawn the monitor (shim.py) and wait until the user's command is running
                                                                         -> state "running"
    stop     send StopSignal (SIGTERM), wait up to -t seconds, then SIGKILL
    kill     send a signal (SIGKILL by default)
    rm       refuse a running container unless -f; delete layers, logs and the record

There is no daemon: each function reads the on-disk record, and `_reconcile()` repairs
a record whose monitor died (crash, kill -9, reboot) before anyone acts on it.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import secrets
import signal as signalmod
import subprocess
import sys
import time

from .. import fsutil, gotime
from ..core import security
from ..errors import Conflict, InvalidArgument, InvalidState, MinidockerError, NotFound, RuntimeFailure
from ..images import busybox
from ..images.store import Image, ImageStore
from ..network.store import PREDEFINED
from ..paths import StateRoot
from ..core.linux import procfs
from ..container import etcfiles, hostconfig, names, runconfig as spec, state as st
from ..container.store import ContainerStore

DEFAULT_STOP_TIMEOUT = 10
TMP_GRACE = 300  # seconds: younger temporary files may belong to a pull or build in progress


class StartedContainer:
    """What `start` returns: the PID of the container's init, and a way to wait for its exit."""

    def __init__(self, pid: int, status: "_StatusPipe | None" = None):
        self.pid = pid
        self._status = status

    def wait_exit(self) -> int | None:
        """Block until the monitor reports the exit code (None if it died without saying)."""
        if self._status is None:
            return None
        ev = self._status.next_event()
        self._status.close()
        self._status = None
        return ev.get("code") if ev and ev.get("event") == "exited" else None


class _StatusPipe:
    """The read end of the monitor's status pipe: one JSON event per line."""

    def __init__(self, fd: int):
        self.f = os.fdopen(fd, "rb", buffering=0)
        self.buf = b""

    def next_event(self) -> dict | None:
        while b"\n" not in self.buf:
            chunk = self.f.read(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.f.close()


def remove_files(root: StateRoot, cid: str) -> None:
    """Delete a container's layers and directory (it must not be running)."""
    ImageStore(root).remove_container_layers(cid)
    ContainerStore(root).delete(cid)


def remove_anonymous_volumes(root: StateRoot, rec: dict) -> None:
    from .. import volumes as volmod
    vs = volmod.VolumeStore(root)
    for m in rec.get("Mounts") or []:
        if m.get("Type") == "volume" and vs.anonymous(m["Name"]):
            try:
                vs.remove(m["Name"], [])
            except MinidockerError:
                pass


class Runtime:
    """All lifecycle operations on one state root. Cheap to create; holds no open files."""

    def __init__(self, root: StateRoot | str | None = None):
        self.root = root if isinstance(root, StateRoot) else StateRoot.from_env(root)
        self.images = ImageStore(self.root)
        self.containers = ContainerStore(self.root)

    # ------------------------------------------------------------------ images
    def image(self, name: str, pull: bool = True) -> Image:
        """Find an image; the embedded busybox is built on first use; others are pulled
        (as `docker run` does) unless MINIDOCKER_OFFLINE=1."""
        try:
            return self.images.resolve(name)
        except NotFound:
            if busybox.is_embedded(name):
                return busybox.ensure_busybox(self.images)
            from ..images import reference
            ref = reference.parse(name)  # a malformed name says so ("invalid reference format")
            if os.environ.get("MINIDOCKER_OFFLINE") == "1" or not pull:
                raise NotFound(f"Unable to find image '{ref}' locally") from None
            import sys
            from ..images import registry
            print(f"Unable to find image '{ref}' locally", file=sys.stderr, flush=True)
            registry.pull(self.images, name, say=lambda s: print(s, file=sys.stderr, flush=True))
            return self.images.resolve(str(ref))

    # ------------------------------------------------------------------ lookup
    def resolve(self, ref: str) -> str:
        return self.containers.resolve(ref)

    def inspect(self, ref: str) -> dict:
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        order = ["Id", "Created", "Path", "Args", "State", "Image", "ResolvConfPath",
                 "HostnamePath", "HostsPath", "LogPath", "Name", "RestartCount", "Driver",
                 "Platform", "MountLabel", "ProcessLabel", "AppArmorProfile", "ExecIDs",
                 "HostConfig", "GraphDriver", "Mounts", "Config", "NetworkSettings"]
        return {k: rec[k] for k in order if k in rec} | {k: v for k, v in rec.items() if k not in order}

    def list(self, all: bool = False) -> list[dict]:
        recs = [self._reconcile(r) for r in self.containers.all()]
        if not all:
            recs = [r for r in recs if r["State"]["Running"]]
        return sorted(recs, key=lambda r: r["Created"], reverse=True)

    # ------------------------------------------------------------------ create
    def create(self, image: str, command: list[str] | None = None, *, name: str | None = None,
               entrypoint: str | None = None, env: list[str] | None = None,
               workdir: str | None = None, user: str | None = None, hostname: str | None = None,
               tty: bool = False, stdin_open: bool = False, attach: bool = False,
               auto_remove: bool = False, labels: dict | None = None,
               resources: dict | None = None, stop_signal: str | None = None,
               stop_timeout: int | None = None, network: str = "default",
               network_aliases: list[str] | None = None, publish: list[str] | None = None,
               publish_all: bool = False, expose: list[str] | None = None,
               ip: str | None = None, volumes: list[str] | None = None,
               mounts: list[str] | None = None, tmpfs: list[str] | None = None) -> str:
        """`resources` holds HostConfig limits: Memory, MemorySwap, NanoCpus, CpuShares, PidsLimit."""
        if workdir and not workdir.startswith("/"):
            raise InvalidArgument(
                f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
        if name is not None:
            name = spec.validate_name(name)
        img = self.image(image)
        icfg = img.config.get("config") or {}
        ep, cmd = spec.merge_command(icfg, command, entrypoint)
        argv = spec.argv(ep, cmd)
        cid = secrets.token_hex(32)
        name = name or names.random_name()
        from ..network import modes, ports as portsmod
        kind, _ = modes.parse_mode(network)
        if kind == "container" and (publish or publish_all):
            raise InvalidArgument("conflicting options: port publishing and the container type network mode")
        if kind == "host" and not hostname:
            hostname = os.uname().nodename  # the host's network, the host's name
        exposed, bindings = portsmod.bindings_from_flags(publish or [], expose or [])
        if kind == "host":
            bindings = {}  # docker: "Published ports are discarded when using host network mode"
        networking = modes.Networking(self.root)
        net_settings = networking.settings_for_create(network, list(network_aliases or []), cid,
                                                      hostname_given=bool(hostname) and kind != "host")
        if ip:
            eps = list(net_settings["Networks"].values())
            if not eps or list(net_settings["Networks"])[0] in PREDEFINED:
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
            eps[0]["IPAMConfig"] = {"IPv4Address": ip}
        hostname = hostname or spec.default_hostname(cid)
        from .. import volumes as volmod
        wanted = [volmod.parse_v(v) for v in volumes or []] + [volmod.parse_mount(m) for m in mounts or []]
        targets = [m["Destination"] for m in wanted] + [volmod.parse_tmpfs(t)["Destination"] for t in tmpfs or []]
        taken = set(targets)
        if len(taken) < len(targets):
            raise InvalidArgument("Duplicate mount point: " + next(t for t in targets if targets.count(t) > 1))
        for target in (img.config.get("config") or {}).get("Volumes") or {}:  # the image's VOLUME lines
            if target not in taken:
                wanted.append({"Type": "volume", "Name": "", "Destination": target, "Mode": "", "RW": True})
        cdir = self.containers.dir(cid)
        now = gotime.rfc3339nano(time.time_ns())
        config = {
            "Hostname": hostname, "Domainname": "",
            "User": user if user is not None else icfg.get("User", ""),
            "AttachStdin": attach and stdin_open, "AttachStdout": attach, "AttachStderr": attach,
            "Tty": tty, "OpenStdin": stdin_open, "StdinOnce": attach and stdin_open,
            "Env": spec.container_env(icfg.get("Env") or [], env or []),
            "Cmd": cmd, "Image": image, "Volumes": icfg.get("Volumes"),
            "WorkingDir": workdir if workdir is not None else icfg.get("WorkingDir", ""),
            "Entrypoint": ep, "OnBuild": icfg.get("OnBuild"),
            "Labels": {**(icfg.get("Labels") or {}), **(labels or {})},
        }
        all_exposed = {**(icfg.get("ExposedPorts") or {}), **exposed}
        if all_exposed:  # docker's key order: right after AttachStderr
            items = list(config.items())
            at = [k for k, _ in items].index("AttachStderr") + 1
            config = dict(items[:at] + [("ExposedPorts", all_exposed)] + items[at:])
        if stop_signal or icfg.get("StopSignal"):
            spec.parse_signal(stop_signal or icfg["StopSignal"])
            config["StopSignal"] = stop_signal or icfg["StopSignal"]
        if stop_timeout is not None:
            config["StopTimeout"] = stop_timeout
        host_config = {
            "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
            "NetworkMode": network or "default", "PortBindings": bindings, "PublishAllPorts": publish_all,
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": auto_remove,
            "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
            "Privileged": False, "ReadonlyRootfs": False, "ShmSize": 67108864, "Runtime": "minidocker",
            "Memory": 0, "MemorySwap": 0, "NanoCpus": 0, "CpuShares": 0, "CpuPeriod": 0,
            "CpuQuota": 0, "PidsLimit": None, **(resources or {}),
            "MaskedPaths": list(security.MASKED_PATHS),
            "ReadonlyPaths": list(security.READONLY_PATHS),
        }
        rec = {
            "Id": cid, "Created": now, "Path": argv[0], "Args": argv[1:], "State": st.new_state(),
            "Image": img.id,
            "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
            "HostnamePath": os.path.join(cdir, "hostname"),
            "HostsPath": os.path.join(cdir, "hosts"),
            "LogPath": self.containers.log_path(cid),
            "Name": "/" + name, "RestartCount": 0, "Driver": "overlay2", "Platform": "linux",
            "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
            "HostConfig": host_config, "GraphDriver": {"Data": None, "Name": "overlay2"},
            "Mounts": [], "Config": config,
            "NetworkSettings": net_settings,
        }
        self.containers.create(rec)  # reserves the name; raises Conflict if taken
        try:
            rec["Mounts"] = self._prepare_mounts(wanted, img)
            rec["HostConfig"]["Binds"] = list(volumes) if volumes else None
            rec["HostConfig"]["Tmpfs"] = {t.partition(":")[0]: t.partition(":")[2] for t in tmpfs} if tmpfs else None
            mount_id, init_id = self.images.create_container_layers(cid, img)
            d = self.images.driver
            lowers = [os.path.join(d.home, x) for x in d.lower_chain(mount_id)]
            lowers = [os.path.realpath(x) for x in lowers]
            rec["GraphDriver"]["Data"] = {
                "LowerDir": ":".join(lowers), "MergedDir": d.merged(mount_id),
                "UpperDir": d.diff(mount_id), "WorkDir": os.path.join(d.dir(mount_id), "work")}
            fsutil.write_atomic(rec["HostnamePath"], etcfiles.hostname_file(hostname), durable=False)
            fsutil.write_atomic(rec["HostsPath"], etcfiles.hosts_file(hostname), durable=False)
            host_resolv = fsutil.read_text("/etc/resolv.conf", "") or ""
            fsutil.write_atomic(rec["ResolvConfPath"], etcfiles.resolv_conf(host_resolv, kind), durable=False)
            open(rec["LogPath"], "a").close()
            self.containers.write(rec)
        except BaseException:
            remove_files(self.root, cid)  # never leave a half-made container behind
            raise
        return cid

    # ------------------------------------------------------------------ start
    def start(self, ref: str, attach: tuple[int, int, int] | None = None) -> StartedContainer | None:
        """Start the container; return None if it was already running.

        `attach` = (stdin, stdout, stderr) fds of a caller that wants the output live
        (`run` without -d, `start -a`); use -1 for "not attached".
        """
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        if not st.check_start(rec["State"], cid):
            return None
        r, w = os.pipe()
        # The caller's stdio is passed under new numbers: the shim's own 0/1/2 are /dev/null
        # and its error log, so that a detached shim holds no terminal.
        attach_fds = [os.dup(fd) if fd >= 0 else -1 for fd in attach] if attach else []
        # -S skips site-packages' .pth processing (tens of ms at every start); PYTHONPATH
        # carries our own import path over, so the shim imports exactly what we import.
        argv = [sys.executable, "-S", "-m", "minidocker.core.shim", self.root.root, cid, str(w)]
        # The package's own parent directory goes first: an editable install is found through
        # a .pth hook that -S skips.
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent] + [p for p in sys.path if p]))
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # let Python cache compiled modules
        if attach_fds:
            argv += [str(fd) for fd in attach_fds] + [str(os.getpid())]
        try:
            with open(os.path.join(self.containers.dir(cid), "shim.log"), "ab") as errlog:
                proc = subprocess.Popen(argv, pass_fds=[w] + [fd for fd in attach_fds if fd >= 0],
                                        start_new_session=True, stdin=subprocess.DEVNULL, env=env,
                                        stdout=subprocess.DEVNULL, stderr=errlog, close_fds=True)
        finally:
            os.close(w)
            for fd in attach_fds:
                if fd >= 0:
                    os.close(fd)
        proc.wait()  # the shim daemonizes at once: this only reaps its short-lived parent
        status = _StatusPipe(r)
        ev = status.next_event()
        if ev is None or ev.get("event") != "started":
            status.close()
            if ev is None:
                raise RuntimeFailure(f"the container monitor died while starting; see "
                                     f"{os.path.join(self.containers.dir(cid), 'shim.log')}")
            code = ev.get("code", 125)
            raise MinidockerError(ev.get("message", "failed to start"), exit_code=code)
        if attach:
            return StartedContainer(ev["pid"], status)
        status.close()
        return StartedContainer(ev["pid"])

    # ------------------------------------------------------------------ signals
    def _signal(self, rec: dict, sig: int) -> None:
        pid = rec["State"]["Pid"]
        if pid <= 0:
            return
        if rec["State"].get("Paused") and sig == signalmod.SIGKILL:
            # a frozen process cannot act on any signal, SIGKILL included: kill, then thaw
            self._signal_pid(rec, pid, sig)
            self._thaw_quietly(rec["Id"])
            return
        self._signal_pid(rec, pid, sig)

    def _signal_pid(self, rec: dict, pid: int, sig: int) -> None:
        try:
            # pidfd: the signal reaches this very process even if its pid were reused
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if self.containers.shim_alive(rec["Id"]):
                signalmod.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    def kill(self, ref: str, sig: str | int = "KILL") -> str:
        signo = spec.parse_signal(sig)
        try:
            cid = self.resolve(ref)
        except NotFound as e:
            raise NotFound(f"Cannot kill container: {ref}: {e}") from None
        rec = self._reconcile(self.containers.read(cid))
        st.check_kill(rec["State"], cid, ref)
        self._signal(rec, signo)
        if signo == signalmod.SIGKILL:
            self._wait_not_running(cid, None)
        return cid

    def stop(self, ref: str, timeout: int | None = None) -> str:
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        if not rec["State"]["Running"]:
            return cid  # docker: stopping a stopped container is not an error
        if timeout is None:
            timeout = rec["Config"].get("StopTimeout") or DEFAULT_STOP_TIMEOUT
        sig = spec.parse_signal(rec["Config"].get("StopSignal") or "SIGTERM")
        self._signal(rec, sig)
        if timeout < 0 or not self._wait_not_running(cid, timeout):
            self._signal(self.containers.read(cid), signalmod.SIGKILL)
            self._wait_not_running(cid, None)
        return cid

    # ------------------------------------------------------------------ cgroups
    def _cgroups(self):
        from ..core import cgroups
        return cgroups.driver()

    def _thaw_quietly(self, cid: str) -> None:
        try:
            self._cgroups().thaw(cid)
        except (MinidockerError, OSError):
            pass

    def pause(self, ref: str) -> str:
        """Freeze every process of the container (cgroup freezer): they stay in memory,
        get no CPU time, and cannot even see signals until unpaused."""
        cid = self.resolve(ref)
        self._reconcile(self.containers.read(cid))  # (takes the record's lock itself)
        with self.containers.update(cid) as rec:
            st.check_pause(rec["State"], cid)
            self._cgroups().freeze(cid)
            rec["State"].update(Paused=True, Status=st.PAUSED)
        return cid

    def unpause(self, ref: str) -> str:
        cid = self.resolve(ref)
        with self.containers.update(cid) as rec:
            st.check_unpause(rec["State"], cid)
            self._cgroups().thaw(cid)
            rec["State"].update(Paused=False, Status=st.RUNNING)
        return cid

    def update(self, ref: str, resources: dict) -> str:
        """Change limits (HostConfig keys) now if running, and for every later start."""
        cid = self.resolve(ref)
        with self.containers.update(cid) as rec:
            new = hostconfig.check_update(rec["HostConfig"], resources)
            if rec["State"]["Running"]:
                self._cgroups().apply(cid, hostconfig.oci_resources(new))
            rec["HostConfig"].update(new)
        return cid

    def stats_sample(self, ref: str) -> dict:
        """One raw measurement (cgroup counters + machine CPU clock) of a running container."""
        from ..core.cgroups import stats
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        if not rec["State"]["Running"]:
            raise InvalidState(f"Container {cid} is not running")
        return stats.sample(self._cgroups(), cid, rec["State"]["Pid"])

    # ------------------------------------------------------------------ exec
    def exec_start(self, ref: str, argv: list[str], *, user: str | None = None, workdir: str | None = None,
                   env: list[str] | None = None, tty: bool = False, interactive: bool = False,
                   detach: bool = False, stdio: tuple[int, int, int] | None = None) -> subprocess.Popen:
        """Start `argv` inside the running container (docker exec) in a helper process;
        returns it once the command runs (its exit status is the command's exit code).
        `stdio`: the (stdin, stdout, stderr) fds the command should use."""
        if not argv:
            raise InvalidArgument("exec needs a command", exit_code=1)
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        s = rec["State"]
        if not s["Running"]:
            raise InvalidState(f"Container {cid} is not running")
        if s["Paused"]:
            raise InvalidState(f"Container {ref} is paused, unpause the container before exec")
        if workdir and not workdir.startswith("/"):
            raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path",
                                  exit_code=1)
        cfg = rec["Config"]
        from ..core import cgroups
        try:
            drop = ["MKNOD"] if cgroups.driver().version == 2 else []
        except MinidockerError:
            drop = []
        req = {"cid": cid, "pid": s["Pid"], "argv": list(argv), "hostname": cfg.get("Hostname") or cid[:12],
               "env": spec.replace_or_append(cfg.get("Env") or [], env or []),
               "user": user if user is not None else cfg.get("User") or "",
               "cwd": workdir or cfg.get("WorkingDir") or "/", "tty": tty, "interactive": interactive,
               "drop_caps": drop}
        r, w = os.pipe()
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        envp = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_parent] + [p for p in sys.path if p]))
        if stdio is None or detach:
            stdin = stdout = stderr = subprocess.DEVNULL
        else:
            stdin = stdio[0] if interactive and stdio[0] >= 0 else subprocess.DEVNULL
            stdout, stderr = stdio[1], stdio[2]
        try:
            proc = subprocess.Popen([sys.executable, "-S", "-m", "minidocker.core.nsexec",
                                     json.dumps(req), str(w)], pass_fds=[w], stdin=stdin, stdout=stdout,
                                    stderr=stderr, env=envp, start_new_session=detach)
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as f:
            failure = f.read()  # EOF once the command runs (or the error, if it could not start)
        if failure:
            proc.wait()
            err = json.loads(failure)
            raise MinidockerError(err["message"], exit_code=err["code"])
        return proc

    def exec_run(self, ref: str, argv: list[str], **kw) -> tuple[int, bytes, bytes]:
        """Run a command in the container to its end; return (exit code, stdout, stderr)."""
        import tempfile
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = self.exec_start(ref, argv, stdio=(-1, out.fileno(), err.fileno()), **kw)
            code = proc.wait()
            out.seek(0)
            err.seek(0)
            return code, out.read(), err.read()

    # ------------------------------------------------------------------ networks
    def connect(self, ref: str, network: str, aliases: list[str] | None = None, ip: str | None = None) -> str:
        """`network connect`: join another network now (if running) and at every start."""
        from ..network import bridge, modes
        from ..network.store import NetworkStore, register_root
        cid = self.resolve(ref)
        store = NetworkStore(self.root)
        net = store.get(network)
        if net["Driver"] != "bridge":
            raise InvalidArgument(f"container cannot be disconnected from host network or connected to host network"
                                  if net["Name"] == "host" else f"cannot connect to network {net['Name']}")
        with self.containers.update(cid) as rec:
            kind, _ = modes.parse_mode(rec["HostConfig"].get("NetworkMode"))
            if kind != "bridge":
                raise Conflict(f"container sharing network namespace with another container or host "
                               f"cannot be connected to any other network")
            nets = rec["NetworkSettings"]["Networks"]
            if net["Name"] in nets:
                raise Conflict(f"endpoint with name {rec['Name'].lstrip('/')} already exists in network {net['Name']}")
            user_defined = net["Name"] not in PREDEFINED
            ep = modes.empty_endpoint(net["Id"], (list(aliases or []) + [cid[:12]]) if user_defined else None)
            if ip:
                ep["IPAMConfig"] = {"IPv4Address": ip}
            if rec["State"]["Running"]:
                cfg = net["IPAM"]["Config"][0]
                prefix = ipaddress.ip_network(cfg["Subnet"]).prefixlen
                register_root(self.root)
                bridge.ensure_bridge(store.bridge(net), cfg["Gateway"], prefix)
                entry = store.allocate(net["Id"], cid, rec["Name"].lstrip("/"), ip)
                addr = entry["IPv4Address"].split("/")[0]
                try:
                    bridge.plug_container(rec["State"]["Pid"], store.bridge(net), addr, prefix, cfg["Gateway"],
                                          entry["MacAddress"], ifname=f"eth{len(nets)}", default_route=False)
                except BaseException:
                    store.release(net["Id"], cid)
                    raise
                ep.update(EndpointID=entry["EndpointID"], Gateway=cfg["Gateway"], IPAddress=addr,
                          IPPrefixLen=prefix, MacAddress=entry["MacAddress"])
            nets[net["Name"]] = ep
        modes.Networking(self.root).sync_firewall()
        return cid

    def disconnect(self, ref: str, network: str, force: bool = False) -> str:
        from ..network import bridge, modes
        from ..network.store import NetworkStore
        cid = self.resolve(ref)
        store = NetworkStore(self.root)
        net = store.get(network)
        with self.containers.update(cid) as rec:
            nets = rec["NetworkSettings"]["Networks"]
            if net["Name"] not in nets:
                raise Conflict(f"container {cid} is not connected to network {net['Name']}")
            ep = nets.pop(net["Name"])
            if rec["State"]["Running"] and ep.get("MacAddress"):
                bridge.unplug_by_mac(rec["State"]["Pid"], ep["MacAddress"])
            store.release(net["Id"], cid)
        modes.Networking(self.root).sync_firewall()
        return cid

    def restart(self, ref: str, timeout: int | None = None) -> str:
        cid = self.stop(ref, timeout)
        self.start(cid)
        return cid

    def _wait_not_running(self, cid: str, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                rec = self._reconcile(self.containers.read(cid))
            except NotFound:
                return True  # --rm containers are gone once stopped
            if not rec["State"]["Running"] and not self.containers.shim_alive(cid):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def wait(self, ref: str) -> int:
        """Block until the container stops; return its exit code (docker wait)."""
        cid = self.resolve(ref)
        while True:
            try:
                rec = self._reconcile(self.containers.read(cid))
            except NotFound:
                raise NotFound(f"No such container: {ref}") from None
            s = rec["State"]
            # docker waits for "not running": a created container returns at once
            if not s["Running"] and not self.containers.shim_alive(cid):
                return s["ExitCode"]
            time.sleep(0.02)

    # ------------------------------------------------------------------ remove
    def _prepare_mounts(self, wanted: list[dict], img) -> list[dict]:
        """Create named/anonymous volumes (filled from the image the first time) and bind
        sources; return docker inspect's `Mounts` entries."""
        from .. import volumes as volmod
        vs = volmod.VolumeStore(self.root)
        out = []
        for m in wanted:
            m = dict(m)
            if m["Type"] == "volume":
                fresh = not m["Name"] or not vs.exists(m["Name"])
                m["Name"] = vs.create(m["Name"] or None, anonymous=not m["Name"])
                m.update(Source=vs.path(m["Name"]), Driver="local", Propagation="")
                if fresh and not m.pop("nocopy", False):
                    with self.images.image_rootfs(img) as rootfs:
                        volmod.copy_image_content(fsutil.scoped_path(rootfs, m["Destination"]), m["Source"])
                m.pop("nocopy", None)
                out.append({k: m[k] for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                                              "Propagation")})
            elif m["Type"] == "bind":
                if not os.path.exists(m["Source"]):
                    if not m.pop("create_source"):
                        raise InvalidArgument(f"invalid mount config for type \"bind\": bind source path does "
                                              f"not exist: {m['Source']}")
                    os.makedirs(m["Source"], mode=0o755)  # docker -v creates a missing host directory
                m.pop("create_source", None)
                out.append(m)
            else:
                out.append(m)
        return out

    def remove(self, ref: str, force: bool = False, volumes: bool = False) -> str:
        cid = self.resolve(ref)
        rec = self._reconcile(self.containers.read(cid))
        st.check_remove(rec["State"], rec["Name"].lstrip("/"), force)
        if rec["State"]["Running"]:
            self._signal(rec, signalmod.SIGKILL)
            self._wait_not_running(cid, None)
        elif self.containers.shim_alive(cid):
            self._wait_not_running(cid, 5)  # a monitor still finishing up (writing state)
        with self.containers.update(cid) as r:
            r["State"]["Status"] = st.REMOVING
        remove_files(self.root, cid)
        if volumes:  # -v: the container's anonymous volumes go with it (named ones stay)
            remove_anonymous_volumes(self.root, rec)
        return cid

    def prune(self) -> tuple[list[str], int]:
        """Remove every stopped container; return (ids, bytes reclaimed)."""
        removed, space = [], 0
        for rec in self.list(all=True):
            if rec["State"]["Running"]:
                continue
            upper = ((rec.get("GraphDriver") or {}).get("Data") or {}).get("UpperDir")
            size = fsutil.dir_size(upper) if upper and os.path.isdir(upper) else 0
            try:
                self.remove(rec["Id"])
            except MinidockerError:
                continue
            removed.append(rec["Id"])
            space += size
        return removed, space

    # ------------------------------------------------------------------ repair
    def _reconcile(self, rec: dict) -> dict:
        """A record that says "running" with no live monitor is stale: the monitor crashed or
        was killed before it could record the exit. Kill what is left and record it."""
        s = rec["State"]
        if not s["Running"] or self.containers.shim_alive(rec["Id"]):
            return rec
        with self.containers.update(rec["Id"]) as r:
            s = r["State"]
            if s["Running"] and not self.containers.shim_alive(r["Id"]):
                pid = s["Pid"]
                if pid > 0 and procfs.start_time(pid) is not None and _in_other_pidns(pid):
                    try:
                        os.kill(pid, signalmod.SIGKILL)
                    except ProcessLookupError:
                        pass
                    if s.get("Paused"):
                        self._thaw_quietly(r["Id"])
                try:
                    self._cgroups().remove(r["Id"])
                except (MinidockerError, OSError):
                    pass  # still busy: system prune will retry
                mount_id = self.images.container_mount_id(r["Id"])
                if mount_id:
                    self.images.driver.unmount(mount_id)
                st.set_exited(s, 255, time.time_ns(), error="the container's monitor died")
            rec = r
        return rec

    # ------------------------------------------------------------------ host cleanup
    def cleanup_leftovers(self) -> list[str]:
        """What `system prune` adds to container prune: kernel objects and files nothing uses.

        Returns a description of each thing cleaned."""
        cleaned = []
        live_mounts = set()
        for rec in self.list(all=True):
            if rec["State"]["Running"]:
                mid = self.images.container_mount_id(rec["Id"])
                if mid:
                    live_mounts.add(self.images.driver.merged(mid))
        for target in procfs.mounts_under(self.root.root):
            if target not in live_mounts:
                try:
                    from ..core.linux import syscalls as sc
                    sc.umount2(target, sc.MNT_DETACH)
                    cleaned.append(f"mount {target}")
                except OSError:
                    pass
        # layer directories that no image layer and no container refers to (crash mid-create)
        for cid in self.images.containers_using_layers():
            if not os.path.isdir(self.containers.dir(cid)):
                self.images.remove_container_layers(cid)
                cleaned.append(f"layers of removed container {cid[:12]}")
        with self.images.lock():  # (layers are made under this lock: none is half-made now)
            used = set()
            for chain in os.listdir(self.root.layerdb):
                cid_file = os.path.join(self.root.layerdb, chain, "cache-id")
                if chain.startswith(".tmp-"):
                    shutil.rmtree(os.path.join(self.root.layerdb, chain), ignore_errors=True)
                    cleaned.append(f"half-registered layer {chain[5:17]}")
                elif os.path.isfile(cid_file):
                    used.add(fsutil.read_text(cid_file).strip())
            for cid in self.images.containers_using_layers():
                mid = self.images.container_mount_id(cid)
                if mid:
                    used.update({mid, f"{mid}-init"})
            for layer in self.images.driver.layers():
                if layer not in used:
                    self.images.driver.remove(layer)
                    cleaned.append(f"orphaned layer {layer}")
            for name in os.listdir(self.images.driver.home + "/l"):
                link = os.path.join(self.images.driver.home, "l", name)
                if not os.path.exists(link):
                    os.unlink(link)
                    cleaned.append(f"dangling link l/{name}")
        try:
            cg = self._cgroups()
            running = {r["Id"] for r in self.list(all=True) if r["State"]["Running"]}
            for cid in cg.ids():
                # (a cgroup younger than 10 s may belong to a container starting right now,
                # possibly from another state root: leave it alone)
                young = time.time() - os.stat(cg.path(cid)).st_mtime < 10 if os.path.exists(cg.path(cid)) else False
                if cid not in running and not cg.processes(cid) and not young:
                    cg.remove(cid)  # a cgroup nobody is in, left by a crash
                    cleaned.append(f"cgroup {cid[:12]}")
            if cg.remove_parent():
                cleaned.append(f"empty cgroup parent '{cg.parent}'")
        except (MinidockerError, OSError):
            pass
        try:
            from ..network.modes import Networking
            cleaned += Networking(self.root).cleanup()
        except (MinidockerError, OSError) as e:
            cleaned.append(f"(network clean-up incomplete: {e})")
        # temporary files: a crash's leftovers, but not what a running pull or build is
        # writing right now (those were touched recently)
        for name in os.listdir(self.root.tmp):
            path = os.path.join(self.root.tmp, name)
            try:
                if time.time() - os.lstat(path).st_mtime < TMP_GRACE:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.unlink(path)
            cleaned.append(f"temporary {name}")
        self._prune_build_cache(cleaned)
        return cleaned

    def _prune_build_cache(self, cleaned: list[str]) -> None:
        """Build-cache entries whose image is gone."""
        d = os.path.join(self.root.image_dir, "buildcache")
        if not os.path.isdir(d):
            return
        n = 0
        for name in os.listdir(d):
            image_id = (fsutil.read_text(os.path.join(d, name)) or "").strip()
            if not os.path.exists(os.path.join(self.root.imagedb, image_id.split(":")[-1])):
                os.unlink(os.path.join(d, name))
                n += 1
        if n:
            cleaned.append(f"{n} build cache entries of deleted images")


def _in_other_pidns(pid: int) -> bool:
    """True if `pid` lives in a PID namespace other than ours (i.e. it is a container's)."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    except OSError:
        return False

