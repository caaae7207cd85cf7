"""Side by side with the real thing: the same commands under minidocker and Docker.

A private dockerd (Debian's docker.io) is started for this module, with our offline busybox
imported into it, and no networking of its own. We compare what a learner would compare:
exit codes, output, status strings, the files a container sees, the inspect fields.
"""
import json
import time

import pytest


pytestmark = [pytest.mark.root, pytest.mark.docker]


class Both:
    """Run one command line in both runtimes; Docker gets --network none (ours has only
    loopback for now, which is what `none` means)."""

    def __init__(self, md, docker):
        self.md, self.docker = md, docker

    def run(self, *args, input=None):
        words = list(args)
        if words[0] in ("run", "create") and not any(w.startswith("--network") for w in words):
            words = words[:1] + ["--network", "none"] + words[1:]
        d = self.docker.docker(*words, check=False, input=input)
        m = self.md(*words, input=input)
        return m, d


@pytest.fixture
def both(md, docker):
    return Both(md, docker)


@pytest.mark.parametrize("cmd", [
    ["true"], ["sh", "-c", "exit 3"], ["nosuchcmd"], ["/etc/passwd"], ["/no/such/path"], ["/etc"],
])
def test_exit_codes_match(both, cmd):
    m, d = both.run("run", "--rm", "busybox", *cmd)
    assert m.returncode == d.returncode, (m.stderr, d.stderr)


@pytest.mark.parametrize("args", [
    ["-u", "nosuchuser", "busybox", "id"],
    ["--name", "x", "busybox", "true"],
    ["--badflag", "busybox"],
    ["-w", "relative", "busybox", "pwd"],
])
def test_bad_input_exit_codes_match(both, args):
    m, d = both.run("run", "--rm", *args)
    assert m.returncode == d.returncode, (m.stderr, d.stderr)


@pytest.mark.parametrize("script", [
    "echo $$",                                     # PID 1
    "id", "pwd", "ls /", "ls -a /", "ls /dev", "ls /dev/pts", "ls -ld /tmp /root /proc /sys | cut -c1-10",
    "cat /etc/hosts", "cat /etc/passwd /etc/group", "grep Cap /proc/self/status",
    "env | cut -d= -f1", "ulimit -n; umask", "ls /sys/class/net",
    "cat /proc/self/cgroup | wc -l | grep -q . && echo ok",
    "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1-10,35-44",
    "touch /x && echo writable", "readlink /etc/mtab",
    "cat /sys/class/net/lo/operstate; ping -c1 -W2 127.0.0.1 >/dev/null && echo lo works",
    "cat /proc/1/cmdline | tr '\\0' ' '",
])
def test_same_view_from_inside(both, script):
    m, d = both.run("run", "--rm", "busybox", "sh", "-c", script)
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout), m.stderr


@pytest.mark.parametrize("flags,cmd", [
    (["-u", "daemon"], ["id"]), (["-u", "1234:5678"], ["id"]), (["-u", "nobody"], ["sh", "-c", "echo $HOME"]),
    (["-w", "/new/dir"], ["pwd"]), (["-h", "myhost"], ["hostname"]), (["-e", "A=1", "-e", "PATH=/bin"], ["env"]),
    (["--entrypoint", "echo"], ["hi", "there"]), (["--entrypoint", ""], ["echo", "reset"]),
])
def test_same_output_for_flags(both, flags, cmd):
    m, d = both.run("run", "--rm", "-h", "fixedname", *flags, "busybox", *cmd)
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout), m.stderr


def test_mount_table_matches_except_cgroups(both):
    """Same mounts in the same order; Docker also mounts /sys/fs/cgroup (minidocker's cgroup
    support comes with resource limits)."""
    m, d = both.run("run", "--rm", "busybox", "cat", "/proc/self/mounts")

    def shape(text):
        rows = [line.split()[:3] for line in text.splitlines()]
        return sorted((target, fstype) for _, target, fstype in rows
                      if not target.startswith("/sys/fs/cgroup") and target != "/")
    ours, theirs = shape(m.stdout), shape(d.stdout)
    # we mask what current Docker (moby >= 25) masks; Debian's 20.10 predates two of them
    newer_docker_masks = {("/proc/interrupts", "tmpfs"), ("/sys/devices/virtual/powercap", "tmpfs")}
    assert set(theirs) <= set(ours) and set(ours) - set(theirs) <= newer_docker_masks


