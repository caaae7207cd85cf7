"""Real containers, as root: isolation, exit codes, logs, lifecycle, clean-up."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import mounts_under, shim_processes

pytestmark = pytest.mark.root


def inspect(md, ref):
    return json.loads(md.ok("inspect", ref))[0]


# ------------------------------------------------------------------ isolation is real
def test_pid1_is_the_command_and_hostname_is_the_id(md):
    out = md.ok("run", "--name", "iso1", "busybox", "sh", "-c", "echo $$; hostname; cat /proc/1/cmdline | tr '\\0' ' '")
    pid, hostname, cmdline = out.splitlines()
    assert pid == "1"
    cid = inspect(md, "iso1")["Id"]
    assert hostname == cid[:12]
    assert cmdline.startswith("sh -c echo $$")
    md.ok("rm", "iso1")


def test_hostname_flag_and_namespaces_differ_from_host(md):
    out = md.ok("run", "--rm", "-h", "box", "busybox", "sh", "-c",
                "hostname; for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done")
    lines = out.splitlines()
    assert lines[0] == "box"
    for kind, link in zip(["pid", "mnt", "uts", "ipc", "net"], lines[1:]):
        assert link != os.readlink(f"/proc/self/ns/{kind}"), kind
    assert os.uname().nodename != "box"


def test_no_host_mounts_visible(md):
    out = md.ok("run", "--rm", "busybox", "cat", "/proc/self/mountinfo")
    targets = [line.split()[4] for line in out.splitlines()]
    assert targets[0] == "/"
    assert {"/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/hosts"} <= set(targets)
    host_only = {line.split()[4] for line in open("/proc/self/mountinfo")} - set(targets)
    assert "/work" not in targets and md.root not in " ".join(targets)
    assert host_only  # the host has mounts the container cannot see
    # and the container's mounts did not leak to the host
    assert not any(t.startswith("/dev/mqueue") for t in mounts_under(md.root))


def test_network_none_has_only_loopback(md):
    out = md.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                "ls /sys/class/net; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo-up")
    assert out.split() == ["lo", "lo-up"]


def test_default_capabilities_like_docker(md):
    from minidocker.core import security
    out = md.ok("run", "--rm", "busybox", "grep", "CapEff", "/proc/self/status")
    eff = int(out.split()[1], 16)
    expected = {f"CAP_{c}" for c in security.DEFAULT_CAPS}  # on v1 and v2 alike
    assert sorted(security.cap_names(eff)) == sorted(expected)
    r = md("run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/mnt")
    assert r.returncode != 0  # no CAP_SYS_ADMIN: cannot mount


def test_masked_and_readonly_proc(md):
    r = md("run", "--rm", "busybox", "sh", "-c", "cat /proc/keys | wc -c; echo 1 > /proc/sys/kernel/hostname")
    assert r.stdout.split()[0] == "0"
    assert "Read-only file system" in r.stderr


def test_devices(md):
    out = md.ok("run", "--rm", "busybox", "sh", "-c", "ls /dev; head -c 4 /dev/zero | od -An -tx1")
    names = out.split()
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "ptmx"):
        assert dev in names
    assert out.splitlines()[-1].split() == ["00", "00", "00", "00"]


def test_non_root_user_has_no_capabilities(md):
    out = md.ok("run", "--rm", "-u", "nobody", "busybox", "sh", "-c", "id; grep CapEff /proc/self/status")
    assert "uid=65534(nobody)" in out
    assert out.split()[-1] == "0000000000000000"
    assert md.ok("run", "--rm", "-u", "1234:5678", "busybox", "id").strip() == "uid=1234 gid=5678 groups=5678"


# ------------------------------------------------------------------ filesystem
def test_image_unchanged_after_container_writes(md):
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    store = ImageStore(StateRoot(md.root))
    md.ok("run", "--rm", "busybox", "true")
    img = store.resolve("busybox")
    diff = store.driver.diff(store.layer_cache_id(img.top_chain_id))
    before = sorted(os.listdir(os.path.join(diff, "bin")))
    md.ok("run", "--name", "writer", "busybox", "sh", "-c",
          "rm /bin/vi; echo x >> /etc/passwd; mkdir /data; echo hi > /data/f")
    upper = inspect(md, "writer")["GraphDriver"]["Data"]["UpperDir"]
    st = os.lstat(os.path.join(upper, "bin", "vi"))
    assert (st.st_mode & 0o170000, st.st_rdev) == (0o020000, 0)  # whiteout
    assert open(os.path.join(upper, "data", "f")).read() == "hi\n"
    assert sorted(os.listdir(os.path.join(diff, "bin"))) == before
    assert md.ok("run", "--rm", "busybox", "ls", "/bin/vi").strip() == "/bin/vi"
    assert "x" not in md.ok("run", "--rm", "busybox", "cat", "/etc/passwd").split()
    md.ok("start", "-a", "writer") if False else None
    md.ok("rm", "writer")
    assert not os.path.exists(upper)


def test_files_survive_restart_not_removal(md):
    md.ok("run", "--name", "keep", "busybox", "sh", "-c", "echo 1 >> /count")
    md.ok("start", "keep")
    md.ok("wait", "keep")
    # the upper dir is kept between runs of the same container
    assert md.ok("start", "-a", "keep") == ""
    upper = inspect(md, "keep")["GraphDriver"]["Data"]["UpperDir"]
    assert open(os.path.join(upper, "count")).read() == "1\n1\n1\n"
    md.ok("rm", "keep")


def test_workdir_created_and_env(md, tmp_path):
    envfile = tmp_path / "env"
    envfile.write_text("# comment\nFROM_FILE=yes\n\nBARE\n")
    out = md.ok("run", "--rm", "-w", "/new/dir", "-e", "A=1", "-e", "BARE", "--env-file", str(envfile),
                "busybox", "sh", "-c", "pwd; env | sort")
    lines = out.splitlines()
    assert lines[0] == "/new/dir"
    env = dict(line.split("=", 1) for line in lines[1:])
    assert env["A"] == "1" and env["FROM_FILE"] == "yes" and "BARE" not in env
    assert env["HOME"] == "/root" and env["PATH"].startswith("/usr/local/sbin")
    assert len(env["HOSTNAME"]) == 12


def test_etc_files(md):
    out = md.ok("run", "--rm", "-h", "web", "busybox", "sh", "-c", "cat /etc/hostname /etc/hosts; ls -a /")
    assert out.startswith("web\n127.0.0.1\tlocalhost\n")
    assert ".dockerenv" in out.split()


# ------------------------------------------------------------------ exit codes
@pytest.mark.parametrize("cmd,code,msg", [
    (["sh", "-c", "exit 3"], 3, None),
    (["nosuchcmd"], 127, 'exec: "nosuchcmd": executable file not found in $PATH'),
    (["/no/such/file"], 127, "no such file or directory"),
    (["/etc/passwd"], 126, "permission denied"),
    (["/etc"], 126, "permission denied"),  # docker says the same for a directory
])
def test_exit_codes(md, cmd, code, msg):
    r = md("run", "--rm", "busybox", *cmd)
    assert r.returncode == code
    if msg:
        assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert "Traceback" not in r.stderr


def test_failed_start_leaves_created_container(md):
    r = md("run", "--name", "failing", "busybox", "nosuchcmd")
    assert r.returncode == 127
    st = inspect(md, "failing")["State"]
    assert (st["Status"], st["ExitCode"], st["Running"]) == ("created", 127, False)
    assert "executable file not found" in st["Error"]
    assert mounts_under(md.root) == [] or all("failing" not in m for m in mounts_under(md.root))
    md.ok("rm", "failing")


def test_killed_by_signal_is_128_plus(md):
    cid = md.ok("run", "-d", "busybox", "sleep", "100").strip()
    md.ok("kill", "-s", "KILL", cid)
    assert md.ok("wait", cid).strip() == "137"
    assert inspect(md, cid)["State"]["ExitCode"] == 137
    md.ok("rm", cid)


# ------------------------------------------------------------------ lifecycle
def test_detached_lifecycle_and_ps(md):
    cid = md.ok("run", "-d", "--name", "life", "busybox", "sleep", "100").strip()
    assert len(cid) == 64
    ps = md.ok("ps").splitlines()
    assert ps[0].split() == ["CONTAINER", "ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    row = next(r for r in ps if r.startswith(cid[:12]))
    assert '"sleep 100"' in row and "Up " in row and row.endswith("life")
    st = inspect(md, "life")["State"]
    assert st["Status"] == "running" and st["Pid"] > 0
    assert os.readlink(f"/proc/{st['Pid']}/ns/pid") != os.readlink("/proc/self/ns/pid")
    r = md("rm", "life")
    assert r.returncode == 1 and "container is running" in r.stderr
    md.ok("stop", "-t", "1", "life")
    row = next(r for r in md.ok("ps", "-a").splitlines() if r.startswith(cid[:12]))
    assert "Exited (137)" in row
    assert md.ok("ps", "-q") .split().count(cid[:12]) == 0
    md.ok("start", "life")
    assert inspect(md, "life")["State"]["Running"]
    md.ok("restart", "-t", "0", "life")
    assert inspect(md, "life")["State"]["Running"]
    md.ok("rm", "-f", "life")
    assert "life" not in md.ok("ps", "-a")


def test_stop_timing_sigterm_then_sigkill(md):
    # sleep as PID 1 has no SIGTERM handler: the kernel ignores SIGTERM for a namespace's init
    cid = md.ok("run", "-d", "busybox", "sleep", "100").strip()
    t = time.monotonic()
    md.ok("stop", "-t", "2", cid)
    took = time.monotonic() - t
    assert 1.9 <= took < 6, took
    assert inspect(md, cid)["State"]["ExitCode"] == 137
    # a process that traps TERM exits promptly with its own code
    cid2 = md.ok("run", "-d", "busybox", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done").strip()
    time.sleep(0.3)
    t = time.monotonic()
    md.ok("stop", "-t", "10", cid2)
    assert time.monotonic() - t < 8          # well before the 10 s grace period (a slow VM takes ~4 s)
    assert inspect(md, cid2)["State"]["ExitCode"] == 0   # its own exit, not SIGKILL's 137
    md.ok("rm", cid, cid2)


def test_illegal_transitions(md):
    md.ok("create", "--name", "cr", "busybox", "sleep", "100")
    assert md.ok("ps", "-a", "--filter", "name=cr").splitlines()[1].split()[-2:] == ["Created", "cr"]
    r = md("kill", "cr")
    assert r.returncode == 1 and "is not running" in r.stderr
    assert md("stop", "cr").returncode == 0
    r = md("rm", "nosuch1", "cr", "nosuch2")
    assert r.returncode == 1
    assert r.stdout.split() == ["cr"]
    assert r.stderr.count("No such container") == 2
    assert md("kill", "-s", "BOGUS", "x").stderr.strip() == "Error: Invalid signal: BOGUS"


def test_name_conflict_and_concurrent_creates(md):
    results = []

    def create():
        results.append(md("create", "--name", "racer", "busybox", "true"))
    threads = [threading.Thread(target=create) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ok = [r for r in results if r.returncode == 0]
    bad = [r for r in results if r.returncode != 0]
    assert len(ok) == 1 and len(bad) == 3
    assert all(r.returncode == 1 and "is already in use" in r.stderr for r in bad)  # create: 1
    r = md("run", "--name", "racer", "busybox", "true")
    assert r.returncode == 125 and r.stderr.startswith("minidocker: Conflict.")  # run: 125
    assert len([line for line in md.ok("ps", "-a").splitlines() if line.endswith("racer")]) == 1
    md.ok("rm", "racer")


def test_rm_flag_removes_after_exit(md):
    r = md("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "exit 7")
    assert r.returncode == 7
    assert md("inspect", "gone").returncode == 1
    cid = md.ok("run", "-d", "--rm", "busybox", "true").strip()
    deadline = time.monotonic() + 10
    while md("inspect", cid).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert md("inspect", cid).returncode == 1


def test_logs(md):
    cid = md.ok("run", "-d", "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2; printf partial").strip()
    assert md.ok("wait", cid).strip() == "0"
    r = md("logs", cid)
    assert r.stdout == "out1\nout2\npartial" and r.stderr == "err1\n"
    assert md("logs", "--tail", "1", cid).stdout == "partial"
    ts = md("logs", "-t", "--tail", "2", cid).stdout.split(" ")[0]
    assert len(ts) == 30 and ts.endswith("Z")
    log = open(inspect(md, cid)["LogPath"]).read().splitlines()
    first = json.loads(log[0])
    assert list(first) == ["log", "stream", "time"] and first["log"] == "out1\n"
    md.ok("rm", cid)


def test_logs_follow_ends_with_container(md):
    cid = md.ok("run", "-d", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.3; done").strip()
    t = time.monotonic()
    out = md.ok("logs", "-f", cid, timeout=20)
    assert out == "1\n2\n3\n" and time.monotonic() - t < 10
    md.ok("rm", cid)


def test_interactive_stdin_and_tty(md):
    assert md.ok("run", "--rm", "-i", "busybox", "cat", input="hello\n") == "hello\n"
    p = subprocess.run([os.sys.executable, "-m", "minidocker", "run", "--rm", "-t", "busybox", "sh", "-c",
                        "tty; echo x >&2"], env=md.env, capture_output=True, stdin=subprocess.DEVNULL)
    assert p.stdout == b"/dev/pts/0\r\nx\r\n"  # a tty merges stderr and turns \n into \r\n
    assert p.stderr == b"" and p.returncode == 0


def test_attached_run_forwards_sigterm(md):
    p = subprocess.Popen([os.sys.executable, "-m", "minidocker", "run", "--rm", "busybox", "sh", "-c",
                          "trap 'echo got TERM; exit 5' TERM; echo ready; while true; do sleep 0.1; done"],
                         env=md.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20)
    assert out == "got TERM\n" and p.returncode == 5


def test_container_prune(md):
    a = md.ok("create", "busybox", "true").strip()
    b = md.ok("run", "-d", "busybox", "sleep", "100").strip()
    out = md.ok("container", "prune", "-f")
    assert out.startswith("Deleted Containers:\n") and a in out and b not in out
    assert "Total reclaimed space:" in out
    md.ok("rm", "-f", b)


def test_monitor_crash_is_repaired_and_pruned(md):
    cid = md.ok("run", "-d", "busybox", "sleep", "100").strip()
    shim = [p for p in shim_processes(md.root)
            if cid.encode() in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(shim) == 1
    pid1 = inspect(md, cid)["State"]["Pid"]
    os.kill(shim[0], signal.SIGKILL)  # the monitor dies, the container lives on...
    time.sleep(0.2)
    st = inspect(md, cid)["State"]  # ...until minidocker notices and repairs the record
    assert (st["Status"], st["ExitCode"]) == ("exited", 255)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid1}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid1}") or open(f"/proc/{pid1}/stat").read().split()[2] == "Z"
    assert not any(cid in m or inspect(md, cid)["GraphDriver"]["Data"]["MergedDir"] == m
                   for m in mounts_under(md.root))
    md.ok("system", "prune", "-f")
    assert md("inspect", cid).returncode == 1


def test_bad_input_never_tracebacks(md):
    cases = [
        ["run", "--name", "a b", "busybox"], ["run", "-w", "relative", "busybox", "true"],
        ["run", "nosuchimage:latest", "true"], ["run", "Bad/Name", "true"], ["inspect", "-f", "{{.Nope", "x"],
        ["logs", "--tail", "x", "nosuch"], ["stop", "-t", "x", "nosuch"],
        ["run", "--env-file", "/nonexistent", "busybox"],
        ["run", "--entrypoint", "", "busybox"], ["start"], ["wait", "nosuch"],
    ]
    for args in cases:
        r = md(*args)
        assert r.returncode in (1, 125), (args, r.returncode, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_killed_cli_lets_go_of_its_output_and_container_lives(md):
    p = subprocess.Popen([os.sys.executable, "-m", "minidocker", "run", "--name", "orphan", "busybox", "sh", "-c",
                          "echo ready; sleep 100"], env=md.env, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline() == "ready\n"
    p.kill()
    p.wait()
    t = time.monotonic()
    assert p.stdout.read() == ""  # EOF: the monitor closed its copy of the CLI's stdout
    assert time.monotonic() - t < 5
    assert inspect(md, "orphan")["State"]["Running"]  # like docker: the container goes on
    md.ok("rm", "-f", "orphan")


def _early_monitors_without_container(md) -> list[str]:
    """The ids named by monitors that `run` spawned before its create (`monitor --early ROOT ID`)
    whose container does not exist."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"minidocker.engine.monitor" in argv and b"--early" in argv and md.root.encode() in argv:
            cid = argv[argv.index(md.root.encode()) + 1].decode()
            if md("inspect", cid).returncode != 0:
                found.append(cid)
    return found


