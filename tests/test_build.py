"""`minidocker build` for real, as root: stages, cache, args, ENTRYPOINT/CMD, .dockerignore,
hostile contexts, ADD, errors."""
import http.server
import json
import os
import tarfile
import threading

import pytest

pytestmark = pytest.mark.root

MULTISTAGE = """\
# the seed's multi-stage example, offline: the "compiler" is sed, the base is busybox
ARG GREETING=hello
FROM busybox AS builder
ARG GREETING
WORKDIR /app
COPY main.sh .
RUN echo "compiling with $GREETING" && sed "s/@GREETING@/$GREETING/" main.sh > /app/main && chmod +x /app/main

# nothing from the stage above is kept but what COPY --from takes
FROM scratch
COPY --from=builder /bin/busybox /bin/sh
WORKDIR /app
COPY --from=builder /app/main .
ENV MODE=prod
ENTRYPOINT ["/bin/sh", "/app/main"]
CMD ["world"]
"""


def write(ctx, files: dict):
    for name, text in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return str(ctx)


def img(md, ref):
    return json.loads(md.ok("image", "inspect", ref))[0]


def build(md, ctx, *args):
    return md("build", *args, "--network", "none", ctx, timeout=120)


def test_multistage_build_runs_and_is_small(md, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": MULTISTAGE, "main.sh": 'echo "@GREETING@ $1 ($MODE)"\n'})
    r = build(md, ctx, "-t", "ms:1")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Step 1/13 : ARG GREETING=hello" in out and "compiling with hello" in out
    assert "Successfully tagged ms:1" in out and " ---> Running in " in out
    assert md.ok("run", "--rm", "--network", "none", "ms:1") == "hello world (prod)\n"
    assert md.ok("run", "--rm", "--network", "none", "ms:1", "there") == "hello there (prod)\n"
    files = md.ok("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", "ms:1", "-c",
                  "cd / && for f in /* /app/*; do echo $f; done")
    assert "/src" not in files and "/app/main" in files  # the builder stage's files stay behind
    i = img(md, "ms:1")
    assert i["Config"]["Entrypoint"] == ["/bin/sh", "/app/main"] and i["Config"]["Cmd"] == ["world"]
    assert "MODE=prod" in i["Config"]["Env"] and i["Config"]["WorkingDir"] == "/app"
    assert len(i["RootFS"]["Layers"]) == 3  # two COPYs and WORKDIR /app (a directory scratch lacks)
    # --target stops at the builder stage; --build-arg reaches both ARGs
    r = build(md, ctx, "--target", "builder", "--build-arg", "GREETING=hi", "-t", "ms:builder")
    assert r.returncode == 0 and "compiling with hi" in r.stdout
    assert md.ok("run", "--rm", "--network", "none", "ms:builder", "sh", "/app/main", "x") == "hi x ()\n"
    hist = md.ok("history", "ms:1").splitlines()
    assert "CMD" in hist[1] and "ENTRYPOINT" in hist[2]


def test_cache_hits_and_misses(md, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo one > /one\nCOPY data.txt /data.txt\n"
                                         "RUN cat /data.txt > /copy\n",
                           "data.txt": "v1\n"})
    first = build(md, ctx, "-t", "cache:1")
    assert first.returncode == 0 and "Using cache" not in first.stdout
    second = build(md, ctx, "-t", "cache:1")
    assert second.stdout.count("Using cache") == 3 and "Running in" not in second.stdout
    os.utime(os.path.join(ctx, "data.txt"), (1, 1))  # only the mtime changes: still cached
    assert build(md, ctx).stdout.count("Using cache") == 3
    (tmp_path / "data.txt").write_text("v2\n")  # the content changes: COPY and after re-run
    third = build(md, ctx, "-t", "cache:2")
    assert third.stdout.count("Using cache") == 1  # only the RUN before COPY
    assert md.ok("run", "--rm", "--network", "none", "cache:2", "cat", "/copy") == "v2\n"
    fourth = build(md, ctx, "--no-cache", "-t", "cache:3")
    assert "Using cache" not in fourth.stdout
    assert img(md, "cache:3")["Id"] != img(md, "cache:2")["Id"]  # fresh timestamps