def test_lifecycle_status_strings(both):
    m, d = both.run("create", "--name", "cmp-life", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert m.returncode == d.returncode == 0

    def status(which):
        runner = both.md if which == "md" else (lambda *a: both.docker.docker(*a, check=False))
        return runner("ps", "-a", "--filter", "name=cmp-life", "--format", "{{.Status}}|{{.Command}}|{{.Names}}").stdout
    assert status("md") == status("docker") == 'Created|"sh -c \'echo out; ec…"|cmp-life\n'
    m, d = both.run("start", "-a", "cmp-life")
    assert (m.returncode, m.stdout, m.stderr) == (d.returncode, d.stdout, d.stderr) == (3, "out\n", "err\n")
    assert status("md").startswith("Exited (3) ") and status("docker").startswith("Exited (3) ")
    for fmt in ("{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Pid}}",
                "{{json .Config.Cmd}} {{.Config.Entrypoint}} {{.Path}} {{.Args}} {{.Name}}",
                "{{range .Config.Env}}{{.}} {{end}}", "{{.RestartCount}} {{.HostConfig.AutoRemove}}"):
        m, d = both.run("inspect", "-f", fmt, "cmp-life")
        assert m.stdout == d.stdout, fmt
    m, d = both.run("logs", "cmp-life")
    assert (m.stdout, m.stderr) == (d.stdout, d.stderr)
    # (--tail 1 would race: stdout and stderr are separate pipes, in both runtimes)
    for tail in ("0", "2", "all"):
        m, d = both.run("logs", "--tail", tail, "cmp-life")
        assert (m.stdout, m.stderr) == (d.stdout, d.stderr), tail
    m, d = both.run("inspect", "cmp-life")
    mk, dk = json.loads(m.stdout)[0], json.loads(d.stdout)[0]
    assert list(mk["State"]) == list(dk["State"])
    assert list(mk["Config"]) == list(dk["Config"])
    missing = set(dk) - set(mk)
    assert not missing, missing
    m, d = both.run("rm", "cmp-life")
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout)


def test_illegal_transitions_match(both):
    both.run("create", "--name", "cmp-tr", "busybox", "sleep", "100")
    for args in (["kill", "cmp-tr"], ["stop", "cmp-tr"], ["start", "cmp-tr"], ["start", "cmp-tr"],
                 ["rm", "cmp-tr"], ["kill", "-s", "BOGUS", "cmp-tr"], ["rm", "nosuch"], ["stop", "nosuch"],
                 ["rm", "-f", "nosuch"], ["inspect", "nosuch"], ["logs", "nosuch"], ["wait", "nosuch"]):
        m, d = both.run(*args)
        assert (m.returncode, m.stdout) == (d.returncode, d.stdout), args
    m, d = both.run("rm", "-f", "cmp-tr")
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout) == (0, "cmp-tr\n")


def test_stop_timing_and_exit_code_match(both):
    both.run("run", "-d", "--name", "cmp-stop", "busybox", "sleep", "100")
    times = {}
    for which, runner in (("md", both.md), ("docker", lambda *a: both.docker.docker(*a, check=False))):
        t = time.monotonic()
        r = runner("stop", "-t", "1", "cmp-stop")
        times[which] = time.monotonic() - t
        assert r.returncode == 0
        assert runner("inspect", "-f", "{{.State.ExitCode}}", "cmp-stop").stdout == "137\n"
        assert runner("wait", "cmp-stop").stdout == "137\n"
    assert abs(times["md"] - times["docker"]) < 1.0, times
    both.run("rm", "cmp-stop")


def test_ps_table_layout_matches(both):
    both.run("run", "-d", "--name", "cmp-ps", "busybox", "sleep", "100")
    try:
        m, d = both.run("ps", "--filter", "name=cmp-ps")
        # same columns; widths follow the cell contents ("2 seconds ago" vs "Less than a second ago")
        mh, dh = m.stdout.splitlines()[0], d.stdout.splitlines()[0]
        assert mh.split() == dh.split()
        m, d = both.run("ps", "--filter", "name=cmp-ps", "--format", "{{.Command}}\t{{.Status}}\t{{.Names}}")
        assert m.stdout.split("\t")[0] == d.stdout.split("\t")[0] == '"sleep 100"'
        assert m.stdout.split("\t")[1].startswith("Up ") and d.stdout.split("\t")[1].startswith("Up ")
    finally:
        both.run("rm", "-f", "cmp-ps")


