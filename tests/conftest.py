"""Shared fixtures.

Tests that need the kernel (namespaces, mounts) run as root against a private state root
(a temporary directory), never the learner's /var/lib/minidocker. With MINIDOCKER_STRICT=1
(set by `make test`, hence CI) a missing prerequisite fails the run instead of skipping,
so CI cannot pass by testing nothing.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

STRICT = os.environ.get("MINIDOCKER_STRICT") == "1"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def require(condition: bool, why: str) -> None:
    if condition:
        return
    if STRICT:
        pytest.fail(f"prerequisite missing under MINIDOCKER_STRICT=1: {why}")
    pytest.skip(why)


# Every host program a test needs, with the Debian package that provides it. Tests ask for
# them through require_tool(); tests/test_prerequisites.py checks that each package is in
# scripts/setup.sh (the one list of host prerequisites) and that the mapping is true.
TOOLS = {
    "dockerd": "docker.io",            # the reference Docker daemon (lab/realdocker.py)
    "docker": "docker.io",             # its client, /usr/bin/docker (20.10, matching dockerd)
    "docker-registry": "docker-registry",  # a real v2 registry on loopback
    "docker-compose": "docker-compose",  # Compose 1.29, against minidocker serve and dockerd (tests/test_server.py)
    "runc": "runc",                    # the reference OCI runtime, runs our bundles
    "apparmor_parser": "apparmor",     # loads minidocker-default where the kernel has AppArmor
    "busybox": "busybox-static",       # the offline base image
    "nft": "nftables",                 # NAT rules (minidocker uses libnftables, tests look with nft)
    "ip": "iproute2",
    "iptables-save": "iptables",       # to prove a private dockerd leaves the host's rules alone
    "strace": "strace",                # to kill a command at a chosen system call
    "capsh": "libcap2-bin",            # notebook 00; the grader image copies it (labs/grader/)
    "setpriv": "util-linux",           # notebook 00; the grader image copies it
    "newuidmap": "uidmap",             # rootless mode maps /etc/subuid ranges with it (core/rootless.py)
    "rootlesskit": "rootlesskit",      # Docker's rootless mode, the reference for ours (tests/test_rootless.py)
    "slirp4netns": "slirp4netns",      # the network rootless dockerd starts with
    "chromium": "chromium",            # the lab in a real browser, headless (tests/test_lab_browser.py)
    "fc-list": "fontconfig",           # which fonts cover Chinese (tests/test_lab_plots.py)
}


def tool_path(name: str) -> str | None:
    import shutil
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def require_tool(name: str) -> str:
    """The path of host program `name`, or skip (fail under MINIDOCKER_STRICT=1) naming its package."""
    assert name in TOOLS, f"add {name!r} and its Debian package to TOOLS in tests/conftest.py"
    path = tool_path(name)
    require(path is not None, f"{name} not installed (apt-get install {TOOLS[name]}; scripts/setup.sh does)")
    return path


@pytest.fixture(autouse=True)
def _root_guard(request):
    if request.node.get_closest_marker("root"):
        require(os.geteuid() == 0, "needs root (namespaces, mounts)")


class MD:
    """Run the `minidocker` CLI against the test's state root."""

    def __init__(self, root: str):
        self.root = root
        # MINIDOCKER_DNS_UPSTREAM="": the embedded DNS answers our own names and forwards
        # nothing, so no test ever sends a query beyond this machine
        self.env = dict(os.environ, MINIDOCKER_ROOT=root, PYTHONPATH=REPO, MINIDOCKER_DNS_UPSTREAM="")

    def __call__(self, *args: str, input: str | None = None, timeout: float = 60,
                 check: bool = False) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "minidocker", *args], env=self.env,
                           input=input, capture_output=True, text=True, timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"minidocker {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    def ok(self, *args: str, **kw) -> str:
        return self(*args, check=True, **kw).stdout


def shim_processes(root: str) -> list[int]:
    from minidocker.lab.session import monitor_pids
    return monitor_pids(root)


def mounts_under(root: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(root)]


os.environ["MINIDOCKER_DNS_UPSTREAM"] = ""  # also for containers started in-process (API tests)
os.environ["MINIDOCKER_OFFLINE"] = "1"  # a missing image is an error, never a pull from the internet


@pytest.fixture(scope="session")
def state_root(tmp_path_factory):
    """One state root for the session (the busybox image is built once); at the end,
    remove every container and prove the host holds nothing of ours."""
    root = str(tmp_path_factory.mktemp("mdroot"))
    yield root
    if os.geteuid() != 0:
        return
    md = MD(root)
    leftover = md("ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        md("rm", "-f", *leftover)
    md("system", "prune", "-f")
    deadline = time.monotonic() + 10
    while (shim_processes(root) or mounts_under(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mounts_under(root) == [], "mounts left behind"
    assert shim_processes(root) == [], "monitor processes left behind"
    from minidocker.network import nft
    from minidocker.network.store import default_bridge_name, root_tag
    from minidocker.paths import StateRoot
    tag = root_tag(StateRoot(root))
    assert default_bridge_name(tag) not in os.listdir("/sys/class/net"), "bridge left behind"
    assert f"minidocker_{tag}" not in nft.run("list tables"), "firewall table left behind"
    from minidocker.engine.oci import cgroup_parent
    parent = cgroup_parent(StateRoot(root))
    left = [t for t in os.listdir("/sys/fs/cgroup") if os.path.isdir(os.path.join("/sys/fs/cgroup", t, parent))]
    assert not left and not os.path.isdir(os.path.join("/sys/fs/cgroup", parent)), f"cgroup parent left in {left}"


@pytest.fixture
def md(state_root) -> MD:
    return MD(state_root)


@pytest.fixture
def runtime(state_root):
    from minidocker.engine.runtime import Runtime
    return Runtime(state_root)


@pytest.fixture
def both(md, docker):
    """The two runtimes, and the names each test made (removed afterwards in both)."""
    made = []
    yield md, docker.docker, made
    for name in made:
        md("rm", "-f", name)
        docker.docker("rm", "-f", name, check=False)


@pytest.fixture(scope="module")
def docker(state_root):
    """A private real dockerd (lab/realdocker.py) with our busybox imported, per test module."""
    from minidocker.images.store import ImageStore
    from minidocker.lab import realdocker
    from minidocker.paths import StateRoot
    require(os.geteuid() == 0, "needs root")
    require_tool("dockerd")
    require_tool("docker")
    d = realdocker.RealDocker.start()
    try:
        d.load_busybox(ImageStore(StateRoot(state_root)))
        yield d
    finally:
        d.stop()
