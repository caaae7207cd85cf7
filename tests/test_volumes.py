"""Volumes, bind mounts and tmpfs for real (数据持久化), as root."""
import json
import os

import pytest

from minidocker import volumes as volmod
from minidocker.errors import InvalidArgument

pytestmark = pytest.mark.root


@pytest.mark.parametrize("spec,expected", [
    ("data:/app", {"Type": "volume", "Name": "data", "Destination": "/app", "RW": True}),
    ("data:/app:ro", {"Type": "volume", "Name": "data", "Destination": "/app", "RW": False}),
    ("/host:/app", {"Type": "bind", "Source": "/host", "Destination": "/app", "RW": True}),
    ("/app", {"Type": "volume", "Name": "", "Destination": "/app", "RW": True}),
])
def test_parse_v(spec, expected):
    got = volmod.parse_v(spec)
    assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize("bad", ["rel:app", "data:/app:bogus", "x:/", "a:b:c:d", "bad name:/x"])
def test_parse_v_errors(bad):
    with pytest.raises(InvalidArgument):
        volmod.parse_v(bad)


def test_parse_mount_and_tmpfs():
    m = volmod.parse_mount("type=bind,source=/h,target=/c,readonly")
    assert (m["Type"], m["Source"], m["Destination"], m["RW"]) == ("bind", "/h", "/c", False)
    t = volmod.parse_mount("type=tmpfs,target=/t,tmpfs-size=1m")
    assert (t["Type"], t["Mode"]) == ("tmpfs", "size=1m")
    assert volmod.parse_tmpfs("/cache:rw,size=100m,mode=1777")["Mode"] == "rw,size=100m,mode=1777"
    assert volmod.tmpfs_options("rw,exec,size=1m") == ["nosuid", "nodev", "size=1m"]
    from minidocker.core.bundle import parse_mount_options
    from minidocker.core.linux import syscalls as sc
    assert parse_mount_options(volmod.tmpfs_options("ro,size=1m")) == (
        sc.MS_NOEXEC | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_RDONLY, [], "size=1m")
    assert volmod.oci_mount({"Type": "volume", "Source": "/v/_data", "Destination": "/d", "RW": False}) == {
        "destination": "/d", "type": "bind", "source": "/v/_data", "options": ["rbind", "ro", "rprivate"]}


def test_named_volume_outlives_containers(md):
    assert md.ok("volume", "create", "keep") == "keep\n"
    md.ok("run", "--rm", "--network", "none", "-v", "keep:/data", "busybox", "sh", "-c", "echo persisted > /data/f")
    assert md.ok("run", "--rm", "--network", "none", "-v", "keep:/data", "busybox", "cat", "/data/f") == "persisted\n"
    r = md("run", "--rm", "--network", "none", "-v", "keep:/data:ro", "busybox", "sh", "-c", "echo x > /data/g")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    info = json.loads(md.ok("volume", "inspect", "keep"))[0]
    assert info["Mountpoint"] == os.path.join(md.root, "volumes", "keep", "_data")
    assert open(os.path.join(info["Mountpoint"], "f")).read() == "persisted\n"
    cid = md.ok("create", "-v", "keep:/data", "busybox", "true").strip()
    r = md("volume", "rm", "keep")
    assert r.returncode == 1 and "volume is in use" in r.stderr
    md.ok("rm", cid)
    assert md.ok("volume", "rm", "keep") == "keep\n"


def test_bind_mount_and_symlink_tricks(md, tmp_path):
    host = tmp_path / "shared"
    host.mkdir()
    (host / "in").write_text("from host\n")
    out = md.ok("run", "--rm", "--network", "none", "-v", f"{host}:/mnt", "busybox", "sh", "-c",
                "cat /mnt/in; echo from container > /mnt/out")
    assert out == "from host\n" and (host / "out").read_text() == "from container\n"
    missing = tmp_path / "created-by-v"
    md.ok("run", "--rm", "--network", "none", "-v", f"{missing}:/x", "busybox", "true")
    assert missing.is_dir()  # -v creates a missing host directory, as docker does
    r = md("run", "--rm", "--network", "none", "--mount", f"type=bind,source={tmp_path}/nope,target=/x",
           "busybox", "true")
    assert r.returncode == 125 and "bind source path does not exist" in r.stderr
    # an image whose /data is a symlink to /etc: the volume must land inside the container
    md.ok("run", "--name", "linker", "--network", "none", "busybox", "ln", "-s", "/etc", "/data")
    md.ok("commit", "linker", "linky:1")
    md.ok("rm", "linker")
    out = md.ok("run", "--rm", "--network", "none", "-v", f"{host}:/data", "linky:1", "cat", "/etc/in")
    assert out == "from host\n"  # mounted on the container's /etc, never the host's
    assert not os.path.exists("/etc/in")