def test_stdin_and_rm(both):
    m, d = both.run("run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 2", input="piped\n")
    assert (m.returncode, m.stdout) == (d.returncode, d.stdout) == (2, "piped\n")
    m, d = both.run("run", "--rm", "--name", "cmp-gone", "busybox", "true")
    m, d = both.run("inspect", "cmp-gone")
    assert m.returncode == d.returncode == 1


# ------------------------------------------------------------------ images travel both ways
SAME_DOCKERFILE = """\
FROM busybox AS build
WORKDIR /work
COPY app.sh .
RUN sed 's/@/at/' app.sh > /work/app && chmod 755 /work/app && mkdir -p /var/lib/app && echo state > /var/lib/app/state

FROM busybox
LABEL course=minidocker
ENV APP_HOME=/opt/app PATH=/opt/app:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /opt/app
COPY --from=build /work/app ./app
COPY --from=build /var/lib/app /var/lib/app
RUN rm /bin/vi && echo built > /opt/app/BUILT
EXPOSE 8080
USER daemon
ENTRYPOINT ["app"]
CMD ["--help"]
"""
CONFIG_KEYS = ("Entrypoint", "Cmd", "Env", "WorkingDir", "User", "ExposedPorts", "Labels")


def _tree_of(runner, image):
    """(path, type+mode, size, sha) of every file in the image, read by busybox inside it."""
    out = runner("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", "-u", "0", image, "-c",
                 "find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort | "
                 "while read f; do if [ -L \"$f\" ]; then echo \"$f L $(readlink \"$f\")\"; "
                 "elif [ -f \"$f\" ]; then echo \"$f F $(stat -c %a \"$f\") $(md5sum < \"$f\" | cut -c1-12)\"; "
                 "else echo \"$f D $(stat -c %a \"$f\")\"; fi; done").stdout
    skip = ("/.dockerenv", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/proc", "/sys", "/dev")
    return [line for line in out.splitlines() if not line.startswith(skip)]


def test_same_dockerfile_same_image(md, docker, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(SAME_DOCKERFILE)
    (ctx / "app.sh").write_text('#!/bin/sh\necho "app @ $APP_HOME: $*"\n')
    d = docker.docker("build", "--network", "none", "-t", "same:1", str(ctx), check=False)
    assert d.returncode == 0, d.stderr
    m = md("build", "--network", "none", "-t", "same:1", str(ctx), timeout=120)
    assert m.returncode == 0, m.stderr
    dcfg = json.loads(docker.docker("image", "inspect", "same:1").stdout)[0]["Config"]
    mcfg = json.loads(md.ok("image", "inspect", "same:1"))[0]["Config"]
    for key in CONFIG_KEYS:
        assert mcfg.get(key) == dcfg.get(key), key
    # the same steps make layers (WORKDIR of a new directory does, ENV/LABEL/EXPOSE/... do not)
    dhist = json.loads(docker.docker("image", "inspect", "same:1").stdout)[0]["RootFS"]["Layers"]
    assert len(json.loads(md.ok("image", "inspect", "same:1"))[0]["RootFS"]["Layers"]) == len(dhist)
    drun = docker.docker("run", "--rm", "--network", "none", "same:1", "x", check=False)
    mrun = md("run", "--rm", "--network", "none", "same:1", "x")
    assert (mrun.returncode, mrun.stdout) == (drun.returncode, drun.stdout) == (0, "app at /opt/app: x\n")
    assert _tree_of(md, "same:1") == _tree_of(lambda *a: docker.docker(*a, check=False), "same:1")


def test_image_saved_by_docker_runs_here(md, docker, tmp_path):
    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nWORKDIR /srv\nENV WHO=docker\nENTRYPOINT ["sh", "-c"]\n'
                                    'CMD ["echo made by $WHO in $(pwd)"]\n')
    docker.docker("build", "--network", "none", "-t", "fromdocker:1", str(ctx))
    tar = tmp_path / "fromdocker.tar"
    docker.docker("save", "-o", str(tar), "fromdocker:1")
    assert md.ok("load", "-i", str(tar)) == "Loaded image: fromdocker:1\n"
    d = json.loads(docker.docker("image", "inspect", "fromdocker:1").stdout)[0]
    m = json.loads(md.ok("image", "inspect", "fromdocker:1"))[0]
    assert m["Id"] == d["Id"] and m["RootFS"]["Layers"] == d["RootFS"]["Layers"]
    assert md.ok("run", "--rm", "--network", "none", "fromdocker:1") == "made by docker in /srv\n"


def test_image_saved_here_runs_in_docker(md, docker, tmp_path):
    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text('FROM busybox\nWORKDIR /srv\nENV WHO=minidocker\nRUN echo data > /srv/f\n'
                                    'ENTRYPOINT ["sh", "-c"]\nCMD ["echo made by $WHO in $(pwd): $(cat f)"]\n')
    md.ok("build", "--network", "none", "-t", "fromus:1", str(ctx), timeout=120)
    tar = tmp_path / "fromus.tar"
    md.ok("save", "-o", str(tar), "fromus:1")
    assert "Loaded image: fromus:1" in docker.docker("load", "-i", str(tar)).stdout
    d = json.loads(docker.docker("image", "inspect", "fromus:1").stdout)[0]
    m = json.loads(md.ok("image", "inspect", "fromus:1"))[0]
    assert d["Id"] == m["Id"]  # the same config bytes, the same layer bytes
    for key in ("Entrypoint", "Cmd", "Env", "WorkingDir"):
        assert d["Config"][key] == m["Config"][key], key
    out = docker.docker("run", "--rm", "--network", "none", "fromus:1").stdout
    assert out == "made by minidocker in /srv: data\n"


def test_exec_matches(both):
    both.run("run", "-d", "-h", "fixed", "--name", "cmp-exec", "busybox", "sleep", "100")
    try:
        for args in (["sh", "-c", "hostname; ps -o pid,comm | head -2; exit 4"], ["nosuch"], ["/etc/passwd"],
                     ["-u", "daemon", "-w", "/tmp", "-e", "A=1", "sh", "-c", "id; pwd; echo $A"]):
            words = args if args[0] != "-u" else args[:6] + ["cmp-exec"] + args[6:]
            if args[0] != "-u":
                words = ["cmp-exec"] + args
            m, d = both.run("exec", *words)
            assert (m.returncode, m.stdout) == (d.returncode, d.stdout), args
        m, d = both.run("exec", "nosuchcontainer", "true")
        assert m.returncode == d.returncode == 1
    finally:
        both.run("rm", "-f", "cmp-exec")


def test_arg_step_lines_match_the_classic_builder(md, docker, tmp_path, monkeypatch):
    """`ARG V=1` after FROM is a step of its own in Docker's classic builder: a container
    that is never started, a config-only image, `Using cache` on a rebuild."""
    import re
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")  # the 20.10 client's classic builder, whatever the host says
    ctx = tmp_path / "argctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nARG V=1\nRUN echo $V\n")

    def steps(out: str) -> list[str]:
        return [re.sub(r"\b[0-9a-f]{12}\b", "<id>", line) for line in out.splitlines()
                if line.startswith(("Step ", " ---> ", "Removing intermediate container "))]
    for round_ in ("first", "cached"):
        d = docker.docker("build", "--network", "none", "-t", "argcmp:1", str(ctx), check=False)
        m = md("build", "--network", "none", "-t", "argcmp:1", str(ctx), timeout=120)
        assert d.returncode == m.returncode == 0, (d.stderr, m.stderr)
        assert steps(m.stdout) == steps(d.stdout), round_
        assert ("Using cache" in d.stdout) == (round_ == "cached")
    assert steps(d.stdout) == ["Step 1/3 : FROM busybox", " ---> <id>",
                               "Step 2/3 : ARG V=1", " ---> Using cache", " ---> <id>",
                               "Step 3/3 : RUN echo $V", " ---> Using cache", " ---> <id>"]
    fmt = ["history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "argcmp:1"]
    theirs = docker.docker(*fmt).stdout.splitlines()
    assert md.ok(*fmt).splitlines()[:2] == theirs[:2] == ["|1 V=1 /bin/sh -c echo $V|0B",
                                                           "/bin/sh -c #(nop)  ARG V=1|0B"]


def test_inspect_templates_print_like_go(both):
    """Sets (map[string]struct{}) print their empty structs as {}: map[8080/tcp:{}]."""
    fmt = "{{.Config.ExposedPorts}} {{json .Config.ExposedPorts}} {{.Config.Volumes}} {{.HostConfig.Binds}}"
    both.run("create", "--name", "cmp-tpl", "--expose", "8080", "--expose", "53/udp", "-v", "/data",
             "busybox", "true")
    try:
        m, d = both.run("inspect", "-f", fmt, "cmp-tpl")
        assert (m.returncode, m.stdout) == (d.returncode, d.stdout), (m.stdout, d.stdout)
        assert m.stdout.startswith("map[53/udp:{} 8080/tcp:{}]")
    finally:
        both.run("rm", "-v", "cmp-tpl")
