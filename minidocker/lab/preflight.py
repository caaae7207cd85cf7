"""Is this machine ready for the course? The checks a tutor would make, with the fix for each.

Two halves, so that the logic is tested without root and without a particular host:

    gather(state_dir)  -> HostFacts   reads the host: /proc, /sys, sysctls, and tries one
                                      real overlay mount (the only reliable test)
    evaluate(facts)    -> [Check]     pure: decides ok / warn / fail and writes the fix

    from minidocker.lab import preflight
    checks = preflight.evaluate(preflight.gather("/var/lib/minidocker"))
    print(preflight.report(checks))

"fail" means minidocker cannot work here; "warn" means something the course itself does not
need but that you may want elsewhere (rootless containers), with the command that fixes it.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import re
import shutil
import sys
import tempfile

from ..core.linux.procfs import is_mountpoint, parse_mountinfo

OK, WARN, FAIL = "ok", "warn", "fail"

MIN_KERNEL = (5, 3)      # pidfd_open(2): signals reach the right process even if PIDs are reused
MIN_PYTHON = (3, 11)
# Filesystems an overlay upper/work dir cannot live on (overlayfs needs d_type, xattrs
# and rename whiteouts; network and FUSE file systems do not offer them all).
BAD_UPPER_FS = {"overlay", "aufs", "nfs", "nfs4", "cifs", "smb3", "9p", "vboxsf", "virtiofs",
                "ecryptfs", "fuse", "fuseblk", "sshfs"}
USERNS_SYSCTLS = ["kernel.apparmor_restrict_unprivileged_userns",
                  "kernel.unprivileged_userns_clone", "user.max_user_namespaces"]
BUSYBOX_CANDIDATES = ["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox", "/usr/sbin/busybox"]
V1_NEEDED = ["cpu", "memory", "pids", "freezer"]
V2_NEEDED = ["cpu", "memory", "pids"]


@dataclasses.dataclass
class Check:
    name: str
    status: str      # ok, warn or fail
    detail: str      # what was found
    fix: str = ""    # what to do about it (empty when ok)


@dataclasses.dataclass
class HostFacts:
    """Everything evaluate() looks at. Build one by hand to ask "what if this host...?"."""
    euid: int
    kernel_release: str
    python_version: tuple[int, int]
    mountinfo: str                         # text of /proc/self/mountinfo
    filesystems: str                       # text of /proc/filesystems
    state_dir: str
    cgroup2_controllers: str | None = None  # text of <cgroup2 mount>/cgroup.controllers
    overlay_probe: str | None = None       # None: not tried; "": mounted fine; else the error
    busybox_path: str | None = None
    busybox_static: bool = False
    sysctls: dict = dataclasses.field(default_factory=dict)  # name -> value (None: absent)


# ---------------------------------------------------------------------- pure helpers
def parse_kernel_release(release: str) -> tuple[int, int, int]:
    """'6.1.0-18-amd64' -> (6, 1, 0); '5.15.0-91-generic' -> (5, 15, 0)."""
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        raise ValueError(f"not a kernel release: {release!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def cgroup_layout(mountinfo: str) -> tuple[str, list[str], str | None]:
    """-> (layout, v1 controllers mounted, where cgroup2 is mounted).

    layout: "v2" (cgroup2 at /sys/fs/cgroup), "v1" (controllers only), "hybrid" (v1
    controllers plus a cgroup2 tree elsewhere, usually /sys/fs/cgroup/unified) or "none"."""
    v1: set[str] = set()
    v2_at = None
    for m in parse_mountinfo(mountinfo):
        if m["fstype"] == "cgroup2":
            if v2_at is None or m["target"] == "/sys/fs/cgroup":
                v2_at = m["target"]
        elif m["fstype"] == "cgroup":
            for opt in m["super_options"].split(","):
                if opt in ("rw", "ro") or "=" in opt:
                    continue  # name=systemd is a named hierarchy, not a controller
                v1.add(opt)
    if v2_at == "/sys/fs/cgroup" and not v1:
        layout = "v2"
    elif v1 and v2_at:
        layout = "hybrid"
    elif v1:
        layout = "v1"
    elif v2_at:
        layout = "v2"
    else:
        layout = "none"
    return layout, sorted(v1), v2_at


def fs_type_of(path: str, mountinfo: str) -> tuple[str, str]:
    """The file system `path` lives on: (fstype, mount point), by the longest mount
    point that is a prefix of the path (the last one mounted wins on ties)."""
    path = os.path.normpath(path)
    best = ("", "")
    for m in parse_mountinfo(mountinfo):
        t = m["target"]
        inside = path == t or path.startswith(t.rstrip("/") + "/")
        if inside and len(t) >= len(best[1]):
            best = (m["fstype"], t)
    return best


def overlay_in_kernel(filesystems: str) -> bool:
    """Is overlay listed in /proc/filesystems? (If not, the module may still load on demand.)"""
    return any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())


# ---------------------------------------------------------------------- the checks
def check_root(f: HostFacts) -> Check:
    if f.euid == 0:
        return Check("root", OK, "running as root (euid 0)")
    return Check("root", FAIL, f"running as uid {f.euid}, not root",
                 "containers need root (namespaces, mounts, cgroups): `sudo -i`, then start "
                 "the lab again with `make lab` (it runs JupyterLab with --allow-root)")


def check_python(f: HostFacts) -> Check:
    v = ".".join(map(str, f.python_version))
    if tuple(f.python_version) >= MIN_PYTHON:
        return Check("python", OK, f"Python {v}")
    return Check("python", FAIL, f"Python {v} is older than {'.'.join(map(str, MIN_PYTHON))}",
                 "use Debian 12 / Ubuntu 24.04's python3, or `mamba env create -f environment.yml`")


def check_kernel(f: HostFacts) -> Check:
    try:
        ver = parse_kernel_release(f.kernel_release)
    except ValueError:
        return Check("kernel", WARN, f"cannot read the kernel version {f.kernel_release!r}",
                     "check `uname -r`: the course needs Linux >= 5.3")
    if ver[:2] >= MIN_KERNEL:
        return Check("kernel", OK, f"Linux {f.kernel_release}")
    return Check("kernel", FAIL, f"Linux {f.kernel_release} is older than "
                 f"{'.'.join(map(str, MIN_KERNEL))} (no pidfd_open)",
                 "use a newer distribution (Debian 12, Ubuntu 22.04 or 24.04) or the course's Vagrant VM")


def check_cgroups(f: HostFacts) -> Check:
    layout, v1, v2_at = cgroup_layout(f.mountinfo)
    if layout == "none":
        return Check("cgroups", FAIL, "no cgroup file system is mounted",
                     "mount cgroup v2: `mount -t cgroup2 none /sys/fs/cgroup`")
    if layout == "v2":
        have = (f.cgroup2_controllers or "").split()
        missing = [c for c in V2_NEEDED if c not in have]
        detail = f"v2 (unified) at {v2_at}, controllers: {' '.join(have) or '(none)'}"
        if missing:
            return Check("cgroups", WARN, detail + f"; missing {', '.join(missing)}",
                         "the memory controller needs `cgroup_enable=memory` on the kernel command "
                         "line on some boards (Raspberry Pi): add it and reboot")
        return Check("cgroups", OK, detail)
    missing = [c for c in V1_NEEDED if c not in v1]
    detail = (f"{layout}: v1 controllers {', '.join(v1)}"
              + (f"; an empty v2 tree at {v2_at}" if layout == "hybrid" else ""))
    if missing:
        return Check("cgroups", WARN, detail + f"; missing {', '.join(missing)}",
                     f"mount the missing v1 controllers, e.g. `mkdir -p /sys/fs/cgroup/{missing[0]} && "
                     f"mount -t cgroup -o {missing[0]} cgroup /sys/fs/cgroup/{missing[0]}`")
    return Check("cgroups", OK, detail)


def check_overlay(f: HostFacts) -> Check:
    fstype, mnt = fs_type_of(f.state_dir, f.mountinfo)
    where = f"{f.state_dir} is on {fstype or '?'} (mounted at {mnt or '?'})"
    move = ("keep the state elsewhere: `export MINIDOCKER_ROOT=/var/lib/minidocker` (ext4, xfs, "
            "btrfs or tmpfs), never on a shared folder of a VM")
    if fstype in BAD_UPPER_FS or fstype.startswith("fuse."):
        return Check("overlay", FAIL, where + ", which cannot hold overlay upper layers", move)
    if f.overlay_probe:
        hint = move if "Invalid argument" in f.overlay_probe or "not supported" in f.overlay_probe else \
            "load the module with `modprobe overlay` and try again"
        return Check("overlay", FAIL, where + f"; a test mount failed: {f.overlay_probe}", hint)
    if f.overlay_probe is None:
        if not overlay_in_kernel(f.filesystems):
            return Check("overlay", WARN, where + "; overlay is not in /proc/filesystems",
                         "`modprobe overlay` (and add `overlay` to /etc/modules-load.d/ to keep it)")
        return Check("overlay", OK, where + "; overlay is in the kernel (not test-mounted)")
    return Check("overlay", OK, where + "; a test overlay mount worked")


def check_busybox(f: HostFacts) -> Check:
    if not f.busybox_path:
        return Check("busybox", FAIL, "no busybox found",
                     "`apt-get install busybox-static` (the offline busybox image is built from it)")
    if not f.busybox_static:
        return Check("busybox", FAIL, f"{f.busybox_path} is dynamically linked: inside a container "
                     "it would fail with 'no such file or directory' (its loader is missing)",
                     "`apt-get install busybox-static` (it replaces the dynamic busybox package)")
    return Check("busybox", OK, f"{f.busybox_path} is statically linked")


def check_userns(f: HostFacts) -> Check:
    s = f.sysctls
    note = (" minidocker runs as root and no notebook of this course needs them;"
            " rootless containers (podman, rootless Docker) do.")
    if s.get("kernel.apparmor_restrict_unprivileged_userns") == "1":
        return Check("user namespaces", WARN,
                     "AppArmor blocks unprivileged user namespaces "
                     "(kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10+)." + note,
                     "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; to keep it: "
                     "`echo kernel.apparmor_restrict_unprivileged_userns=0 > /etc/sysctl.d/60-userns.conf`")
    if s.get("kernel.unprivileged_userns_clone") == "0":
        return Check("user namespaces", WARN,
                     "unprivileged user namespaces are off (kernel.unprivileged_userns_clone=0)." + note,
                     "`sysctl -w kernel.unprivileged_userns_clone=1`")
    if s.get("user.max_user_namespaces") == "0":
        return Check("user namespaces", WARN, "user namespaces are disabled (user.max_user_namespaces=0)." + note,
                     "`sysctl -w user.max_user_namespaces=15000`")
    return Check("user namespaces", OK, "unprivileged user namespaces are allowed")


CHECKS = [check_root, check_python, check_kernel, check_cgroups, check_overlay, check_busybox,
          check_userns]


def evaluate(facts: HostFacts) -> list[Check]:
    return [check(facts) for check in CHECKS]


def blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


def report(checks: list[Check]) -> str:
    """One line per check, and under each problem the fix."""
    tag = {OK: "[ ok ]", WARN: "[WARN]", FAIL: "[FAIL]"}
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{tag[c.status]} {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"       {'':<{width}}  fix: {c.fix}")
    bad = blocking(checks)
    warns = [c for c in checks if c.status == WARN]
    if bad:
        lines.append(f"=> {len(bad)} problem(s) to fix before the course can run: "
                     + ", ".join(c.name for c in bad))
    else:
        lines.append("=> ready" + (f" ({len(warns)} warning(s))" if warns else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------- reading the host
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_sysctl(name: str, proc: str = "/proc/sys") -> str | None:
    v = _read(os.path.join(proc, *name.split(".")))
    return v.strip() if v is not None else None


def find_busybox() -> tuple[str | None, bool]:
    """(path, is static) of the first busybox found; a static one is preferred."""
    from ..images.busybox import is_static_elf
    found = []
    for p in [shutil.which("busybox")] + BUSYBOX_CANDIDATES:
        if p and os.path.isfile(p) and p not in found:
            found.append(p)
    for p in found:
        try:
            if is_static_elf(p):
                return os.path.realpath(p), True
        except OSError:
            pass
    return (found[0], False) if found else (None, False)


def existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        path = os.path.dirname(path)
    return path


def probe_overlay(state_dir: str) -> str:
    """Mount a one-file overlay in a scratch directory next to the state dir (the nearest
    existing directory, so nothing is created in a state root that does not exist yet),
    read through it, unmount, delete. Returns "" if it worked, else the error."""
    from ..core.linux import syscalls as sc
    base = existing_parent(state_dir)
    tmp = tempfile.mkdtemp(prefix=".minidocker-preflight-", dir=base)
    dirs = {n: os.path.join(tmp, n) for n in ("lower", "upper", "work", "merged")}
    mounted = False
    try:
        for d in dirs.values():
            os.mkdir(d)
        with open(os.path.join(dirs["lower"], "hello"), "w") as fh:
            fh.write("hi")
        sc.mount("overlay", dirs["merged"], "overlay", 0,
                 f"lowerdir={dirs['lower']},upperdir={dirs['upper']},workdir={dirs['work']}")
        mounted = True
        with open(os.path.join(dirs["merged"], "hello")) as fh:
            if fh.read() != "hi":
                return "the merged view did not show the lower file"
        return ""
    except OSError as e:
        return str(e)
    finally:
        if mounted:
            sc.umount2(dirs["merged"], sc.MNT_DETACH)
        if not mounted or not _is_mounted(dirs["merged"]):
            shutil.rmtree(tmp, ignore_errors=True)


def _is_mounted(path: str) -> bool:
    return is_mountpoint(path, parse_mountinfo(_read("/proc/self/mountinfo") or ""))


def gather(state_dir: str | None = None, probe: bool = True) -> HostFacts:
    """Read this host. With probe=True (and root) one overlay is test-mounted next to state_dir."""
    from ..paths import default_root
    state_dir = os.path.abspath(state_dir or default_root())
    mountinfo = _read("/proc/self/mountinfo") or ""
    _, _, v2_at = cgroup_layout(mountinfo)
    bb, static = find_busybox()
    euid = os.geteuid()
    return HostFacts(
        euid=euid, kernel_release=platform.release(),
        python_version=tuple(sys.version_info[:2]), mountinfo=mountinfo,
        filesystems=_read("/proc/filesystems") or "", state_dir=state_dir,
        cgroup2_controllers=_read(os.path.join(v2_at, "cgroup.controllers")) if v2_at else None,
        overlay_probe=probe_overlay(state_dir) if probe and euid == 0 else None,
        busybox_path=bb, busybox_static=static,
        sysctls={name: read_sysctl(name) for name in USERNS_SYSCTLS},
    )