def test_instruction_order_matters_for_the_cache(md, tmp_path):
    """The lesson of the seed's best practices: put what changes last."""
    bad = "FROM busybox\nCOPY . /src\nRUN echo installing-deps > /deps\n"
    good = "FROM busybox\nRUN echo installing-deps > /deps\nCOPY . /src\n"
    for name, text in (("bad", bad), ("good", good)):
        ctx = tmp_path / name
        ctx.mkdir()
        write(ctx, {"Dockerfile": text, "code.txt": "1"})
        build(md, str(ctx))
        (ctx / "code.txt").write_text("2")
        out = build(md, str(ctx)).stdout
        ran = out.count("Running in")
        assert ran == (1 if name == "bad" else 0), (name, out)


@pytest.mark.parametrize("dockerfile,argv,config", [
    ('FROM busybox\nCMD ["echo", "cmd"]\n', "echo cmd", (None, ["echo", "cmd"])),
    ('FROM busybox\nENTRYPOINT ["echo", "ep"]\nCMD ["x"]\n', "echo ep x", (["echo", "ep"], ["x"])),
    ('FROM busybox\nENTRYPOINT echo shell-ep\nCMD ["ignored"]\n', "/bin/sh -c echo shell-ep ignored",
     (["/bin/sh", "-c", "echo shell-ep"], ["ignored"])),
    ('FROM busybox\nENTRYPOINT ["echo"]\nCMD shell cmd\n', "echo /bin/sh -c shell cmd",
     (["echo"], ["/bin/sh", "-c", "shell cmd"])),
    ('FROM busybox\nENTRYPOINT ["echo", "inherited-cmd-reset"]\n', "echo inherited-cmd-reset",
     (["echo", "inherited-cmd-reset"], None)),
])
def test_entrypoint_cmd_table(md, tmp_path, dockerfile, argv, config):
    ctx = write(tmp_path, {"Dockerfile": dockerfile})
    r = build(md, ctx, "-t", "epcmd:t")
    assert r.returncode == 0, r.stderr
    i = img(md, "epcmd:t")
    assert (i["Config"]["Entrypoint"], i["Config"]["Cmd"]) == config
    cid = md.ok("create", "--network", "none", "epcmd:t").strip()
    try:
        rec = json.loads(md.ok("inspect", cid))[0]
        assert " ".join([rec["Path"]] + rec["Args"]) == argv
    finally:
        md.ok("rm", cid)


