"""A notebook's private corner of the host: its own state root, its child processes, and a
clean-up that leaves nothing behind.

    from minidocker.lab.session import LabSession
    lab = LabSession("03")            # state root /tmp/mdlab-03-XXXXXXXX (never /var/lib/minidocker)
    client = lab.client               # minidocker.from_env(lab.root)
    lab.run_python(CODE, "arg")       # a fresh `python -c CODE arg` process (see below)
    lab.cli("ps", "-a")               # the `minidocker` command on this root
    ...
    lab.cleanup(); lab.assert_clean() # containers, monitors, mounts, bridge, files: all gone

Why children? A Jupyter kernel is multi-threaded, and fork() in a threaded process can
deadlock the child (only the forking thread survives, holding whatever locks the others
held). So the notebooks never call os.fork() or unshare() in the kernel: every namespace
and chroot experiment runs in a new Python process started with subprocess (which execs at
once), and containers are started by minidocker's own monitor process.

The clean-up also runs at exit (atexit) if the notebook stopped half-way.
"""
from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .. import fsutil
from ..core.linux import procfs
from ..core.linux.procfs import mounts_under
from ..errors import MinidockerError

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "mdlab-"
OWNER_FILE = "lab-owner.json"  # which process (kernel) made the session
NET_FILE = "lab-net.json"  # name prefixes of network objects made by hand (own_net_names)
NETNS_DIR = "/run/netns"   # where `ip netns` (and notebook 06) keeps named network namespaces


