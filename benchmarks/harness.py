"""What every section shares: a private minidocker state root, ONE private dockerd for the
whole run (started when a section first needs it), the runc bundle, timing, /proc readers,
the report (sections print as they finish) and the clean-up.

Everything minidocker does here goes through its command line, the console script a learner
types (`.venv/bin/minidocker`), on the state root MINIDOCKER_ROOT=<work>/root."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

from . import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CommandFailed(RuntimeError):
    pass


def _check(p: subprocess.CompletedProcess, argv: list[str]) -> subprocess.CompletedProcess:
    if p.returncode != 0:
        err = p.stderr if isinstance(p.stderr, str) else (p.stderr or b"").decode(errors="replace")
        tail = " | ".join(err.strip().splitlines()[-3:])  # a Python traceback's last lines say what broke
        raise CommandFailed(f"{' '.join(argv)} exited {p.returncode}: {tail}")
    return p


# No command may hang the run: a `run -d` that waited for its container (sleep 600) once did,
# while the code under test was being edited. A command that takes longer fails its section.
TIMEOUT = 180


def run(argv: list[str], *, env: dict | None = None, cwd: str | None = None, check: bool = True,
        timeout: float = TIMEOUT, capture: bool = True) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, timeout=timeout, text=True,
                           stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        if not check:
            return subprocess.CompletedProcess(argv, -1, "", f"timed out after {timeout} s")
        raise CommandFailed(f"{' '.join(argv)} did not finish in {timeout} s") from None
    return _check(p, argv) if check else p


def timed(argv: list[str], *, env: dict | None = None, cwd: str | None = None,
          timeout: float = TIMEOUT) -> float:
    """Wall time of one run of `argv` (output discarded; a failure raises with its stderr)."""
    t = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CommandFailed(f"{' '.join(argv)} did not finish in {timeout} s") from None
    elapsed = time.perf_counter() - t
    _check(p, argv)
    return elapsed


def interleaved(commands: dict[str, dict], n: int, warm: int = 2) -> dict[str, list[float]]:
    """Time each command n times, in rounds (a, b, c, a, b, c, ...), after `warm` untimed
    rounds: on a shared 2-core machine every tool sees the same background load."""
    out: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(warm + n):
        for name, kw in commands.items():
            t = timed(**kw)
            if i >= warm:
                out[name].append(t)
    return out


# ---------------------------------------------------------------- /proc
def read(path: str) -> str:
    with open(path) as f:
        return f.read()


def pss_kib(pid: int) -> int:
    return stats.pss_kib(read(f"/proc/{pid}/smaps_rollup"))


def ppid(pid: int) -> int:
    return int(stats.status_field(read(f"/proc/{pid}/status"), "PPid"))


def start_time(pid: int) -> int | None:
    try:
        return stats.stat_start_time(read(f"/proc/{pid}/stat"))
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def sharing_exe(pid: int) -> tuple[str, list[int]]:
    """(the executable of `pid`, the other processes running it): PSS splits the pages of the
    executable and its libraries between them, so it depends on what else runs."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "?", []
    others = []
    for p in all_pids():
        if p != pid:
            try:
                if os.readlink(f"/proc/{p}/exe") == exe:
                    others.append(p)
            except OSError:
                pass
    return exe, others


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def children(pid: int) -> list[int]:
    """Direct children (from /proc/<pid>/task/*/children)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                out += [int(x) for x in read(f"/proc/{pid}/task/{tid}/children").split()]
            except OSError:
                pass
    except OSError:
        pass
    return out


def descendants(pid: int) -> set[int]:
    seen, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            if c not in seen:
                seen.add(c)
                todo.append(c)
    return seen


def identities(pids) -> dict[int, int]:
    """{pid: start time} of the live ones: a later check is not fooled by a recycled PID."""
    return {p: s for p in pids if p and (s := start_time(p)) is not None}


def still_there(ids: dict[int, int]) -> tuple[list[int], list[int]]:
    """(live processes, zombies) among `ids`: a zombie has exited and only waits for its parent
    (for a daemonized monitor: PID 1) to collect its exit status."""
    live, zombies = [], []
    for p, s in ids.items():
        try:
            stat = read(f"/proc/{p}/stat")
        except OSError:
            continue
        if stats.stat_start_time(stat) != s:
            continue
        (zombies if stats.stat_state(stat) == "Z" else live).append(p)
    return sorted(live), sorted(zombies)


def mounts_under(root: str) -> list[str]:
    return stats.mounts_under(read("/proc/self/mountinfo"), os.path.realpath(root))


def cgroups_named(ids: list[str]) -> list[str]:
    """Directories in any cgroup hierarchy whose name contains one of the container ids."""
    wanted = set(ids)
    found = []
    for top in stats.cgroup_mounts(read("/proc/self/mountinfo")):
        for dirpath, dirnames, _ in os.walk(top):
            for d in dirnames:
                if d in wanted or any(i in d for i in wanted):
                    found.append(os.path.join(dirpath, d))
    return sorted(found)


def veths_on(masters: set[str]) -> list[str]:
    out = run(["ip", "-o", "link", "show", "type", "veth"]).stdout
    return stats.veths_on(out, masters)


# ---------------------------------------------------------------- the report
class Report:
    """Sections print as they finish (flushed); rows go to the summary table at the end."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.rows: list[stats.Row] = []
        self.errors: list[str] = []
        self.section = ""
        self.raw: dict[str, dict] = {}

    def start(self, name: str, title: str) -> None:
        self.section = name
        self.say(f"\n== {name}: {title}")

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def row(self, row: stats.Row) -> stats.Row:
        row.section = row.section or self.section
        self.rows.append(row)
        cells = [f"{k} {v}" for k, v in (("minidocker", row.minidocker), ("docker", row.docker),
                                          ("runc", row.runc), ("ratio", row.ratio)) if v and v != "-"]
        goal = f"  [{row.goal}: {row.verdict}]" if row.goal else ""
        self.say(f"   -> {row.figure.strip()}: {'; '.join(cells)}{goal}")
        return row

    def keep(self, key: str, value) -> None:
        """Raw numbers for the JSON record (benchmarks/results/)."""
        self.raw.setdefault(self.section, {})[key] = value

    def error(self, section: str, exc: BaseException) -> None:
        text = f"{section}: {type(exc).__name__}: {exc}"
        self.errors.append(text)
        self.rows.append(stats.Row(f"{section}: not measured", ratio="ERROR", verdict="n/a", section=section))
        self.say(f"   !! {text}")
        where = traceback.extract_tb(exc.__traceback__)[-2:]
        self.say("   !! at " + "; ".join(f"{os.path.relpath(f.filename, REPO)}:{f.lineno} {f.name}" for f in where))


