"""minidocker.lab.session: a notebook's private state root, child processes and clean-up."""
from __future__ import annotations

import os

import pytest

from minidocker.lab.session import LabSession, mounts_under


@pytest.fixture
def lab(tmp_path):
    before = os.environ.get("MINIDOCKER_ROOT")
    s = LabSession("t", base=str(tmp_path))
    yield s
    s.cleanup()
    assert os.environ.get("MINIDOCKER_ROOT") == before


def test_private_root_and_scratch_paths(lab, tmp_path):
    assert os.path.dirname(lab.root) == str(tmp_path)
    assert os.path.basename(lab.root).startswith("mdlab-t-")
    assert os.environ["MINIDOCKER_ROOT"] == lab.root
    d = lab.mkdir("a", "b")
    assert d == lab.path("a", "b") == os.path.join(lab.root, "lab", "a", "b") and os.path.isdir(d)


def test_run_python_in_a_child(lab):
    p = lab.run_python("import os, sys; print(sys.argv[1:], os.environ['MINIDOCKER_ROOT'])", "x", 2)
    assert p.stdout == f"['x', '2'] {lab.root}\n"
    p = lab.run_python("import minidocker.lab.session as s; print(s.__file__)")
    assert p.stdout.strip().endswith("minidocker/lab/session.py")  # the same package as ours
    with pytest.raises(RuntimeError, match="exited 3:\nboom"):
        lab.run_python("import sys; sys.stderr.write('boom'); sys.exit(3)")
    assert lab.run_python("import sys; sys.exit(3)", check=False).returncode == 3


def test_cleanup_kills_children_removes_the_root_and_is_idempotent(tmp_path):
    before = os.environ.get("MINIDOCKER_ROOT")
    s = LabSession("t", base=str(tmp_path))
    child = s.start_python("import sys; print('up', flush=True); sys.stdin.readline()")
    assert child.stdout.readline() == "up\n"
    done = s.cleanup()
    assert f"killed child process {child.pid}" in done and f"directory {s.root}" in done
    assert child.poll() is not None and not os.path.exists(s.root)
    assert s.leftovers() == [] and s.cleanup() == []
    assert os.environ.get("MINIDOCKER_ROOT") == before


@pytest.mark.root
def test_cleanup_removes_containers_mounts_and_network(tmp_path):
    from minidocker.core.linux import syscalls as sc
    s = LabSession("t", base=str(tmp_path))
    try:
        c = s.client.containers.run("busybox", "sleep 300", detach=True)
        assert c.status == "running"
        d = s.mkdir("m")
        sc.mount("tmpfs", d, "tmpfs", 0, "size=1m")       # as a notebook cell might leave it
        assert any("/lab/m " in line for line in s.mounts())
        assert any(x.startswith("mount ") for x in s.leftovers())
    finally:
        done = s.cleanup()
    assert any(x.startswith("container ") for x in done) and any(x.startswith("mount ") for x in done)
    s.assert_clean()
    assert mounts_under(str(tmp_path)) == []


@pytest.mark.root
def test_a_dead_kernels_session_is_cleaned_by_the_next_one(tmp_path):
    """A kernel killed mid-notebook (nbval -x, a restart) never runs its clean-up; the
    next session in the same place does it."""
    from minidocker import fsutil
    from minidocker.lab.session import OWNER_FILE
    before = os.environ.get("MINIDOCKER_ROOT")
    s = LabSession("dead", base=str(tmp_path))
    s.client.containers.run("busybox", "sleep 300", detach=True)   # on the default bridge
    assert any(x.startswith("bridge ") for x in s.leftovers())
    fsutil.write_json(os.path.join(s.root, OWNER_FILE), {"pid": 2**22 + 1, "start": 1})  # no such process
    s.closed = True  # (and its atexit hook never runs, as when the kernel is killed)
    alive = LabSession("alive", base=str(tmp_path))
    try:
        assert alive.reaped == [s.root]
        assert s.leftovers() == []                  # container, monitor, mounts, bridge, table, files
        third = LabSession("third", base=str(tmp_path))
        assert third.reaped == [] and os.path.isdir(alive.root)   # a live session is never reaped
        third.cleanup()
    finally:
        alive.cleanup()
        os.environ.pop("MINIDOCKER_ROOT", None)
        if before is not None:
            os.environ["MINIDOCKER_ROOT"] = before
    assert os.listdir(tmp_path) == []


