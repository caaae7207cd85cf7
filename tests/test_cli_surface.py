"""What a new user met first (issue 16's list), fixed and compared with the docker CLI and a
private dockerd: the PORTS column, an unknown command, `volume ls --filter`, `build --progress`,
`image prune -a` in one pass, a registry that cannot be reached."""
from __future__ import annotations

import re

import pytest

from minidocker.compat.cli import format as fmt

N = ["--network", "none"]


@pytest.mark.parametrize("ports,shown", [
    ({}, ""),
    ({"80/tcp": None}, "80/tcp"),
    ({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18091"}]}, "127.0.0.1:18091->80/tcp"),
    ({"8000/tcp": None, "8001/tcp": None, "8002/tcp": None, "9000/tcp": None}, "8000-8002/tcp, 9000/tcp"),
    ({"53/udp": [{"HostIp": "0.0.0.0", "HostPort": "53"}], "53/tcp": [{"HostIp": "0.0.0.0", "HostPort": "53"}]},
     "0.0.0.0:53->53/tcp, 0.0.0.0:53->53/udp"),
    ({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": None}, "443/tcp, 0.0.0.0:8080->80/tcp"),
])
def test_the_ports_column(ports, shown):
    """docker/cli's DisplayablePorts on the daemon's list of ports."""
    assert fmt.displayable_ports(fmt.api_ports(ports)) == shown


@pytest.mark.root
@pytest.mark.docker
def test_ps_shows_published_ports_as_docker_does(md, docker):
    argv = ["run", "-d", "--name", "surface-ports", "-p", "127.0.0.1::80", "--expose", "443", "-p", "8000-8001",
            "busybox", "sleep", "100"]
    try:
        assert md(*argv).returncode == 0 and docker.docker(*argv, check=False).returncode == 0
        fmt_ports = ["ps", "--format", "{{.Ports}}", "-f", "name=surface-ports"]
        ours, theirs = md.ok(*fmt_ports).strip(), docker.docker(*fmt_ports).stdout.strip()
        anyport = re.compile(r"(127\.0\.0\.1|0\.0\.0\.0):\d+->")   # the host ports are each one's own pick
        theirs = ", ".join(p for p in theirs.split(", ") if not p.startswith(":::"))  # (IPv6: not ours)
        assert anyport.sub("<ip>:<port>->", ours) == anyport.sub("<ip>:<port>->", theirs), (ours, theirs)
        assert "127.0.0.1:" in ours and "->80/tcp" in ours and "443/tcp" in ours
    finally:
        md("rm", "-f", "surface-ports"), docker.docker("rm", "-f", "surface-ports", check=False)


@pytest.mark.root
@pytest.mark.parametrize("argv,rc,said", [
    (["bogus"], 1, "minidocker: 'bogus' is not a minidocker command. See 'minidocker --help'"),
    (["volume", "bogus"], 1, "'bogus' is not a minidocker volume command"),
    (["ps", "--bogus"], 125, "unknown flag: --bogus. See 'minidocker ps --help'."),
])
def test_unknown_commands_and_flags(md, argv, rc, said):
    r = md(*argv)
    assert r.returncode == rc and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.root
@pytest.mark.docker
def test_volume_ls_filters_as_docker(md, docker):
    names = ["surface-vol-a", "surface-vol-b"]
    try:
        for rt in (md, lambda *a: docker.docker(*a, check=False)):
            rt("volume", "create", "--label", "team=blue", names[0])
            rt("volume", "create", names[1])
            rt("create", "--name", "surface-vol-user", *N, "-v", f"{names[0]}:/data", "busybox", "true")

        def listed(rt, *filters):
            argv = ["volume", "ls", "-q"] + [x for f in filters for x in ("-f", f)]
            out = rt.ok(*argv) if hasattr(rt, "ok") else rt(*argv).stdout
            return sorted(n for n in out.split() if n.startswith("surface-vol"))
        for filters in (["dangling=true"], ["dangling=false"], ["label=team=blue"], ["label=team"],
                        ["name=vol-b"], ["name=vol-a", "name=vol-b"], ["driver=local", "dangling=true"]):
            assert listed(md, *filters) == listed(docker.docker, *filters), filters
        assert md("volume", "ls", "-f", "colour=red").returncode == docker.docker(
            "volume", "ls", "-f", "colour=red", check=False).returncode == 1
    finally:
        for rt in (md, lambda *a: docker.docker(*a, check=False)):
            rt("rm", "-f", "surface-vol-user")
            rt("volume", "rm", *names)


@pytest.mark.root
def test_image_prune_all_takes_a_tagged_parent_in_one_pass(tmp_path):
    from conftest import MD
    md = MD(str(tmp_path / "root"))   # a root of its own: prune -a takes every image not in use
    try:
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo parent > /p\n")
        md.ok("build", "-q", "--progress=plain", "--network", "none", "-t", "surface-parent:1", str(ctx))
        (ctx / "Dockerfile").write_text("FROM surface-parent:1\nRUN echo child > /c\n")
        md.ok("build", "-q", "--network", "none", "-t", "surface-child:1", str(ctx))
        md.ok("image", "prune", "-af")
        for name in ("surface-child:1", "surface-parent:1", "busybox"):
            assert md("image", "inspect", name).returncode == 1, name
    finally:
        md("system", "prune", "-af")


@pytest.mark.root
def test_a_registry_that_cannot_be_reached_is_one_line_in_gos_words(md):
    r = md("pull", "127.0.0.1:1/nothing:1")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "Errno" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == ('Error: Get "http://127.0.0.1:1/v2/nothing/manifests/1": '
                                                 "dial tcp 127.0.0.1:1: connect: connection refused")


@pytest.mark.root
@pytest.mark.docker
def test_info_and_version_say_what_dockers_say_about_this_host(md, docker):
    import json
    ours = json.loads(md.ok("info", "--format", "{{json .}}"))
    theirs = json.loads(docker.docker("info", "--format", "{{json .}}").stdout)
    for key in ("Driver", "LoggingDriver", "CgroupVersion", "KernelVersion", "OSType", "Architecture",
                "NCPU", "MemTotal", "OperatingSystem", "CgroupDriver"):
        assert ours[key] == theirs[key], key
    assert ours["Containers"] == ours["ContainersRunning"] + ours["ContainersPaused"] + ours["ContainersStopped"]
    assert md.ok("info", "-f", "{{.Driver}}") == "overlay2\n"
    version = json.loads(md.ok("version", "--format", "{{json .}}"))
    assert version["Server"]["KernelVersion"] == json.loads(
        docker.docker("version", "--format", "{{json .}}").stdout)["Server"]["KernelVersion"]
    r = md("version")
    assert r.returncode == 0 and "API version:       1.41" in r.stdout


@pytest.mark.root
@pytest.mark.docker
def test_rename_as_docker(md, docker):
    dk = lambda *a: docker.docker(*a, check=False)  # noqa: E731
    try:
        for rt in (md, dk):
            rt("create", "--name", "surface-r1", *N, "busybox", "true")
            rt("create", "--name", "surface-r2", *N, "busybox", "true")
        for argv in (["rename", "surface-r1", "surface-r3"], ["rename", "surface-r3", "surface-r2"],
                     ["rename", "surface-r3", "bad!"], ["rename", "surface-r3", "surface-r3"],
                     ["rename", "surface-nope", "x1"]):
            m, d = md(*argv), dk(*argv)
            assert m.returncode == d.returncode, (argv, m.stderr, d.stderr)
        names = lambda rt: sorted(n for n in (rt.ok("ps", "-a", "--format", "{{.Names}}") if rt is md else  # noqa
                                  rt("ps", "-a", "--format", "{{.Names}}").stdout).split() if n.startswith("surface-r"))
        assert names(md) == names(dk) == ["surface-r2", "surface-r3"]
    finally:
        for rt in (md, dk):
            rt("rm", "-f", "surface-r1", "surface-r2", "surface-r3")


@pytest.mark.root
def test_system_df_counts_what_is_there(tmp_path):
    from conftest import MD
    md = MD(str(tmp_path / "root"))
    try:
        md.ok("run", "-d", "--name", "df-run", *N, "-v", "df-vol:/data", "busybox", "sh", "-c",
              "head -c 300000 /dev/zero > /data/z; head -c 200000 /dev/zero > /w; sleep 100")
        md.ok("create", "--name", "df-idle", *N, "busybox", "true")
        md.ok("volume", "create", "df-unused")
        import time
        time.sleep(1)
        rows = [line.split("\t") for line in md.ok("system", "df", "--format",
                                                   "{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}").splitlines()]
        assert rows[0][:3] == ["Images", "1", "1"]
        assert rows[1][:3] == ["Containers", "2", "1"] and rows[1][3] == "200kB"   # the writable layer
        assert rows[2][:3] == ["Local Volumes", "2", "1"] and rows[2][3] == "300kB"
        assert rows[3] == ["Build Cache", "0", "0", "0B"]
        verbose = md.ok("system", "df", "-v")
        assert "df-run" in verbose and "df-idle" in verbose and "df-unused" in verbose and "busybox" in verbose
    finally:
        md("rm", "-f", "df-run", "df-idle")
        md("system", "prune", "-af", "--volumes")


@pytest.mark.root
@pytest.mark.docker
def test_an_unknown_volume_driver_is_refused_as_docker_refuses_it(md, docker):
    """Only the local driver is built in; dockerd looks any other up as a plugin, and fails."""
    argv = ["volume", "create", "-d", "nosuch", "surface-vol"]
    ours, theirs = md(*argv), docker.docker(*argv, check=False)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.strip().removeprefix("Error: ") == \
        theirs.stderr.strip().removeprefix("Error response from daemon: ")
    assert "surface-vol" not in md.ok("volume", "ls", "-q").split()
