"""User namespaces: the maps (pure), and a bundle with a user namespace run by our runtime and by
the real runc, side by side: root inside, uid 100000 outside, device nodes bound, not made."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import REPO, require_tool
from minidocker.core import bundle, userns

# ---------------------------------------------------------------- without root


def test_maps_translate_both_ways():
    m = userns.IdMap([(0, 100000, 1000), (1000, 300000, 10)])
    assert m.to_host(0) == 100000 and m.to_host(999) == 100999 and m.to_host(1005) == 300005
    assert m.to_container(100001) == 1 and m.to_container(300009) == 1009
    assert m.to_container(0) == 65534  # the host's root is nobody inside
    with pytest.raises(ValueError):
        m.to_host(2000)
    assert m.proc_text() == "0 100000 1000\n1000 300000 10\n"
    assert userns.IdMap.from_oci(m.oci()) == m
    assert userns.parse_proc_map("         0     100000      65536\n") == userns.IdMap([(0, 100000, 65536)])


def test_subuid_ranges_as_docker_reads_them():
    text = "# comment\nalice:100000:65536\ndockremap:165536:65536\n1001:231072:65536\ndockremap:300000:10\n"
    assert userns.subid_ranges(text, "dockremap") == [(165536, 65536), (300000, 10)]
    assert userns.subid_ranges(text, "bob", 1001) == [(231072, 65536)]
    assert userns.map_from_subids([(300000, 10), (165536, 65536)]) == userns.IdMap(
        [(0, 165536, 65536), (65536, 300000, 10)])
    assert userns.free_range([text, ""]) == 300010
    assert userns.free_range([""]) == 100000


def _spec(**linux):
    spec = {"process": {"args": ["sh"]}, "root": {"path": "rootfs"},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "user"}], **linux}}
    return spec


def test_the_bundle_wants_both_maps_with_a_user_namespace():
    maps = {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
    bundle.check(_spec(**maps))
    with pytest.raises(bundle.BundleError, match="no uidMappings/gidMappings"):
        bundle.check(_spec(uidMappings=maps["uidMappings"]))
    no_user = _spec(**maps)
    no_user["linux"]["namespaces"] = [{"type": "mount"}]
    with pytest.raises(bundle.BundleError, match="not enabled"):
        bundle.check(no_user)
    joined = _spec(**maps)
    joined["linux"]["namespaces"].append({"type": "ipc", "path": "/proc/1/ns/ipc"})
    with pytest.raises(bundle.BundleError, match="not ipc"):
        bundle.check(joined)


# ---------------------------------------------------------------- the runtime, beside runc
RUN_OURS = """
import os, sys
from minidocker.core import bundle, runc
try:
    pid = runc.start(sys.argv[1], sys.argv[2], (0, 1, 2))
except runc.StartFailed as e:
    print(e, file=sys.stderr)
    sys.exit(e.code)
_, status = os.waitpid(pid, 0)
runc.delete(bundle.load(sys.argv[1]), sys.argv[2])
sys.exit(runc.exit_status(status))
"""
PROBE = ("id; cat /proc/self/uid_map /proc/self/gid_map; grep -E '^Cap(Eff|Bnd)' /proc/self/status; "
         "hostname; touch /x 2>&1; mknod /tmp/n c 1 3 2>&1 || echo mknod refused; "
         "stat -c '%n %U %t,%T' /dev/null /dev/zero /dev/tty; ls -ln /bin/busybox | cut -c1-10,15-30; "
         "cat /dev/null && echo /dev/null reads; echo host-root-file: $(stat -c %u /proc/1/root/.)")


def _userns_bundle(path: str, script: str, host_id: int = 100000) -> str:
    """A `runc spec` bundle with a busybox root owned by the mapped root, and a user namespace."""
    from minidocker.images import busybox
    runc = require_tool("runc")
    os.makedirs(path)
    os.chmod(path, 0o755)  # the mapped root must be able to reach its own rootfs
    rootfs = os.path.join(path, "rootfs")
    busybox.build_rootfs(rootfs, busybox.find_busybox(), time.time())
    for top, dirs, files in os.walk(rootfs):
        for n in dirs + files:
            os.lchown(os.path.join(top, n), host_id, host_id)
    os.chown(rootfs, host_id, host_id)
    subprocess.run([runc, "spec"], cwd=path, check=True)
    spec = json.load(open(os.path.join(path, "config.json")))
    spec["process"].update(terminal=False, args=["sh", "-c", script])
    spec["linux"]["namespaces"].append({"type": "user"})
    maps = [{"containerID": 0, "hostID": host_id, "size": 65536}]
    spec["linux"].update(uidMappings=maps, gidMappings=maps, cgroupsPath=f"/mdtest/{os.path.basename(path)}")
    json.dump(spec, open(os.path.join(path, "config.json"), "w"))
    return path


@pytest.fixture
def reachable(tmp_path_factory):
    """A directory the mapped root can reach (pytest's own tmp dirs are 0700, root's only); at
    the end, the bundles' cgroup parent (/mdtest) goes too (both runtimes leave it)."""
    import shutil
    import tempfile
    from minidocker.core import cgroups
    d = tempfile.mkdtemp(prefix="mdtest-userns-", dir="/tmp")
    os.chmod(d, 0o755)
    yield __import__("pathlib").Path(d)
    shutil.rmtree(d, ignore_errors=True)
    assert cgroups.driver("mdtest").remove_parent() or not cgroups.driver("mdtest").ids()