# ---------------------------------------------------------------- the bench: state roots, dockerd, runc
class Bench:
    def __init__(self, n: int, report: Report, work: str | None = None):
        self.n = n
        self.report = report
        self.work = work or tempfile.mkdtemp(prefix="mdbench-")
        self.root = os.path.join(self.work, "root")
        env = dict(os.environ, MINIDOCKER_ROOT=self.root,
                   # the embedded DNS answers only our own names: nothing leaves the machine
                   MINIDOCKER_DNS_UPSTREAM="")
        # A learner's machine caches compiled modules; some sandboxes turn that off. Measure
        # the normal case (the first warm-up run writes the cache).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env = env
        bindir = os.path.dirname(sys.executable)
        script = os.path.join(bindir, "minidocker")
        self.md_script = [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "minidocker"]
        self.md_module = [sys.executable, "-m", "minidocker"]
        self._docker = None
        self._busybox_tar = None
        self._bundle = None
        self._networks: list[str] = []

    # -- minidocker
    def md(self, *args: str, check: bool = True, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        return run(self.md_script + list(args), env=self.env, check=check, timeout=timeout)

    def md_argv(self, *args: str) -> list[str]:
        return self.md_script + list(args)

    def store(self):
        from minidocker.images.store import ImageStore
        from minidocker.paths import StateRoot
        return ImageStore(StateRoot(self.root))

    def busybox_tar(self) -> str:
        """Our offline busybox image (made in the state root) and its root filesystem as a tar."""
        if self._busybox_tar is None:
            from minidocker.images import busybox
            store = self.store()
            image = busybox.ensure_busybox(store)
            tar = os.path.join(self.work, "busybox.tar")
            busybox.export_rootfs(store, image, tar)
            self._busybox_tar = tar
        return self._busybox_tar

    def md_network(self, name: str) -> str:
        self.md("network", "create", name)
        self._networks.append(name)
        return name

    def md_remove_network(self, name: str) -> None:
        self.md("network", "rm", name, check=False)
        if name in self._networks:
            self._networks.remove(name)

    def monitor_pid(self, cid: str) -> int | None:
        """The container's monitor: the PID it wrote to containers/<id>/shim.lock, checked
        against its command line; else found by scanning /proc for
        `python -S -m minidocker.engine.monitor ROOT CID FD`."""
        try:
            pid = int(read(os.path.join(self.root, "containers", cid, "shim.lock")).strip() or 0)
            if pid and cid in cmdline(pid):
                return pid
        except (OSError, ValueError):
            pass
        for pid in all_pids():
            argv = cmdline(pid)
            if "minidocker.engine.monitor" in argv and cid in argv:
                return pid
        return None

    def root_processes(self) -> set[int]:
        """Every process working for this state root: its command line names the root (the
        monitors), or its environment has MINIDOCKER_ROOT=<root> (what our `minidocker`
        commands start: the netlink helper, a DNS server per network if one came, an exec)."""
        mark = f"MINIDOCKER_ROOT={self.root}".encode()
        out = set()
        for pid in all_pids():
            if pid == os.getpid():
                continue
            if any(a == self.root or a.startswith(self.root + "/") for a in cmdline(pid)):
                out.add(pid)
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    if mark in f.read().split(b"\0"):
                        out.add(pid)
            except OSError:
                pass
        return out

    # -- docker
    @property
    def docker(self):
        """ONE private dockerd for the whole run, with busybox:latest = our busybox layer."""
        if self._docker is None:
            from minidocker.images import busybox
            from minidocker.lab.realdocker import RealDocker
            tar = self.busybox_tar()
            t = time.perf_counter()
            self._docker = RealDocker.start()
            self._docker.load_rootfs(tar, "busybox:latest", busybox.DOCKER_IMPORT_CHANGES)
            self.report.say(f"   (private dockerd started in {stats.fmt_time(time.perf_counter() - t)}: "
                            f"{self.docker_version()})")
        return self._docker

    def docker_version(self) -> str:
        p = run([self._docker.client, "-H", f"unix://{self._docker.socket}", "version", "--format",
                 "{{.Server.Version}}"], check=False)
        return f"dockerd {p.stdout.strip() or '?'}"

    def dk_argv(self, *args: str) -> list[str]:
        d = self.docker
        return [d.client, "-H", f"unix://{d.socket}", *args]

    def dk(self, *args: str, check: bool = True, timeout: float = TIMEOUT, env: dict | None = None
           ) -> subprocess.CompletedProcess:
        return run(self.dk_argv(*args), check=check, timeout=timeout, env=env)

    # -- runc
    def runc_bundle(self) -> str | None:
        """An OCI bundle of the same busybox root filesystem, `runc spec`'s default config
        with `true` as the process; None without runc."""
        if self._bundle is None and shutil.which("runc"):
            from minidocker.storage import archive
            bundle = os.path.join(self.work, "bundle")
            rootfs = os.path.join(bundle, "rootfs")
            os.makedirs(rootfs)
            archive.apply_layer(self.busybox_tar(), rootfs, overlay=False)
            run(["runc", "spec"], cwd=bundle)
            with open(os.path.join(bundle, "config.json")) as f:
                cfg = json.load(f)
            cfg["process"]["terminal"] = False
            cfg["process"]["args"] = ["true"]
            with open(os.path.join(bundle, "config.json"), "w") as f:
                json.dump(cfg, f)
            self._bundle = bundle
        return self._bundle

    def runc_argv(self) -> list[str]:
        return ["runc", "--root", os.path.join(self.work, "runc-state"), "run", "bench"]

    # -- clean-up
    def remove_all_containers(self) -> None:
        ids = self.md("ps", "-aq", "--no-trunc", check=False).stdout.split()
        if ids:
            self.md("rm", "-f", *ids, check=False)

    def close(self) -> list[str]:
        """Remove everything: minidocker's containers, networks, images, the dockerd; then
        say what is still left (empty when all went)."""
        problems = []
        if self._docker is not None:
            try:
                self._docker.stop()
            except Exception as e:  # noqa: BLE001 -- clean up the rest all the same
                problems.append(f"dockerd stop: {e}")
            self._docker = None
        if os.path.isdir(os.path.join(self.root, "containers")) or os.path.isdir(self.root):
            try:
                self.remove_all_containers()
                for name in list(self._networks):
                    self.md_remove_network(name)
                p = self.md("system", "prune", "-f", "-a", check=False, timeout=300)
                if p.returncode != 0:
                    problems.append(f"minidocker system prune: {p.stderr.strip()}")
            except Exception as e:  # noqa: BLE001
                problems.append(f"minidocker clean-up: {e}")
        left = mounts_under(self.work)
        if left:
            from minidocker.core.linux import syscalls as sc
            for target in sorted(left, key=len, reverse=True):
                try:
                    sc.umount2(target, sc.MNT_DETACH)
                except OSError:
                    pass
            problems.append(f"mounts left under {self.work} (unmounted now): {left}")
        try:
            from minidocker.network.store import default_bridge_name, root_tag
            from minidocker.paths import StateRoot
            bridge = default_bridge_name(root_tag(StateRoot(self.root)))
            if os.path.exists(f"/sys/class/net/{bridge}"):
                problems.append(f"bridge {bridge} left after system prune")
        except Exception:  # noqa: BLE001 -- a check only
            pass
        if not mounts_under(self.work):
            shutil.rmtree(self.work, ignore_errors=True)
        return problems
