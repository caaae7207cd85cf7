"""minidocker-runc beside the real runc: the same bundle, the same verbs, the same answers.

A bundle made by `runc spec` with a busybox rootfs runs under both; what the program sees
from inside (PID 1, hostname, ids, capabilities, no_new_privs, masked and read-only paths,
the read-only root, rlimits, its terminal) and what the runtimes say (state, ps, exit codes,
errors) must agree."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import require_tool

pytestmark = pytest.mark.root

RUNC_CLI = [sys.executable, "-m", "minidocker.compat.runc.cli"]
PROBE = ("echo pid=$$; hostname; id; grep -E '^(Cap(Eff|Bnd|Prm|Inh|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; "
         "ulimit -n; echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); "
         "touch /probe 2>/dev/null && echo root-rw || echo root-ro; "
         "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo sys-rw || echo sys-ro; "
         "ls /proc/self/ns | sort | tr '\\n' ' '; echo; cat /proc/self/cgroup | wc -l >/dev/null; "
         "cut -d' ' -f2,3 /proc/self/mounts | grep -v '^/sys/fs/cgroup/' | sort; exit 3")


def runtimes():
    runc = require_tool("runc")
    return {"runc": [runc], "minidocker-runc": RUNC_CLI}


@pytest.fixture
def bundle_dir(tmp_path):
    """`runc spec` + a busybox rootfs (the host's busybox-static, its applets as links)."""
    busybox = require_tool("busybox")
    runc = require_tool("runc")
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    for applet in ("sh", "echo", "hostname", "id", "grep", "cat", "wc", "touch", "ls", "sort", "tr", "cut",
                   "sleep", "tty", "true", "stty"):
        os.symlink("busybox", rootfs / "bin" / applet)
    subprocess.run([runc, "spec"], cwd=tmp_path, check=True)
    return tmp_path


def edit(bundle_dir, **process):
    path = bundle_dir / "config.json"
    spec = json.loads(path.read_text())
    spec["process"].update(process)
    path.write_text(json.dumps(spec))
    return spec


def rt(name, state, *args):
    """One command; its output through files, not pipes: a container it creates inherits them
    and would hold a pipe open long after the command is done."""
    import tempfile
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        r = subprocess.run(runtimes()[name] + ["--root", str(state), *args], stdout=out, stderr=err,
                           timeout=60, stdin=subprocess.DEVNULL)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(r.args, r.returncode, out.read(), err.read())


def said_msg(stderr: str, cid: str) -> str:
    """The message of logrus's last line (time="..." level=error msg="..."), the id as <id>."""
    import re
    m = re.search(r'msg="(.*)"', stderr.strip().splitlines()[-1])
    return (m.group(1) if m else stderr.strip()).replace(cid, "<id>")


def test_spec_is_runcs(tmp_path):
    runc = require_tool("runc")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    subprocess.run([runc, "spec"], cwd=tmp_path / "a", check=True)
    subprocess.run(RUNC_CLI + ["spec"], cwd=tmp_path / "b", check=True)
    assert json.loads((tmp_path / "a/config.json").read_text()) == json.loads((tmp_path / "b/config.json").read_text())
    again = subprocess.run(RUNC_CLI + ["spec"], cwd=tmp_path / "b", capture_output=True, text=True)
    assert again.returncode == 1 and "config.json exists" in again.stderr


def test_the_same_bundle_runs_the_same_way(bundle_dir, tmp_path):
    edit(bundle_dir, terminal=False, args=["sh", "-c", PROBE])
    seen = {}
    for name in runtimes():
        r = rt(name, tmp_path / f"state-{name}", "run", "--bundle", str(bundle_dir), f"probe-{os.getpid()}")
        seen[name] = (r.returncode, r.stdout)
        assert not os.listdir(tmp_path / f"state-{name}"), "run deletes the container after it exits"
    assert seen["minidocker-runc"] == seen["runc"]
    code, out = seen["runc"]
    assert code == 3 and out.startswith("pid=1\nrunc\nuid=0 gid=0\n")
    assert "NoNewPrivs:\t1" in out and "kcore=0" in out and "root-ro" in out and "sys-ro" in out
    assert "\n1024\n" in out  # RLIMIT_NOFILE from process.rlimits


def test_create_start_and_the_verbs_between(bundle_dir, tmp_path):
    edit(bundle_dir, terminal=False, args=["sleep", "30"])
    said = {}
    for name in runtimes():
        state = tmp_path / f"state-{name}"
        cid = f"life-{name}-{os.getpid()}"
        pid_file = tmp_path / f"{name}.pid"
        steps = []
        try:
            r = rt(name, state, "create", "--bundle", str(bundle_dir), "--pid-file", str(pid_file), cid)
            assert r.returncode == 0, r.stderr
            pid = int(pid_file.read_text())
            st = json.loads(rt(name, state, "state", cid).stdout)
            steps.append(("created", st["status"], st["pid"] == pid, st["bundle"] == str(bundle_dir)))
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                steps.append(("waits before its program", b"sleep" not in f.read()))
            steps.append(("start", rt(name, state, "start", cid).returncode))
            steps.append(("running", json.loads(rt(name, state, "state", cid).stdout)["status"]))
            steps.append(("ps", json.loads(rt(name, state, "ps", "--format", "json", cid).stdout) == [pid]))
            listed = json.loads(rt(name, state, "list", "--format", "json").stdout)
            steps.append(("list", [(c["id"] == cid, c["status"]) for c in listed]))
            ex = rt(name, state, "exec", cid, "sh", "-c", "echo from exec; exit 5")
            steps.append(("exec", ex.returncode, ex.stdout))
            steps.append(("pause", rt(name, state, "pause", cid).returncode,
                          json.loads(rt(name, state, "state", cid).stdout)["status"]))
            steps.append(("resume", rt(name, state, "resume", cid).returncode,
                          json.loads(rt(name, state, "state", cid).stdout)["status"]))
            refused = rt(name, state, "delete", cid)
            steps.append(("delete running", refused.returncode, said_msg(refused.stderr, cid)))
            again = rt(name, state, "start", cid)
            steps.append(("start again", again.returncode, said_msg(again.stderr, cid)))
            steps.append(("kill", rt(name, state, "kill", cid, "KILL").returncode))
            deadline = time.monotonic() + 10
            while json.loads(rt(name, state, "state", cid).stdout)["status"] != "stopped":
                assert time.monotonic() < deadline
                time.sleep(0.05)
            steps.append(("delete", rt(name, state, "delete", cid).returncode, os.listdir(state)))
            gone = rt(name, state, "state", cid)
            steps.append(("state of none", gone.returncode, "container does not exist" in gone.stderr))
        finally:
            rt(name, state, "delete", "--force", cid)
        said[name] = steps
    assert said["minidocker-runc"] == said["runc"]
    assert ("exec", 5, "from exec\n") in said["runc"]


def test_a_terminal_through_the_console_socket(bundle_dir, tmp_path):
    """process.terminal: the runtime sends the pty's master over --console-socket (as
    containerd's shim receives it); the program's stdio is the pty's other end."""
    edit(bundle_dir, terminal=True, args=["sh", "-c", "tty; stty size"])
    outputs = {}
    for name in runtimes():
        state = tmp_path / f"state-{name}"
        sock_path = str(tmp_path / f"console-{name}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(sock_path)
        listener.listen(1)
        got = {}

        def receive():
            conn, _ = listener.accept()
            _, fds, _, _ = socket.recv_fds(conn, 64, 1)
            conn.close()
            got["master"] = fds[0]
        t = threading.Thread(target=receive, daemon=True)
        t.start()
        cid = f"tty-{name}-{os.getpid()}"
        try:
            r = rt(name, state, "run", "--detach", "--console-socket", sock_path, "--bundle", str(bundle_dir), cid)
            assert r.returncode == 0, r.stderr
            t.join(10)
            out = b""
            while True:
                try:
                    chunk = os.read(got["master"], 4096)
                except OSError:  # EIO: the program ended
                    break
                if not chunk:
                    break
                out += chunk
            outputs[name] = out.replace(b"\r\n", b"\n").decode()
        finally:
            if "master" in got:
                os.close(got["master"])
            listener.close()
            rt(name, state, "delete", "--force", cid)
    assert outputs["minidocker-runc"] == outputs["runc"]
    assert outputs["runc"].startswith("/dev/pts/0\n")


def test_limits_from_linux_resources(bundle_dir, tmp_path):
    """linux.resources and linux.cgroupsPath: the same limit in the same place."""
    spec = edit(bundle_dir, terminal=False, args=["sleep", "30"])
    spec["linux"]["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}})
    seen = {}
    for name in runtimes():
        cid = f"lim-{name}-{os.getpid()}"
        spec["linux"]["cgroupsPath"] = f"/mdtest-runc/{cid}"
        (bundle_dir / "config.json").write_text(json.dumps(spec))
        state = tmp_path / f"state-{name}"
        try:
            assert rt(name, state, "run", "--detach", "--bundle", str(bundle_dir), cid).returncode == 0
            pid = json.loads(rt(name, state, "state", cid).stdout)["pid"]
            with open(f"/proc/{pid}/cgroup") as f:
                lines = dict(line.strip().split(":", 2)[1:] for line in f)
            mem = lines.get("memory") or lines.get("")
            path = f"/sys/fs/cgroup/memory{mem}/memory.limit_in_bytes" if "memory" in lines else \
                f"/sys/fs/cgroup{mem}/memory.max"
            seen[name] = (mem, open(path).read().strip())
        finally:
            rt(name, state, "delete", "--force", cid)
    assert seen["minidocker-runc"][1] == seen["runc"][1] == str(64 << 20)
    assert seen["minidocker-runc"][0].endswith(f"/mdtest-runc/lim-minidocker-runc-{os.getpid()}")
    for tree in ("memory", "pids", "cpu,cpuacct", "unified", "systemd", "cpuset", "blkio", "devices", "freezer",
                 "net_cls,net_prio", "perf_event", "hugetlb", "rdma", "misc", ""):
        try:
            os.rmdir(os.path.join("/sys/fs/cgroup", tree, "mdtest-runc"))
        except OSError:
            pass


def test_errors_as_runc_says_them(bundle_dir, tmp_path):
    edit(bundle_dir, terminal=False, args=["no-such-program"])
    seen = {}
    for name in runtimes():
        state = tmp_path / f"state-{name}"
        log = tmp_path / f"{name}.log"
        r = rt(name, state, "--log", str(log), "--log-format", "json", "create", "--bundle", str(bundle_dir),
               f"bad-{name}")
        last = json.loads(log.read_text().strip().splitlines()[-1])
        seen[name] = (r.returncode, last["level"], 'exec: "no-such-program": executable file not found in $PATH'
                      in last["msg"], os.listdir(state) if state.exists() else [])
        rt(name, state, "delete", "--force", f"bad-{name}")
    assert seen["minidocker-runc"] == seen["runc"] == (1, "error", True, [])
    ours = subprocess.run(RUNC_CLI + ["--root", str(tmp_path / "x"), "kill", "nope", "TERM"], capture_output=True,
                          text=True)
    assert ours.returncode == 1 and 'level=error msg="container does not exist"' in ours.stderr


def test_signal_names():
    from minidocker.compat.runc import cli
    assert cli.signal_number("KILL") == cli.signal_number("SIGKILL") == cli.signal_number("9") == signal.SIGKILL
    with pytest.raises(cli.RuncError):
        cli.signal_number("NOPE")


def test_a_real_dockerd_runs_containers_through_it(state_root, tmp_path):
    """dockerd -> containerd -> containerd-shim-runc-v2 -> minidocker-runc (`--add-runtime`):
    the docker CLI's verbs work, and a container looks the same from inside as under runc.
    The wrapper records what the shim called."""
    from conftest import require
    from minidocker.images.store import ImageStore
    from minidocker.lab import realdocker
    from minidocker.paths import StateRoot
    require_tool("dockerd")
    require_tool("docker")
    require(os.geteuid() == 0, "needs root")
    calls = tmp_path / "calls.log"
    wrapper = tmp_path / "minidocker-runc"
    wrapper.write_text(f"#!/bin/sh\necho \"$*\" >> {calls}\n"
                       f"exec {sys.executable} -m minidocker.compat.runc.cli \"$@\"\n")
    wrapper.chmod(0o755)
    d = realdocker.RealDocker.start(extra_args=("--add-runtime", f"minidocker={wrapper}",
                                                "--exec-opt", "native.cgroupdriver=cgroupfs"))
    try:
        d.load_busybox(ImageStore(StateRoot(state_root)))
        probe = ("hostname; id; grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status; "
                 "ls /sys/class/net | sort | tr '\\n' ' '; echo; "
                 # (runc mounts every v1 hierarchy; minidocker only those it puts the container in)
                 "cut -d' ' -f2,3 /proc/self/mounts | grep -v '^/sys/fs/cgroup/' | sort")
        seen = {}
        for runtime in ("runc", "minidocker"):
            r = d.docker("run", "--rm", "--runtime", runtime, "-h", "same", "busybox", "sh", "-c", probe, check=False)
            seen[runtime] = (r.returncode, r.stdout)
        assert seen["minidocker"] == seen["runc"], seen
        assert "Seccomp:\t2" in seen["runc"][1] and "eth0" in seen["runc"][1]
        tty = d.docker("run", "--rm", "-t", "--runtime", "minidocker", "busybox", "tty", check=False)
        assert tty.stdout.strip() == "/dev/pts/0", tty  # (create --console-socket)
        cid = d.docker("run", "-d", "--runtime", "minidocker", "busybox", "sleep", "300").stdout.strip()
        assert d.docker("exec", cid, "sh", "-c", "echo in exec; exit 4", check=False).returncode == 4
        assert d.docker("exec", cid, "sh", "-c", "echo in exec").stdout == "in exec\n"
        assert d.docker("exec", "-t", cid, "tty").stdout.strip() == "/dev/pts/0"
        stats = d.docker("stats", "--no-stream", "--format", "{{.PIDs}} {{.MemUsage}}", cid).stdout.split()
        assert stats[0] == "1" and not stats[1].startswith("0B"), stats
        assert d.docker("update", "--memory", "64m", "--memory-swap", "128m", cid).returncode == 0
        limit = d.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", cid).stdout
        assert limit.strip().endswith("/ 64MiB"), limit
        assert d.docker("pause", cid).returncode == 0
        assert d.docker("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "paused"
        assert d.docker("unpause", cid).returncode == 0
        assert d.docker("stop", "-t", "1", cid).returncode == 0
        assert d.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "137"
        assert d.docker("rm", "-f", cid).returncode == 0
    finally:
        d.stop()
    verbs = {}
    for line in calls.read_text().splitlines():
        args = line.split()
        while args and args[0].startswith("--"):
            args = args[2:]  # (the global flags, each with its value)
        if args:
            verbs.setdefault(args[0], set()).update(a for a in args[1:] if a.startswith("--"))
    assert set(verbs) >= {"create", "start", "exec", "kill", "delete", "pause", "resume", "update"}, verbs
    assert {"--bundle", "--pid-file", "--console-socket"} <= verbs["create"]
    assert {"--process", "--detach", "--pid-file", "--console-socket"} <= verbs["exec"]
    print("what containerd-shim-runc-v2 called:", {v: sorted(f) for v, f in sorted(verbs.items())})