def test_a_failed_create_leaves_no_early_monitor(md):
    """`run` spawns the container's monitor first of all, before it parses its flags and creates
    the container (engine/spawn_monitor.py). When the flags or the create fail, that monitor
    reads EOF and exits, and holds nothing of the CLI's: the CLI's output ends with the CLI."""
    for args in (["run", "--rm", "no-such-image:1", "true"], ["run", "-d", "no-such-image:1", "true"],
                 ["run", "--rm", "--name", "bad/name", "busybox", "true"],
                 ["run", "--no-such-flag", "busybox", "true"]):
        # (capture_output reads to EOF: a monitor that kept the CLI's stderr would hang it to the timeout)
        p = subprocess.run([os.sys.executable, "-m", "minidocker", *args], env=md.env, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 125 and p.stderr.count("\n") == 1, (args, p.stderr)
    deadline = time.monotonic() + 5
    while _early_monitors_without_container(md) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _early_monitors_without_container(md) == []


def test_images_and_image_inspect(md):
    out = md.ok("images").splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    row = next(r for r in out if r.split()[:2] == ["busybox", "latest"])
    assert row.split()[1] == "latest" and row.split()[-1].endswith("MB")
    img = json.loads(md.ok("image", "inspect", "busybox"))[0]
    assert img["RepoTags"] == ["busybox:latest"] and img["Config"]["Cmd"] == ["sh"]
    assert img["Id"].split(":")[1][:12] in md.ok("images", "-q").split()
    platform = md.ok("inspect", "--type", "image", "-f", "{{.Os}}/{{.Architecture}}", "busybox")
    assert platform.strip().startswith("linux/")
    r = md("run", "nosuchimage", "true")
    assert r.returncode == 125 and "Unable to find image 'nosuchimage:latest' locally" in r.stderr


def test_system_prune_cleans_crash_leftovers(md):
    """A crash between steps can leave a mounted overlay, an orphan layer, temp files:
    `system prune` finds and removes them."""
    from minidocker.core.overlay2 import Overlay2
    d = Overlay2(os.path.join(md.root, "overlay2"))
    base = d.create()
    top = d.create(parent=base)
    merged = d.mount(top)  # as if a monitor died holding it
    os.makedirs(os.path.join(md.root, "tmp", "half-built"))
    os.utime(os.path.join(md.root, "tmp", "half-built"), (1, 1))  # an old leftover, not a pull in progress
    out = md.ok("system", "prune", "-f")
    assert f"mount {merged}" in out and f"orphaned layer {top}" in out and f"orphaned layer {base}" in out
    assert not os.path.exists(d.dir(top)) and not os.path.exists(d.dir(base))
    assert merged not in mounts_under(md.root)
    assert os.listdir(os.path.join(md.root, "tmp")) == []
    assert md("run", "--rm", "busybox", "true").returncode == 0  # the image's own layer survived


def test_exec_joins_the_running_container(md, state_root):
    md.ok("run", "-d", "-h", "box", "--name", "execd", "-m", "64m", "busybox", "sleep", "300")
    try:
        out = md.ok("exec", "execd", "sh", "-c", "hostname; ps -o pid,comm; cat /proc/self/cgroup | grep -c ':/$'")
        lines = out.splitlines()
        assert lines[0] == "box" and lines[2].split() == ["1", "sleep"]  # its PID namespace, its PID 1
        assert int(lines[-1]) >= 1  # its cgroup namespace: its cgroup is "/"
        r = md("exec", "-u", "daemon", "-w", "/tmp", "-e", "A=1", "execd", "sh", "-c", "id -u; pwd; echo $A; exit 5")
        assert (r.returncode, r.stdout) == (5, "1\n/tmp\n1\n")
        assert md.ok("exec", "-i", "execd", "cat", input="piped\n") == "piped\n"
        md.ok("exec", "-d", "execd", "sh", "-c", "sleep 0.3; echo later > /tmp/bg")
        time.sleep(1)
        assert md.ok("exec", "execd", "cat", "/tmp/bg") == "later\n"
        for cmd, msg in ((["nosuch"], "executable file not found"), (["/etc/passwd"], "permission denied")):
            r = md("exec", "execd", *cmd)
            assert r.returncode == 126 and msg in r.stdout and "Traceback" not in r.stderr
        import minidocker
        c = minidocker.from_env(state_root).containers.get("execd")
        assert c.exec_run("sh -c 'echo o; echo e >&2; exit 2'") == (2, b"o\ne\n")
        md.ok("pause", "execd")
        r = md("exec", "execd", "true")
        assert r.returncode == 1 and "is paused, unpause the container before exec" in r.stderr
        md.ok("unpause", "execd")
        md.ok("stop", "-t", "0", "execd")
        r = md("exec", "execd", "true")
        assert r.returncode == 1 and "is not running" in r.stderr
    finally:
        md("rm", "-f", "execd")


def test_exec_gives_the_command_no_host_fd(md):
    """Only stdin, stdout and stderr reach an exec'd command (and the container's PID 1): no pipe
    to the CLI, no host directory (CVE-2024-21626). So `exec -d` returns at once."""
    md.ok("run", "-d", "--name", "fds", "--network", "none", "busybox", "sleep", "300")
    try:
        # `ls` opens /proc/self/fd itself: one more fd than the command was given
        assert md.ok("exec", "fds", "ls", "/proc/self/fd").split() == ["0", "1", "2", "3"]
        assert md.ok("exec", "fds", "ls", "/proc/1/fd").split() == ["0", "1", "2"]
        t = time.monotonic()
        md.ok("exec", "-d", "fds", "sleep", "20")
        assert time.monotonic() - t < 10
    finally:
        md("rm", "-f", "fds")


def test_top_lists_the_containers_processes(md):
    cid = md.ok("run", "-d", "--network", "none", "busybox", "sh", "-c", "sleep 100 & exec sleep 200").strip()
    try:
        lines = md.ok("top", cid).splitlines()
        assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        cmds = sorted(" ".join(line.split()[7:]) for line in lines[1:])
        assert cmds == ["sleep 100", "sleep 200"]
        pid1 = json.loads(md.ok("inspect", cid))[0]["State"]["Pid"]
        assert str(pid1) in [line.split()[1] for line in lines[1:]]  # host PIDs, as docker top shows
    finally:
        md.ok("rm", "-f", cid)


def test_a_random_name_that_is_taken_is_drawn_again(runtime, monkeypatch):
    """~25,000 adjective_scientist names: in a long-lived state root two collide now and then;
    Docker draws again (with a digit) instead of failing the `run`."""
    from minidocker.container import names
    first = runtime.create("busybox", ["true"], name="taken_name", network="none")
    monkeypatch.setattr(names, "random_name", lambda retry=0: "taken_name" if retry == 0 else f"taken_name{retry}")
    second = runtime.create("busybox", ["true"], network="none")
    assert runtime.inspect(second)["Name"] == "/taken_name1"
    runtime.remove(first)
    runtime.remove(second)