def monitor_pids(root: str) -> list[int]:
    """PIDs of minidocker monitors (shims) working for state root `root`."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"minidocker.engine.monitor" in argv and root.encode() in argv:
            pids.append(int(pid))
    return pids


def _process_identity(pid: int) -> dict | None:
    """PID plus its start time (field 22 of /proc/<pid>/stat), so a recycled PID does not count."""
    start = procfs.start_time(pid)
    return None if start is None else {"pid": pid, "start": start}


def reap_stale_sessions(base: str = "/tmp", grace: float = 60) -> list[str]:
    """Clean up the sessions in `base` whose owner (the kernel that made them) is gone.
    Returns what was cleaned. A session without an owner file is left alone for `grace`
    seconds (it may be being created right now)."""
    done = []
    for name in sorted(os.listdir(base)):
        root = os.path.join(base, name)
        if not name.startswith(PREFIX) or not os.path.isdir(root) or os.path.islink(root):
            continue
        try:
            owner = fsutil.read_json(os.path.join(root, OWNER_FILE))
        except (OSError, ValueError):
            owner = None
        if owner is not None and _process_identity(owner.get("pid", 0)) == owner:
            continue  # its kernel is alive
        try:
            if owner is None and time.time() - os.stat(root).st_mtime < grace:
                continue
            stale = LabSession.adopt(root)
            stale.cleanup()
            done.append(root)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            done.append(f"({root}: {e})")
    return done


class LabSession:
    def __init__(self, name: str, base: str = "/tmp"):
        self.name = name
        # The runtime starts its monitor with `python -S` and PYTHONPATH=<our sys.path>. With an
        # editable install the package is found through a .pth hook that -S skips, so a kernel
        # whose cwd is notebooks/ could not start containers. Put the package's directory on
        # sys.path (at the end: nothing is shadowed).
        if PACKAGE_PARENT not in sys.path:
            sys.path.append(PACKAGE_PARENT)
        # A kernel that was killed or restarted never ran its clean-up: do it for it now.
        self.reaped = reap_stale_sessions(base)
        self.root = tempfile.mkdtemp(prefix=f"{PREFIX}{name}-", dir=base)
        os.chmod(self.root, 0o710)  # (as StateRoot.ensure makes any state root)
        fsutil.write_json(os.path.join(self.root, OWNER_FILE), _process_identity(os.getpid()))
        self._client = None
        self._children: list[subprocess.Popen] = []
        self._old_env = os.environ.get("MINIDOCKER_ROOT")
        os.environ["MINIDOCKER_ROOT"] = self.root  # a `minidocker` typed in a cell uses it too
        self.closed = False
        atexit.register(self._at_exit)

    @classmethod
    def adopt(cls, root: str) -> "LabSession":
        """A session object for an existing root (to clean up after a dead kernel)."""
        self = cls.__new__(cls)
        self.name, self.root, self.reaped = os.path.basename(root), root, []
        self._client, self._children, self._old_env, self.closed = None, [], None, False
        return self

    def __repr__(self) -> str:
        return f"LabSession({self.root!r})"

    # ------------------------------------------------------------------ the pieces
    @property
    def client(self):
        if self._client is None:
            import minidocker
            self._client = minidocker.from_env(self.root)
        return self._client

    def path(self, *parts: str) -> str:
        """A path in this session's scratch area (<root>/lab/...)."""
        return os.path.join(self.root, "lab", *parts)

    def mkdir(self, *parts: str) -> str:
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def child_env(self, extra: dict | None = None) -> dict:
        env = dict(os.environ, MINIDOCKER_ROOT=self.root, PYTHONPATH=PACKAGE_PARENT)
        env.update(extra or {})
        return env

    def run_python(self, code: str, *args: str, timeout: float = 60, check: bool = True,
                   input: str | None = None) -> subprocess.CompletedProcess:
        """Run `python -c code args...` in a new process; return it (text stdout/stderr).
        With check=True a non-zero exit raises, showing the child's stderr."""
        # -u: unbuffered, so what a forked child prints before os._exit() is not lost in a
        # copy of the parent's buffer, whatever PYTHONUNBUFFERED says
        p = subprocess.run([sys.executable, "-u", "-c", code, *map(str, args)], capture_output=True,
                           text=True, timeout=timeout, env=self.child_env(), input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"the child process exited {p.returncode}:\n{p.stderr}")
        return p

    def start_python(self, code: str, *args: str) -> subprocess.Popen:
        """Start `python -c code args...` with pipes on stdin/stdout (line-buffered text);
        it is killed by cleanup() if still running."""
        p = subprocess.Popen([sys.executable, "-u", "-c", code, *map(str, args)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=self.child_env(), bufsize=1)
        self._children.append(p)
        return p

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """The `minidocker` command on this session's root; returns its stdout."""
        p = subprocess.run([sys.executable, "-m", "minidocker", "--root", self.root, *args],
                           capture_output=True, text=True, timeout=timeout, env=self.child_env(),
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise RuntimeError(f"minidocker {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p.stdout

    def fresh(self, name: str) -> str:
        """`name`, free for a new container: a container an earlier run of the same cell left
        under that name is removed first (`minidocker rm -f name`), so a cell that names its
        container can be run again (Docker would say "Conflict ... already in use")."""
        self.cli("rm", "-f", name, check=False)
        return name

    def own_net_names(self, prefix: str) -> str:
        """Network objects a notebook makes by hand, named `prefix`..., belong to this session:
        named network namespaces (/run/netns/<prefix>*), host links (bridges, veths) and nftables
        tables (`ip <prefix>*`). leftovers() lists them and cleanup() removes them, also after a
        crash (the prefix is kept in the state root). Pick a prefix no other notebook uses
        (e.g. "nb06-"). Returns the prefix."""
        prefixes = self.net_prefixes()
        if prefix not in prefixes:
            self._net = prefixes + [prefix]
            fsutil.write_json(os.path.join(self.root, NET_FILE), self._net)
        return prefix

    def net_prefixes(self) -> list[str]:
        """The prefixes given to own_net_names (kept in memory, and in the state root for adopt())."""
        mine = list(getattr(self, "_net", []))
        try:
            mine += [p for p in fsutil.read_json(os.path.join(self.root, NET_FILE)) if p not in mine]
        except (OSError, ValueError, TypeError):
            pass
        return mine

    def hand_made_net(self) -> dict[str, list]:
        """{"netns": [...], "links": [...], "tables": [...], "rules": [handle, ...]}: what of
        own_net_names' objects exists ("rules": accept rules commented <prefix>... that a notebook
        put into another firewall's `ip filter FORWARD` chain, as minidocker does beside dockerd)."""
        prefixes = tuple(self.net_prefixes())
        found: dict[str, list] = {"netns": [], "links": [], "tables": [], "rules": []}
        if not prefixes:
            return found
        if os.path.isdir(NETNS_DIR):
            found["netns"] = sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefixes))
        found["links"] = sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefixes))
        try:
            from ..network import nft
            found["tables"] = sorted(t["table"]["name"] for t in nft.list_json("tables")
                                     if "table" in t and t["table"]["family"] == "ip"
                                     and t["table"]["name"].startswith(prefixes))
            found["rules"] = sorted(o["rule"]["handle"] for o in nft.list_json("chain ip filter FORWARD")
                                    if "rule" in o and str(o["rule"].get("comment", "")).startswith(prefixes))
        except (ImportError, OSError, MinidockerError):
            pass
        return found

    def _remove_hand_made_net(self) -> list[str]:
        found = self.hand_made_net()
        done = []
        if found["links"]:  # netlink in a child: pyroute2 misbehaves in the kernel's asyncio loop
            code = ("import sys\nfrom minidocker.network import bridge\n"
                    "for name in sys.argv[1:]:\n    bridge.delete_link(name)\n")
            self.run_python(code, *found["links"], check=False)
            done += [f"link {n}" for n in found["links"]]
        from ..network import nft
        commands = [(f"delete rule ip filter FORWARD handle {h}", f"forward rule {h}") for h in found["rules"]]
        commands += [(f"delete table ip {t}", f"firewall table {t}") for t in found["tables"]]
        for command, what in commands:
            try:
                nft.run(command)
                done.append(what)
            except MinidockerError as e:
                done.append(f"({what}: {e})")
        from ..core.linux import syscalls as sc
        for n in found["netns"]:
            path = os.path.join(NETNS_DIR, n)
            try:
                sc.umount2(path, sc.MNT_DETACH)
            except OSError:
                pass  # not mounted (a half-made one): the file goes all the same
            try:
                os.unlink(path)
                done.append(f"network namespace {n}")
            except OSError as e:
                done.append(f"(network namespace {n}: {e})")
        return done

    def mounts(self) -> list[str]:
        """The mountinfo lines of every mount inside this session's root."""
        root = os.path.realpath(self.root)
        return [line for line in procfs.read_mountinfo().splitlines()
                if (t := procfs.parse_mountinfo(line)[0]["target"]) == root or t.startswith(root + "/")]

    # ------------------------------------------------------------------ clean-up
    def cleanup(self) -> list[str]:
        """Remove everything this session made; safe to call twice. Returns what was done."""
        done: list[str] = []
        for p in self._children:
            if p.poll() is None:
                p.kill()
                done.append(f"killed child process {p.pid}")
            p.wait(timeout=10)
            for f in (p.stdin, p.stdout, p.stderr):
                if f:
                    f.close()
        self._children.clear()
        done += self._remove_hand_made_net()
        if not os.path.isdir(self.root):
            self._restore_env()
            return done
        from ..core.linux import syscalls as sc
        if os.path.isdir(os.path.join(self.root, "containers")):
            # Through the `minidocker` command, in a child process: the network clean-up uses
            # netlink (pyroute2), which misbehaves inside the kernel's running asyncio loop.
            ids = self.cli("ps", "-aq", "--no-trunc", check=False).split()
            if ids:
                self.cli("rm", "-f", *ids, check=False)
                done += [f"container {i[:12]}" for i in ids]
            deadline = time.monotonic() + 10
            while monitor_pids(self.root) and time.monotonic() < deadline:
                time.sleep(0.05)
        for target in mounts_under(self.root):  # e.g. an overlay mounted by hand in a notebook
            try:
                sc.umount2(target, sc.MNT_DETACH)
                done.append(f"mount {target}")
            except OSError as e:
                done.append(f"(mount {target}: {e})")
        if os.path.isdir(os.path.join(self.root, "containers")):
            p = subprocess.run([sys.executable, "-m", "minidocker", "--root", self.root, "system", "prune", "-f"],
                               capture_output=True, text=True, timeout=120, env=self.child_env(),
                               stdin=subprocess.DEVNULL)
            if p.returncode != 0:  # keep the root: without it the bridge could not be found again
                raise RuntimeError(f"`minidocker --root {self.root} system prune -f` failed, "
                                   f"run it again by hand: {p.stderr}")
            done.append("system prune (network bridge, firewall table, cgroups, stray layers)")
            net = [x for x in self.leftovers() if x.startswith(("bridge", "firewall"))]
            if net:
                raise RuntimeError(f"system prune left {net}; not deleting {self.root} (run "
                                   f"`minidocker --root {self.root} system prune -f` again)")
        left = mounts_under(self.root)
        if left:  # never rm -rf through a mount: it would delete the mounted files
            raise RuntimeError(f"still mounted, not deleting {self.root}: {left}")
        shutil.rmtree(self.root)
        done.append(f"directory {self.root}")
        self._restore_env()
        self.closed = True
        return done

    def _restore_env(self) -> None:
        if os.environ.get("MINIDOCKER_ROOT") == self.root:
            if self._old_env is None:
                os.environ.pop("MINIDOCKER_ROOT", None)
            else:
                os.environ["MINIDOCKER_ROOT"] = self._old_env

    def leftovers(self) -> list[str]:
        """What of this session is still on the host (empty after cleanup())."""
        out = []
        if os.path.exists(self.root):
            out.append(f"directory {self.root}")
        out += [f"mount {m}" for m in mounts_under(self.root)]
        out += [f"monitor process {p}" for p in monitor_pids(self.root)]
        out += [f"child process {p.pid}" for p in self._children if p.poll() is None]
        out += [f"cgroup {d}" for d in self.cgroup_dirs()]
        hand = self.hand_made_net()
        out += [f"network namespace {n}" for n in hand["netns"]]
        out += [f"link {n}" for n in hand["links"]]
        out += [f"firewall table {t}" for t in hand["tables"]]
        out += [f"forward rule {h} (ip filter FORWARD)" for h in hand["rules"]]
        try:
            from ..network.store import default_bridge_name, root_tag
            from ..paths import StateRoot
            bridge = default_bridge_name(root_tag(StateRoot(self.root)))
            if os.path.exists(f"/sys/class/net/{bridge}"):
                out.append(f"bridge {bridge}")
            from ..network import nat, nft
            table = nat.table_name(root_tag(StateRoot(self.root)))
            if nft.table_exists("ip", table):
                out.append(f"firewall table {table}")
        except (ImportError, OSError):
            pass
        return out

    def cgroup_dirs(self) -> list[str]:
        """This root's cgroup parent (`minidocker-<tag>`) in every cgroup tree where it exists."""
        from ..engine.oci import cgroup_parent
        from ..paths import StateRoot
        parent = cgroup_parent(StateRoot(self.root))
        return sorted({os.path.join(m["target"], parent) for m in procfs.mountinfo()
                       if m["fstype"] in ("cgroup", "cgroup2") and os.path.isdir(os.path.join(m["target"], parent))})

    def assert_clean(self) -> None:
        left = self.leftovers()
        assert not left, f"left behind: {left}"

    def _at_exit(self) -> None:
        if not self.closed:
            try:
                self.cleanup()
            except Exception:  # noqa: BLE001 -- nothing to report to at exit
                pass