@pytest.mark.root
def test_a_cgroup_parent_left_behind_is_reported(lab):
    """assert_clean() also looks for the session's cgroup parent (minidocker-<tag>) in every tree."""
    from minidocker.core.linux import procfs
    from minidocker.engine.oci import cgroup_parent
    from minidocker.paths import StateRoot
    tree = next(m["target"] for m in procfs.mountinfo() if m["fstype"] in ("cgroup", "cgroup2")
                and os.access(m["target"], os.W_OK) and not m["target"].endswith("/unified")
                and "rw" in m["options"].split(","))
    planted = os.path.join(tree, cgroup_parent(StateRoot(lab.root)))
    os.mkdir(planted)
    try:
        assert f"cgroup {planted}" in lab.leftovers()
        with pytest.raises(AssertionError, match="cgroup"):
            lab.assert_clean()
    finally:
        os.rmdir(planted)
    assert not any(x.startswith("cgroup") for x in lab.leftovers())


@pytest.mark.root
def test_fresh_frees_a_name_so_a_cell_can_run_again(lab):
    from minidocker.images import busybox
    busybox.ensure_busybox(lab.client.runtime.images)
    lab.cli("run", "-d", "--name", "again", "busybox", "sleep", "60")
    with pytest.raises(RuntimeError, match="already in use"):
        lab.cli("run", "-d", "--name", "again", "busybox", "sleep", "60")
    assert lab.fresh("again") == "again"
    lab.cli("run", "-d", "--name", lab.fresh("again"), "busybox", "sleep", "60")   # a second run of the cell
    assert lab.cli("ps", "-q", "--filter", "name=again").strip()
    assert lab.fresh("never-made") == "never-made"


@pytest.mark.root
def test_hand_made_network_objects_are_reported_and_removed(tmp_path):
    """own_net_names(prefix): a named netns, a host link and an nft table made by hand (notebook
    06 makes them) are leftovers until cleanup() removes them, also for a dead kernel's session."""
    import secrets

    from minidocker.lab.session import NETNS_DIR
    from minidocker.network import nft
    prefix = f"t{secrets.token_hex(2)}-"
    s = LabSession("t", base=str(tmp_path))
    assert s.own_net_names(prefix) == prefix and s.net_prefixes() == [prefix]
    s.run_python(f"""
import os
from minidocker.core.linux import syscalls as sc
from pyroute2 import IPRoute
os.makedirs({NETNS_DIR!r}, exist_ok=True)
path = os.path.join({NETNS_DIR!r}, {prefix!r} + "ns")
open(path, "w").close()
if os.fork() == 0:
    sc.unshare(sc.CLONE_NEWNET)
    sc.mount("/proc/self/ns/net", path, "none", sc.MS_BIND, None)
    os._exit(0)
os.wait()
with IPRoute() as ipr:
    ipr.link("add", ifname={prefix!r} + "br", kind="bridge")
""")
    nft.run(f"add table ip {prefix}nat")
    left = s.leftovers()
    assert {f"network namespace {prefix}ns", f"link {prefix}br", f"firewall table {prefix}nat"} <= set(left)
    adopted = LabSession.adopt(s.root)            # a later session cleaning up after a dead kernel
    assert adopted.net_prefixes() == [prefix]
    done = adopted.cleanup()
    assert f"network namespace {prefix}ns" in done and f"link {prefix}br" in done
    assert not os.path.exists(os.path.join(NETNS_DIR, prefix + "ns"))
    assert not os.path.exists(f"/sys/class/net/{prefix}br") and not nft.table_exists("ip", f"{prefix}nat")
    s.cleanup()
    s.assert_clean()