def test_config_instructions(md, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": """\
FROM busybox
LABEL org.example.team="course" version=1
EXPOSE 80 53/udp
ENV A=1 B="two words"
ENV C $A-x
USER daemon
VOLUME ["/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --retries=2 CMD wget -q -O- http://localhost/ || exit 1
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
WORKDIR /a
WORKDIR b
"""})
    assert build(md, ctx, "-t", "cfg:1").returncode == 0
    c = img(md, "cfg:1")["Config"]
    assert c["Labels"] == {"org.example.team": "course", "version": "1"}
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert "B=two words" in c["Env"] and "C=1-x" in c["Env"]
    assert (c["User"], c["Volumes"], c["StopSignal"], c["WorkingDir"]) == ("daemon", {"/data": {}}, "SIGINT", "/a/b")
    assert c["Healthcheck"]["Test"] == ["CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"]
    assert c["Healthcheck"]["Interval"] == 5_000_000_000 and c["Healthcheck"]["Retries"] == 2
    assert c["Shell"] == ["/bin/sh", "-ec"] and c["OnBuild"] == ["RUN echo child"]
    child = tmp_path / "child"
    child.mkdir()
    write(child, {"Dockerfile": "FROM cfg:1\n"})
    out = build(md, str(child), "-t", "cfg:child").stdout
    assert "Executing 1 build trigger" in out and "child" in out
    assert img(md, "cfg:child")["Config"].get("OnBuild") in (None, [])


def test_copy_chown_chmod_and_dirs(md, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY --chown=daemon:daemon f.txt /owned\n"
                                         "COPY --chmod=0750 f.txt /moded\nCOPY dir /target/\nCOPY *.md /docs/\n",
                           "f.txt": "f\n", "dir/a": "a", "dir/sub/b": "b", "x.md": "x", "y.md": "y"})
    assert build(md, ctx, "-t", "cp:1").returncode == 0
    out = md.ok("run", "--rm", "--network", "none", "cp:1", "sh", "-c",
                "stat -c '%u:%g %a %n' /owned /moded; find /target /docs | sort")
    lines = out.splitlines()
    assert lines[0] == "1:1 644 /owned" and lines[1] == "0:0 750 /moded"
    assert lines[2:] == ["/docs", "/docs/x.md", "/docs/y.md", "/target", "/target/a", "/target/sub", "/target/sub/b"]


def test_copy_into_directories_of_the_image_and_from_a_stage_is_cached(md, tmp_path):
    """A dest that is a directory of the image without saying so (/etc, /tmp) and COPY --from:
    the files land where they should, and a rebuild finds every step in the cache (whether dest
    is a directory is asked of the image only to build the step)."""
    dockerfile = ("FROM busybox AS a\nRUN echo made > /made\nFROM busybox\nCOPY f.txt /etc\n"
                  "COPY f.txt g.txt /tmp\nCOPY --from=a /made /opt/made\n")
    ctx = write(tmp_path, {"Dockerfile": dockerfile, "f.txt": "f\n", "g.txt": "g\n"})
    first = build(md, ctx, "-t", "cpdir:1")
    assert first.returncode == 0, first.stderr
    out = md.ok("run", "--rm", "--network", "none", "cpdir:1", "cat", "/etc/f.txt", "/tmp/f.txt", "/tmp/g.txt",
                "/opt/made")
    assert out == "f\nf\ng\nmade\n"
    assert build(md, ctx, "-t", "cpdir:1").stdout.count("Using cache") == 4
    # the stage re-run (a new image, the same files): COPY --from still hits by their checksum
    write(tmp_path, {"Dockerfile": dockerfile.replace("echo made >", "echo made  >")})
    again = build(md, ctx, "-t", "cpdir:2")
    assert again.stdout.count("Using cache") == 3 and img(md, "cpdir:2")["Id"] == img(md, "cpdir:1")["Id"]
    # several sources into what is a file of the image: Docker's error, cached or not
    write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY f.txt g.txt /bin/sh\n"})
    r = build(md, ctx)
    assert r.returncode == 1 and "must be a directory and end with a /" in r.stdout + r.stderr


def test_dockerignore(md, tmp_path):
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nCOPY . /ctx\n",
                           ".dockerignore": "# secrets stay home\nsecret.txt\nlogs\n!logs/keep.log\n**/*.tmp\n",
                           "secret.txt": "s", "app.txt": "a", "logs/a.log": "x", "logs/keep.log": "k",
                           "deep/x.tmp": "t"})
    assert build(md, ctx, "-t", "ign:1").returncode == 0
    files = md.ok("run", "--rm", "--network", "none", "ign:1", "find", "/ctx", "-type", "f").split()
    assert sorted(files) == ["/ctx/.dockerignore", "/ctx/Dockerfile", "/ctx/app.txt", "/ctx/logs/keep.log"]
    (tmp_path / "secret.txt").write_text("changed")  # ignored files do not break the cache
    assert "Using cache" in build(md, ctx).stdout


def test_hostile_context_cannot_leak_host_files(md, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /ctx\n"})
    os.symlink(str(outside), ctx / "leak")
    os.symlink("/etc", ctx / "etcdir")
    assert build(md, str(ctx), "-t", "host:1").returncode == 0
    out = md.ok("run", "--rm", "--network", "none", "host:1", "sh", "-c",
                "readlink /ctx/leak; cat /ctx/leak 2>&1; ls /ctx/etcdir/ 2>&1 | head -3")
    assert str(outside) in out and "host secret" not in out  # a link, never its target
    # naming the link as a source: resolved inside the context, where it points nowhere
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY leak /x\n"})
    r = build(md, str(ctx))
    assert r.returncode == 1 and "not found in build context" in r.stdout + r.stderr
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY ../outside.txt /x\n"})
    r = build(md, str(ctx))
    assert r.returncode == 1 and "outside the build context" in r.stdout + r.stderr


def test_add_archives_and_urls(md, tmp_path):
    with tarfile.open(tmp_path / "bundle.tar.gz", "w:gz") as tf:
        p = tmp_path / "payload.txt"
        p.write_text("from the tarball\n")
        tf.add(p, arcname="pkg/payload.txt")

    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/payload.txt"
        ctx = write(tmp_path, {"Dockerfile": f"FROM busybox\nADD bundle.tar.gz /opt/\nADD {url} /dl/\n"})
        assert build(md, ctx, "-t", "add:1").returncode == 0
        out = md.ok("run", "--rm", "--network", "none", "add:1", "cat", "/opt/pkg/payload.txt", "/dl/payload.txt")
        assert out == "from the tarball\nfrom the tarball\n"
    finally:
        srv.shutdown()
        srv.server_close()
    write(tmp_path, {"Dockerfile": f"FROM busybox\nADD {url} /dl/\n"})  # the server is gone now
    r = build(md, str(tmp_path))
    assert r.returncode == 1 and "ADD failed: failed to GET" in r.stdout + r.stderr


def test_errors(md, tmp_path):
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUNN echo hi\n"})
    r = build(md, str(tmp_path))
    assert r.returncode == 1 and r.stderr.strip().endswith("Dockerfile:2: unknown instruction: RUNN")
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo about to fail; exit 3\n"})
    before = md.ok("ps", "-aq")
    r = build(md, str(tmp_path))
    assert r.returncode == 1 and "returned a non-zero code: 3" in r.stderr
    assert md.ok("ps", "-aq") == before  # the step's container is gone
    r = build(md, str(tmp_path), "--target", "nosuch")
    assert r.returncode == 1 and 'target stage "nosuch" could not be found' in r.stderr
    r = build(md, str(tmp_path), "--platform", "linux/s390x")
    assert r.returncode == 1 and "not supported" in r.stderr
    r = md("build", str(tmp_path / "nope"))
    assert r.returncode == 1 and "unable to prepare context" in r.stderr
    write(tmp_path, {"Dockerfile": "FROM busybox\nARG USED\nRUN true\n"})
    r = build(md, str(tmp_path), "--build-arg", "UNUSED=1", "--build-arg", "USED=2")
    assert "[Warning] One or more build-args ['UNUSED'] were not consumed" in r.stdout


def test_build_api_streams_events(state_root, tmp_path):
    import minidocker
    write(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo streamed\n"})
    client = minidocker.from_env(state_root)
    events = list(client.images.build_stream(str(tmp_path), tag="api:1", network_mode="none", nocache=True))
    text = "".join(e.get("stream", "") for e in events)
    assert "Step 2/2 : RUN echo streamed" in text and "streamed\n" in text
    assert events[-1]["aux"]["ID"] == client.images.get("api:1").id


def test_arg_is_a_cached_step_of_its_own(md, tmp_path):
    """In Docker's classic builder an ARG after FROM commits a config-only image of its own
    (`/bin/sh -c #(nop)  ARG V=7` in history) and hits the cache on a rebuild; the values,
    --build-arg ones included, are in the cache keys of the RUN steps after it."""
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nARG V=7 W\nRUN echo v=$V w=$W\n"})
    first = build(md, ctx, "-t", "argstep:1")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    i = lines.index("Step 2/3 : ARG V=7 W")
    assert lines[i + 1].startswith(" ---> Running in ") and lines[i + 2].startswith("Removing intermediate container ")
    assert lines[i + 3].startswith(" ---> ") and lines[i + 4] == "Step 3/3 : RUN echo v=$V w=$W"
    assert "v=7 w=\n" in first.stdout
    base, arg_id = img(md, "busybox")["Id"], lines[i + 3].split()[1]
    assert arg_id != base[7:19]  # a new image...
    arg_img = img(md, arg_id)
    assert arg_img["RootFS"]["Layers"] == img(md, "busybox")["RootFS"]["Layers"]  # ...without a layer
    assert arg_img["Config"]["Env"] == img(md, "busybox")["Config"]["Env"]  # ARG is not ENV
    hist = md.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "argstep:1").splitlines()
    assert hist[:2] == ["|1 V=7 /bin/sh -c echo v=$V w=$W|0B", "/bin/sh -c #(nop)  ARG V=7 W|0B"]
    built = img(md, "argstep:1")["Id"]
    second = build(md, ctx, "-t", "argstep:1")
    assert second.stdout.count(" ---> Using cache") == 2 and "Running in" not in second.stdout
    assert f" ---> {arg_id}\n" in second.stdout and img(md, "argstep:1")["Id"] == built
    # another value: the ARG step still hits (its text is the same), the RUN does not
    third = build(md, ctx, "--build-arg", "V=8", "--build-arg", "W=x", "-t", "argstep:2")
    lines = third.stdout.splitlines()
    assert lines[lines.index("Step 2/3 : ARG V=7 W") + 1] == " ---> Using cache"
    assert third.stdout.count("Using cache") == 1 and "v=8 w=x\n" in third.stdout
    hist = md.ok("history", "--no-trunc", "--format", "{{.CreatedBy}}", "argstep:2").splitlines()
    assert hist[:2] == ["|2 V=8 W=x /bin/sh -c echo v=$V w=$W", "/bin/sh -c #(nop)  ARG V=7 W"]
    # a line is substituted as a whole with what came before it: B gets no $A from its own line
    write(tmp_path, {"Dockerfile": "FROM busybox\nENV E=e\nARG A=1 B=${A}-$E\nRUN echo a=$A b=$B\n"})
    r = build(md, ctx, "-t", "argstep:3")
    assert r.returncode == 0 and "a=1 b=-e\n" in r.stdout
    assert "/bin/sh -c #(nop)  ARG A=1 B=-e" in md.ok("history", "--no-trunc", "argstep:3")


def test_workdir_and_empty_run_layers_as_the_classic_builder(md, tmp_path):
    """Which steps make a layer, as Docker 20.10's classic builder decides it (compared with a
    private dockerd): WORKDIR of a directory the image lacks makes a layer holding the missing
    directories (root's, 0755), WORKDIR of an existing one an empty layer; a RUN that changes no
    file makes an empty layer (NewChildImage drops it: history "empty_layer": true, no DiffID)."""
    ctx = write(tmp_path, {"Dockerfile": "FROM busybox\nWORKDIR /work\nWORKDIR /work\nWORKDIR /etc\n"
                                         "WORKDIR /a/b\nRUN true\nUSER nobody\nWORKDIR /c\n"})
    r = build(md, ctx, "-t", "wdlayers:1")
    assert r.returncode == 0, r.stderr
    i = img(md, "wdlayers:1")
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    cfg = ImageStore(StateRoot(md.root)).resolve("wdlayers:1").config
    steps = [(h["created_by"].split("#(nop) ")[-1].strip(), h.get("empty_layer", False)) for h in cfg["history"][2:]]
    assert steps == [("WORKDIR /work", False), ("WORKDIR /work", True), ("WORKDIR /etc", True),
                     ("WORKDIR /a/b", False), ("/bin/sh -c true", True), ("USER nobody", True), ("WORKDIR /c", False)]
    assert len(i["RootFS"]["Layers"]) == 1 + 3
    out = md.ok("run", "--rm", "--network", "none", "--entrypoint", "sh", "wdlayers:1", "-c",
                "ls -dn /work /a/b /c; pwd")
    assert [ln.split()[0] + " " + ln.split()[2] + " " + ln.split()[-1] for ln in out.splitlines()[:3]] == \
        ["drwxr-xr-x 0 /a/b", "drwxr-xr-x 0 /c", "drwxr-xr-x 0 /work"]
    assert out.splitlines()[3] == "/c"
    again = build(md, ctx, "-t", "wdlayers:1")
    assert again.stdout.count("Using cache") == 7 and img(md, "wdlayers:1")["Id"] == i["Id"]