@pytest.mark.root
def test_a_user_namespace_bundle_runs_as_under_runc(reachable):
    runc = require_tool("runc")
    tmp_path = reachable
    b = _userns_bundle(str(tmp_path / "ub"), PROBE)
    env = dict(os.environ, PYTHONPATH=REPO)
    ours = subprocess.run([sys.executable, "-c", RUN_OURS, b, "mdtest-userns"], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)
    state = str(tmp_path / "runc-state")
    try:
        theirs = subprocess.run([runc, "--root", state, "run", "-b", b, "mdtest-userns-runc"], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
    finally:
        subprocess.run([runc, "--root", state, "delete", "--force", "mdtest-userns-runc"], capture_output=True)
    assert ours.returncode == 0, ours.stderr
    assert theirs.returncode == 0, theirs.stderr
    assert ours.stdout == theirs.stdout
    lines = ours.stdout.splitlines()
    assert lines[0] == "uid=0(root) gid=0(root)"
    assert lines[1].split() == ["0", "100000", "65536"] and lines[2].split() == ["0", "100000", "65536"]
    assert "mknod refused" in ours.stdout and "/dev/null reads" in ours.stdout
    assert "/dev/null nobody 1,3" in ours.stdout  # the host's node, bound: its owner (host root) is nobody


@pytest.mark.root
def test_root_inside_is_an_unprivileged_uid_outside(reachable):
    """The host sees PID 1 as uid 100000; inside it is root."""
    tmp_path = reachable
    b = _userns_bundle(str(tmp_path / "ub2"), "echo up; read x")
    env = dict(os.environ, PYTHONPATH=REPO)
    p = subprocess.Popen([sys.executable, "-c", RUN_OURS, b, "mdtest-userns2"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline() == "up\n"
        children = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
        assert len(children) == 1  # PID 1, re-parented to the runtime (the middle process is gone)
        status = dict(line.split(":", 1) for line in open(f"/proc/{children[0]}/status"))
        assert status["Uid"].split() == ["100000"] * 4 and status["Gid"].split() == ["100000"] * 4
        assert os.readlink(f"/proc/{children[0]}/ns/user") != os.readlink("/proc/self/ns/user")
    finally:
        p.communicate("\n", timeout=30)
    assert p.returncode == 0


# ---------------------------------------------------------------- --userns-remap, beside dockerd's
REMAP_PROBE = ("id; cat /proc/self/uid_map /proc/self/gid_map; grep -E '^Cap(Eff|Bnd)' /proc/self/status; "
               "stat -c '%n %u:%g' /etc/hosts /etc/hostname /etc/resolv.conf / /bin /tmp; "
               "touch /new && echo touched; echo x >> /etc/hosts && echo hosts written; "
               "mknod /tmp/n c 1 3 2>/dev/null || echo mknod refused; "
               "mount -t tmpfs none /mnt 2>/dev/null || echo mount refused")


def test_remap_values_and_refusals():
    from minidocker.engine import remap
    from minidocker.errors import MinidockerError
    assert remap.parse("default") == ("dockremap", "dockremap")
    assert remap.parse("alice") == ("alice", "alice") and remap.parse("alice:staff") == ("alice", "staff")
    remap.check_host_options({"Privileged": True, "UsernsMode": "host"})
    for host, words in (({"Privileged": True}, "privileged mode is incompatible"),
                        ({"NetworkMode": "host"}, "host's network namespace"),
                        ({"PidMode": "host"}, "host PID namespace")):
        with pytest.raises(MinidockerError, match=words):
            remap.check_host_options(host)


@pytest.fixture(scope="module")
def remapped():
    """A state root under a directory the mapped root may pass through, used with
    --userns-remap default (which makes the dockremap user and its /etc/subuid range, as
    dockerd does); everything removed afterwards."""
    import shutil
    import tempfile
    from conftest import MD, mounts_under
    base = tempfile.mkdtemp(prefix="mdtest-remap-", dir="/tmp")
    os.chmod(base, 0o755)
    md = MD(base)

    def run(*args, **kw):
        return md("--root", os.path.join(base, "root"), "--userns-remap", "default", *args, **kw)
    yield run, os.path.join(base, "root")
    leftover = run("ps", "-aq", "--no-trunc").stdout.split()
    if leftover:
        run("rm", "-f", *leftover)
    run("volume", "prune", "-af")
    run("system", "prune", "-af")
    assert mounts_under(base) == []
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def remapped_docker(remapped):
    """A private real dockerd started with --userns-remap default (the same dockremap range)."""
    from conftest import STRICT  # noqa: F401 -- (require_tool fails under it when dockerd is missing)
    require_tool("dockerd")
    from minidocker.images.store import ImageStore
    from minidocker.lab import realdocker
    from minidocker.paths import StateRoot
    run, root = remapped
    run("images")  # makes the remapped root
    d = realdocker.RealDocker.start(extra_args=("--userns-remap", "default"))
    try:
        ours = [n for n in os.listdir(root) if "." in n and n.split(".")[0].isdigit()][0]
        run("run", "--rm", "busybox", "true")  # (builds the busybox image in the remapped root)
        d.load_busybox(ImageStore(StateRoot(os.path.join(root, ours))))
        yield d
    finally:
        d.stop()


@pytest.mark.root
def test_remapped_containers_look_as_in_docker(remapped, remapped_docker):
    run, _ = remapped
    ours = run("run", "--rm", "busybox", "sh", "-c", REMAP_PROBE)
    theirs = remapped_docker.docker("run", "--rm", "busybox", "sh", "-c", REMAP_PROBE, check=False)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout == theirs.stdout
    lines = ours.stdout.splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)") and lines[1].split()[0] == "0"
    assert lines[1].split()[1] != "0"  # root inside is not root outside
    assert "touched" in lines and "hosts written" in lines and "mknod refused" in lines and "mount refused" in lines
    # --userns host: the host's identity map, in both
    ours = run("run", "--rm", "--userns", "host", "busybox", "cat", "/proc/self/uid_map")
    theirs = remapped_docker.docker("run", "--rm", "--userns", "host", "busybox", "cat", "/proc/self/uid_map")
    assert ours.stdout == theirs.stdout and ours.stdout.split() == ["0", "0", "4294967295"]


@pytest.mark.root
def test_remapped_refusals_as_dockerd_words_them(remapped, remapped_docker):
    run, _ = remapped
    for flags in (["--privileged"], ["--network", "host"]):
        ours = run("run", "--rm", *flags, "busybox", "true")
        theirs = remapped_docker.docker("run", "--rm", *flags, "busybox", "true", check=False)
        assert ours.returncode == theirs.returncode == 125
        said = theirs.stderr.split("Error response from daemon: ")[1].splitlines()[0].rstrip(".")
        assert ours.stderr.strip() == f"minidocker: {said}"
    assert run("ps", "-aq").stdout == ""  # nothing half-made


@pytest.mark.root
def test_remapped_files_on_the_host(remapped, remapped_docker):
    """On the host: the process runs as the mapped uid, what it writes (its layer, a volume) is
    owned by it, and the state root is the mapped group's to pass through: in both runtimes."""
    run, root = remapped
    sub_name = [n for n in os.listdir(root) if "." in n and n.split(".")[0].isdigit()][0]  # "100000.100000"
    uid0, gid0 = (int(x) for x in sub_name.split("."))  # (dockremap's range: 100000 unless taken)
    script = "echo x > /data/f; echo y > /made; echo up; sleep 60"
    assert run("run", "-d", "--name", "rm1", "-v", "remapvol:/data", "busybox", "sh", "-c", script).returncode == 0
    remapped_docker.docker("run", "-d", "--name", "rm1", "-v", "remapvol:/data", "busybox", "sh", "-c", script)
    try:
        for side, root_dir, inspect in (
                ("ours", root, lambda f: run("inspect", "-f", f, "rm1").stdout.strip()),
                ("docker", os.path.join(remapped_docker.workdir, "data"),
                 lambda f: remapped_docker.docker("inspect", "-f", f, "rm1").stdout.strip())):
            deadline = time.monotonic() + 20
            while "up" not in (run("logs", "rm1").stdout if side == "ours" else
                               remapped_docker.docker("logs", "rm1").stdout) and time.monotonic() < deadline:
                time.sleep(0.1)
            pid = inspect("{{.State.Pid}}")
            status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
            assert status["Uid"].split() == [str(uid0)] * 4, side
            sub = os.path.join(root_dir, sub_name)
            st = os.stat(sub)
            assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (0, gid0, 0o710), side
            vol = os.stat(os.path.join(sub, "volumes", "remapvol", "_data", "f"))
            assert (vol.st_uid, vol.st_gid) == (uid0, gid0), side
            made = os.stat(os.path.join(inspect("{{.GraphDriver.Data.UpperDir}}"), "made"))
            assert (made.st_uid, made.st_gid) == (uid0, gid0), side
        # what leaves the container is as the container saw it: docker export/cp/commit
        ours = subprocess.run([sys.executable, "-m", "minidocker", "--root", root, "--userns-remap", "default",
                               "export", "rm1"], capture_output=True, env=dict(os.environ, PYTHONPATH=REPO))
        import io
        import tarfile
        made = tarfile.open(fileobj=io.BytesIO(ours.stdout)).getmember("made")
        assert (made.uid, made.gid) == (0, 0)
        assert run("cp", "/etc/hostname", "rm1:/copied").returncode == 0
        assert run("exec", "rm1", "stat", "-c", "%u:%g", "/copied").stdout == "0:0\n"
    finally:
        run("rm", "-f", "rm1")
        remapped_docker.docker("rm", "-f", "rm1", check=False)
        run("volume", "rm", "remapvol")


@pytest.mark.root
def test_the_probe_battery_ends_as_under_dockers_remapping(remapped, remapped_docker):
    """tests/test_confinement.py's 29 probes (and 4 status lines), in a remapped container of each runtime."""
    import pathlib
    import test_confinement as tc
    from minidocker.lab import sysprobe
    from conftest import require
    require(sysprobe.supported(), "the probe programs are x86_64")
    run, root = remapped
    d = pathlib.Path(os.path.dirname(root)) / "probes"  # (where the remapped root may reach them)
    d.mkdir(exist_ok=True)
    for name, (nr, *args) in tc.CALLS.items():
        (d / name).write_bytes(sysprobe.elf(nr, *args))
        os.chmod(d / name, 0o755)
    lines = [f"/p/{n}; echo {n}=$?" for n in tc.CALLS]
    lines += [f"({cmd}) >/dev/null 2>&1; echo {n}=$?" for n, cmd in tc.SHELL.items()]
    lines.append("grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status | tr -d '\\t' | tr : =")
    probes = (str(d), "; ".join(lines))
    ours = tc.results(run, probes)
    theirs = tc.results(lambda *a: remapped_docker.docker(*a, check=False), probes)
    assert ours == theirs
    assert ours["mknod_c"] == "1" and ours["Seccomp"] == "2"  # no mknod at all in a user namespace


@pytest.mark.root
def test_a_bind_source_only_root_may_reach_is_mounted_as_by_docker(remapped, remapped_docker, tmp_path):
    """pytest's temporary directories are 0700 root: the remapped root could not walk to them;
    the runtime opens the source first (as runc does), so the mount works in both."""
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "file").write_text("hello\n")
    run, _ = remapped
    args = ("run", "--rm", "-v", f"{tmp_path}/inner:/p", "busybox", "sh", "-c", "cat /p/file; stat -c %U /p/file")
    ours, theirs = run(*args), remapped_docker.docker(*args, check=False)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    assert ours.stdout == theirs.stdout == "hello\nnobody\n"