def test_tmpfs_and_anonymous_volumes(md):
    out = md.ok("run", "--rm", "--network", "none", "--tmpfs", "/cache:size=1m", "busybox", "sh", "-c",
                "grep ' /cache ' /proc/mounts; dd if=/dev/zero of=/cache/big bs=1M count=2 2>&1 | grep -c 'No space'")
    assert out.startswith("tmpfs /cache tmpfs rw,nosuid,nodev,noexec") and "size=1024k" in out
    assert out.splitlines()[-1] == "1"
    before = set(md.ok("volume", "ls", "-q").split())
    cid = md.ok("create", "--network", "none", "-v", "/etc", "busybox", "ls", "/etc").strip()
    mounts = json.loads(md.ok("inspect", cid))[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Type"] == "volume" and len(mounts[0]["Name"]) == 64
    assert "passwd" in md.ok("start", "-a", cid).split()  # filled from the image the first time
    md.ok("rm", "-v", cid)
    assert set(md.ok("volume", "ls", "-q").split()) == before  # -v removed the anonymous one
    md.ok("run", "--rm", "--network", "none", "-v", "/anon", "busybox", "true")
    assert set(md.ok("volume", "ls", "-q").split()) == before  # so does --rm


def test_volume_prune_and_system_prune_volumes(tmp_path):
    """docker >= 23: prune takes unused anonymous volumes; -a named ones too; never one in use."""
    from conftest import MD
    md = MD(str(tmp_path / "root"))
    def anonymous_volume():  # from -v /path; `rm` without -v leaves it behind
        c = md.ok("create", "--network", "none", "-v", "/anon", "busybox", "true").strip()
        name = json.loads(md.ok("inspect", c))[0]["Mounts"][0]["Name"]
        md.ok("rm", c)
        return name
    anon = anonymous_volume()
    unnamed = md.ok("volume", "create").strip()  # named at random, but not anonymous (as in docker)
    md.ok("volume", "create", "keepme")
    md.ok("volume", "create", "used")
    # running: system prune removes stopped (and created) containers, as docker's does
    cid = md.ok("run", "-d", "--network", "none", "-v", "used:/data", "busybox", "sleep", "60").strip()
    assert anon in md.ok("volume", "prune", "-f")
    assert sorted(md.ok("volume", "ls", "-q").split()) == sorted(["keepme", "used", unnamed])
    anon2 = anonymous_volume()
    assert anon2 in md.ok("system", "prune", "-f", "--volumes")
    assert sorted(md.ok("volume", "ls", "-q").split()) == sorted(["keepme", "used", unnamed])
    out = md.ok("volume", "prune", "-f", "-a")
    assert "keepme" in out and unnamed in out and "used" not in out
    assert md.ok("volume", "ls", "-q").split() == ["used"]
    md.ok("rm", "-f", cid)
    md.ok("volume", "rm", "used")
    md.ok("system", "prune", "-f")


def test_workdir_under_a_volume_is_made_inside(md):
    out = md.ok("run", "--rm", "--network", "none", "-v", "wdvol:/data", "-w", "/data/sub/dir", "busybox", "pwd")
    assert out == "/data/sub/dir\n"
    assert md.ok("run", "--rm", "--network", "none", "-v", "wdvol:/data", "busybox", "ls", "/data/sub") == "dir\n"
    md.ok("volume", "rm", "wdvol")


def test_an_empty_volume_made_earlier_is_filled_from_the_image_as_dockerd_fills_it(both):
    """dockerd fills *every* empty volume at create (populateVolumes/copyExistingContents), not
    only one it has just made: a `volume create`d one gets the image's files too; one that has
    files is left alone; volume-nocopy fills nothing. Beside the private dockerd."""
    md, docker, _ = both
    seen = {}
    for name, run in (("minidocker", lambda *a: md.ok(*a)), ("docker", lambda *a: docker(*a).stdout)):
        run("volume", "create", "nb07-early")
        run("volume", "create", "nb07-nocopy")
        seen[name] = [
            run("run", "--rm", "--network", "none", "-v", "nb07-early:/etc", "busybox", "ls", "/etc").split(),
            run("run", "--rm", "--network", "none", "-v", "nb07-early:/etc", "busybox", "sh", "-c",
                "rm /etc/passwd; ls /etc").split(),
            run("run", "--rm", "--network", "none", "-v", "nb07-early:/etc", "busybox", "ls", "/etc").split(),
            run("run", "--rm", "--network", "none", "--mount", "type=volume,src=nb07-nocopy,dst=/etc,volume-nocopy",
                "busybox", "ls", "/etc").split(),
        ]
        run("volume", "rm", "nb07-early", "nb07-nocopy")
    assert "passwd" in seen["minidocker"][0] and "passwd" not in seen["minidocker"][2]  # filled once, then kept
    assert "passwd" not in seen["minidocker"][3]
    assert seen["minidocker"] == seen["docker"]
