"""`cp` for real, both ways, beside the private real dockerd: the same files, modes and owners
land in the same places, symlinks are resolved inside the container's root only, a stopped
container works too, and the refusals are Docker's."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from minidocker.engine import cp

N = ["--network", "none"]
SETUP = ("mkdir -p /d/sub && echo hi > /d/f && echo s > /d/sub/g && chown 1000:1001 /d/f && chmod 4755 /d/f "
         "&& ln -s /etc /d/etclink && ln -s /d/f /flink && sleep 100")


def test_where_a_copy_lands():
    """Docker's rules (pure): into an existing directory, or under the destination's name."""
    assert cp.resolve_dest("f", False, False, "/tmp", "dir", True) == ("/tmp", None)
    assert cp.resolve_dest("f", False, False, "/tmp/new", None, True) == ("/tmp", "new")
    assert cp.resolve_dest("d", True, True, "/tmp", "dir", True) == ("/tmp", ".")     # "d/." : contents
    assert cp.resolve_dest("f", False, False, "/tmp/old", "file", True) == ("/tmp", "old")
    for args, message in [(("d", True, False, "/tmp/old", "file", True), "cannot copy directory"),
                          (("f", False, False, "/nodir/", None, False), "no such directory")]:
        with pytest.raises(cp.CopyError, match=message):
            cp.resolve_dest(*args)
    assert cp.split_arg("web:/etc/hosts") == ("web", "/etc/hosts")
    assert cp.split_arg("/abs:path") == (None, "/abs:path") and cp.split_arg("./a:b") == (None, "./a:b")
    assert cp.renamed("d/sub/g", "d", "new") == "new/sub/g" and cp.renamed("d", "d", ".") is None
    assert not cp.safe_member("../x") and not cp.safe_member("/etc/passwd") and cp.safe_member("a/b")


def listing(top: str) -> list[tuple]:
    out = []
    for dirpath, dirs, files in os.walk(top):
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out.append((os.path.relpath(p, top), oct(st.st_mode), st.st_uid, st.st_gid,
                        os.readlink(p) if os.path.islink(p) else (st.st_size if os.path.isfile(p) else None)))
    return sorted(out)


def container_listing(rt, name: str, path: str) -> list[str]:
    argv = ["exec", name, "sh", "-c", f"cd {path} && find . | sort | while read f; do "
            "stat -c '%n %a %u %g %s %F' \"$f\"; done"]
    return (rt.ok(*argv) if hasattr(rt, "ok") else rt(*argv).stdout).splitlines()


@pytest.fixture
def both(md, docker, tmp_path):
    dk = lambda *a: docker.docker(*a, check=False)  # noqa: E731
    for rt in (md, dk):
        assert rt("run", "-d", "--name", "cp-box", *N, "busybox", "sh", "-c", SETUP).returncode == 0
    import time
    time.sleep(1)
    yield md, dk, tmp_path
    for rt in (md, dk):
        rt("rm", "-f", "cp-box")


OUT = [("cp-box:/d/f", "out"), ("cp-box:/d", "out"), ("cp-box:/d/.", "out"), ("cp-box:/flink", "out"),
       ("-L", "cp-box:/flink", "out"), ("cp-box:/d/etclink/hostname", "out")]


@pytest.mark.root
@pytest.mark.docker
@pytest.mark.parametrize("args", OUT, ids=lambda a: " ".join(a))
def test_copy_out_as_docker(both, args):
    md, dk, tmp = both
    results = {}
    for who, rt in (("ours", md), ("theirs", dk)):
        dest = tmp / who
        dest.mkdir()
        r = rt("cp", *args[:-1], str(dest / args[-1]))
        assert r.returncode == 0, r.stderr
        results[who] = listing(str(dest))
    assert results["ours"] == results["theirs"]


IN = [("file", "cp-box:/tmp/"), ("dir", "cp-box:/tmp/"), ("dir/.", "cp-box:/tmp/dd"), ("file", "cp-box:/tmp/renamed"),
      ("file", "cp-box:/d/etclink/"), ("dir", "cp-box:/tmp/newdir/")]


@pytest.mark.root
@pytest.mark.docker
def test_copy_in_as_docker(both):
    md, dk, tmp = both
    src = tmp / "h"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "file").write_text("host\n")
    os.chown(src / "file", 1234, 1235)
    os.chmod(src / "file", 0o4750)
    (src / "dir" / "sub" / "x").write_text("x")
    os.symlink("/etc/passwd", src / "dir" / "link")
    for s, dest in IN:
        for rt in (md, dk):
            r = rt("cp", str(src / s), dest)
            assert r.returncode == 0, (s, dest, r.stderr)
    for path in ("/tmp", "/etc/file"):
        ours = container_listing(md, "cp-box", path) if path == "/tmp" else md.ok("exec", "cp-box", "stat", "-c",
                                                                                    "%a %u %g %s", path)
        theirs = container_listing(dk, "cp-box", path) if path == "/tmp" else dk("exec", "cp-box", "stat", "-c",
                                                                                  "%a %u %g %s", path).stdout
        assert ours == theirs, path


@pytest.mark.root
@pytest.mark.docker
@pytest.mark.parametrize("args,rc,said", [
    (["cp-box:/nope", "{tmp}/x"], 1, "No such container:path: cp-box:/nope"),
    (["cp-box:/d/f", "{tmp}/nodir/"], 1, "no such directory"),
    (["cp-box:/d/f", "{tmp}/nodir/x"], 1, 'invalid output path: directory "{tmp}/nodir" does not exist'),
    (["cp-nope:/d", "{tmp}/x"], 1, "No such container:path: cp-nope:/d"),
    (["{tmp}/a", "{tmp}/b"], 1, "must specify at least one container source"),
    (["cp-box:/d", "cp-box:/e"], 1, "copying between containers is not supported"),
    (["{tmp}/hf", "cp-box:/nodir/"], 1, "no such directory"),
    (["{tmp}/h", "cp-box:/nodir/x"], 1, "No such container:path: cp-box:/nodir"),
    (["{tmp}/h", "cp-box:/d/f"], 1, "cannot copy directory"),
    (["{tmp}/nope", "cp-box:/tmp/"], 1, "lstat {tmp}/nope: no such file or directory"),
])
def test_refusals_as_docker(both, args, rc, said):
    md, dk, tmp = both
    (tmp / "h").mkdir(exist_ok=True)
    (tmp / "hf").write_text("f")
    argv = [a.replace("{tmp}", str(tmp)) for a in args]
    m, d = md("cp", *argv), dk("cp", *argv)
    assert m.returncode == d.returncode == rc, (m.stderr, d.stderr)
    said = said.replace("{tmp}", str(tmp))
    assert said in m.stderr and said in d.stderr and len(m.stderr.strip().splitlines()) == 1, (m.stderr, d.stderr)


@pytest.mark.root
def test_tar_streams_a_stopped_container_and_a_volume(md, tmp_path):
    md.ok("run", "--name", "cp-stopped", *N, "-v", "cp-vol:/data", "busybox", "sh", "-c",
          "echo in-volume > /data/v && echo in-layer > /layer")
    try:
        tar = md("cp", "cp-stopped:/data", "-")   # (text mode: a tar of small text files survives)
        names = sorted(m.name for m in tarfile.open(fileobj=io.BytesIO(tar.stdout.encode()), mode="r|"))
        assert names == ["data", "data/v"], names
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            data = b"streamed\n"
            info = tarfile.TarInfo("s/x")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            evil = tarfile.TarInfo("../../escape")
            evil.size = 1
            tf.addfile(evil, io.BytesIO(b"!"))
        import subprocess
        import sys
        p = subprocess.run([sys.executable, "-m", "minidocker", "cp", "-", "cp-stopped:/data"], env=md.env,
                           input=buf.getvalue(), capture_output=True)
        assert p.returncode == 1 and b"outside the destination" in p.stderr
        md.ok("start", "-a", "cp-stopped")
        assert md.ok("cp", "cp-stopped:/layer", str(tmp_path / "layer")) == ""
        assert (tmp_path / "layer").read_text() == "in-layer\n"
        assert md.ok("run", "--rm", *N, "-v", "cp-vol:/data", "busybox", "cat", "/data/s/x") == "streamed\n"
    finally:
        md("rm", "-f", "cp-stopped")
        md("volume", "rm", "cp-vol")


@pytest.mark.root
def test_copy_into_a_container_in_a_restart_loop(md, tmp_path):
    """Its process comes and goes while we copy (notebook 09's fix): a PID read from its record
    may be gone by the time the helper joins it; the copy then lands in its root all the same."""
    (tmp_path / "app.conf").write_text("mode=production\n")
    md.ok("run", "-d", "--name", "cp-loop", *N, "--restart", "always", "busybox", "sh", "-c",
          "cat /etc/app.conf 2>/dev/null; sleep 0.05; exit 2")
    try:
        for _ in range(15):
            r = md("cp", str(tmp_path / "app.conf"), "cp-loop:/etc/app.conf")
            assert r.returncode == 0, r.stderr
    finally:
        md("rm", "-f", "cp-loop")
