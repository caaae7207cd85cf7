"""Bad input (issue "Hardening"): hostile flag values, files, archives and Dockerfiles get ONE
clear error line and Docker's exit code -- never a traceback, never a hang, never a
half-made container, image, layer or volume.

Three parts:
  * unit tests of each fix, on the pure parsers (no root);
  * a corpus of hostile command lines, run through the real CLI against the session's state
    root: exit code, one line on stderr, bounded time, and the state root unchanged; where
    Docker agrees, the same command line is run by a private real dockerd and the exit codes
    compared;
  * a bounded hypothesis fuzz of the pure parsers: any input parses or raises MinidockerError.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from minidocker.errors import InvalidArgument, MinidockerError

# --------------------------------------------------------------------------- hostile files


def tar_of(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A plain tar holding `files` (name -> content) and `symlinks` (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


THREE = tar_of({"a": b"a" * 3000, "b": b"b" * 10, "c": b"c" * 10})
END = 512 + 3072 + 2 * 1024  # after the last entry's data: the end-of-archive blocks start


def truncated_in_data() -> bytes:
    return THREE[:2000]                        # in the middle of "a"'s content


def truncated_in_header() -> bytes:
    return THREE[:512 + 3072 + 300]            # half of "b"'s header


def garbage_after_entries() -> bytes:
    return THREE[:END] + b"\x01" * 512 + b"\0" * 1024


def zero_block_then_garbage() -> bytes:
    return THREE[:END] + b"\0" * 512 + b"junk" * 128


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def image_config(diff_ids: list[str], **extra) -> bytes:
    cfg = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, **extra}
    return json.dumps(cfg).encode()


def image_archive(config: bytes | None = None, layers: list[bytes] = (), tags=("hostile:1",),
                  manifest=None) -> bytes:
    """A `docker save` (manifest.json) archive; by default a valid one."""
    layers = list(layers)
    if config is None:
        config = image_config([sha256(layer) for layer in layers])
    files = {"config.json": config}
    for i, layer in enumerate(layers):
        files[f"l{i}/layer.tar"] = layer
    if manifest is None:
        manifest = [{"Config": "config.json", "RepoTags": list(tags),
                     "Layers": [f"l{i}/layer.tar" for i in range(len(layers))]}]
    files["manifest.json"] = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    return tar_of(files)


def write(tmp, name: str, data: bytes | str) -> str:
    path = os.path.join(str(tmp), name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def context(tmp, dockerfile: bytes | str, **files) -> str:
    """A build context directory with this Dockerfile (and files)."""
    d = os.path.join(str(tmp), "ctx")
    write(d, "Dockerfile", dockerfile)
    for name, data in files.items():
        write(d, name, data)
    return d


# =========================================================================== unit tests (pure)

# --- container/hostconfig.py: --cpus, -m, --memory-swap, -c, --pids-limit

@pytest.mark.parametrize("text,error", [
    ("nan", "failed to parse nan as a rational number"),
    ("inf", "failed to parse inf as a rational number"),
    ("-inf", "as a rational number"),
    ("1e308", "Range of CPUs"),
    ("1e999999999", "Range of CPUs"),            # never computes 10**999999999
    ("1" * 5000, "as a rational number"),          # more digits than int() converts
    ("0.0000000001", "value is too precise"),
    ("1e-308", "value is too precise"),
    (" 1", "as a rational number"),
])
def test_cpus_refused(text, error):
    from minidocker.container import hostconfig
    with pytest.raises(InvalidArgument, match=error) as e:
        hostconfig.parse_cpus(text, 2)
    assert e.value.exit_code == 125


def test_cpus_rational_numbers_as_docker():
    from minidocker.container import hostconfig
    assert hostconfig.parse_cpus("1/2", 2) == 500_000_000
    assert hostconfig.parse_cpus("15e-1", 2) == 1_500_000_000
    assert hostconfig.parse_cpus(".5", 2) == 500_000_000


@pytest.mark.parametrize("text,error", [
    ("", "invalid size: ''"),
    (" 512m", "invalid size"), ("512m ", "invalid size"),
    ("99999999999999999999g", "value out of range"), ("8192p", "value out of range"),
    ("1" * 400, "value out of range"),             # float() says inf
    ("1.5.5g", "invalid size"),
    ("\u0663m", "invalid size"),                   # an Arabic-Indic 3: Go's \d is ASCII
])
def test_memory_refused(text, error):
    from minidocker.container import hostconfig
    with pytest.raises(InvalidArgument, match=error):
        hostconfig.parse_memory(text)


def test_memory_swap_empty_refused():
    from minidocker.container import hostconfig
    with pytest.raises(InvalidArgument, match="invalid size: ''"):
        hostconfig.resources(memory="512m", memory_swap="")
    assert hostconfig.ram_in_bytes("512 m") == 512 << 20   # go-units allows one space
    assert hostconfig.ram_in_bytes("8191p") == 8191 << 50


@pytest.mark.parametrize("value,error,code", [
    (99999999999, "maximum allowed cpu-shares is 262144", 1),
    (1, "minimum allowed cpu-shares is 2", 1),
    (-5, "shares: invalid argument", 1),
    (10 ** 20, "value out of range", 125),
])
def test_cpu_shares_refused(value, error, code):
    from minidocker.container import hostconfig
    with pytest.raises(InvalidArgument, match=error) as e:
        hostconfig.resources(cpu_shares=value)
    assert e.value.exit_code == code  # (1: a daemon error; `run` turns it into 125)


def test_pids_limit_int64():
    from minidocker.container import hostconfig
    with pytest.raises(InvalidArgument, match="value out of range"):
        hostconfig.parse_pids_limit(10 ** 20)
    assert hostconfig.parse_pids_limit("100") == 100


# --- container/runconfig.py: --env-file, --label, -u

def test_env_file_from_dev_zero_is_one_error_in_bounded_time():
    from minidocker.container import runconfig
    t = time.monotonic()
    with pytest.raises(InvalidArgument, match="^bufio.Scanner: token too long$"):
        runconfig.read_env_file("/dev/zero", {})
    assert time.monotonic() - t < 2


def test_env_file_from_dev_urandom_fails_at_the_first_bad_line():
    from minidocker.container import runconfig
    t = time.monotonic()
    with pytest.raises(InvalidArgument, match="(invalid utf8 bytes at line|token too long)"):
        runconfig.read_env_file("/dev/urandom", {})
    assert time.monotonic() - t < 2


def test_env_file_line_limit_is_dockers(tmp_path):
    from minidocker.container import runconfig
    ok = write(tmp_path, "ok", "A=" + "x" * (65535 - 2) + "\n")        # 65535 bytes: docker takes it
    assert runconfig.read_env_file(ok, {}) == ["A=" + "x" * 65533]
    bad = write(tmp_path, "bad", "A=" + "x" * (65536 - 2) + "\n")      # 65536: token too long
    with pytest.raises(InvalidArgument, match="token too long"):
        runconfig.read_env_file(bad, {})


def test_env_file_errors_are_dockers(tmp_path):
    from minidocker.container import runconfig
    with pytest.raises(InvalidArgument, match=f"^read {tmp_path}: is a directory$"):
        runconfig.read_env_file(str(tmp_path), {})
    with pytest.raises(InvalidArgument, match="no such file or directory"):
        runconfig.read_env_file(str(tmp_path / "missing"), {})
    binary = write(tmp_path, "bin", b"A=1\nB=\xff\xfe\n")
    with pytest.raises(InvalidArgument, match="invalid utf8 bytes at line 2"):
        runconfig.read_env_file(binary, {})


@pytest.mark.parametrize("label,error", [
    ("=x", "invalid label '=x': empty name"), ("=", "empty name"), (" =c", "empty name"),
    ("a b=c", "label 'a b' contains whitespaces"),
])
def test_label_refused(label, error):
    from minidocker.container import runconfig
    with pytest.raises(InvalidArgument, match=error):
        runconfig.parse_label(label)
    assert runconfig.parse_label("a") == ("a", "") and runconfig.parse_label("a=b=c") == ("a", "b=c")


PASSWD = "root:x:0:0:root:/root:/bin/sh\nodd:x:notanumber:zz:odd:/odd:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\nodd:x:??:odd\n"


@pytest.mark.parametrize("spec,expected", [
    ("root:nogroup", (0, 65534, [65534], "/root")),
    ("nobody:", (65534, 65534, [65534], "/")),            # an empty group: docker takes it too
    ("root:nogroup:extra", (0, 65534, [65534], "/root")),  # docker ignores what follows the group
    ("odd", (0, 0, [0], "/odd")),                         # malformed numbers count as 0 (moby)
])
def test_user_specs_as_docker(spec, expected):
    from minidocker.container import runconfig
    assert runconfig.resolve_user(spec, PASSWD, GROUP) == expected


@pytest.mark.parametrize("spec,error", [
    ("root:nosuchgroup", "unable to find group nosuchgroup"),
    ("ghost:", "unable to find user ghost"),
    ("-1", "uids and gids must be in range"),
    ("0:99999999999", "uids and gids must be in range"),
    ("\u00b2", "unable to find user"),          # a superscript 2: isdigit(), but no number
])
def test_user_specs_refused(spec, error):
    from minidocker.container import runconfig
    with pytest.raises(MinidockerError, match=error):
        runconfig.resolve_user(spec, PASSWD, GROUP)


def test_signal_with_odd_digits():
    from minidocker.container import runconfig
    for bad in ("\u00b2", "9" * 5000):
        with pytest.raises(InvalidArgument, match="Invalid signal"):
            runconfig.parse_signal(bad)


# --- images/reference.py

@pytest.mark.parametrize("ref", ["busybox\n", "busybox:\u0167", "busybox:1\n", "a" * 64 + "\n"])
def test_reference_refused(ref):
    """Go's \\w is ASCII and its $ is the end: a trailing newline or a non-ASCII tag is no reference."""
    from minidocker.images import reference
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        reference.parse(ref)


# --- network/ports.py, network/ipam.py

@pytest.mark.parametrize("spec", [" 80", "80 ", "8080: 80", "8080 :80", " 127.0.0.1:8080:80", "+80", "80-",
                                  "8_0", "\u0663", "8080:80-81", "80/ tcp", "99999999999999999999"])
def test_publish_refused(spec):
    from minidocker.network import ports
    with pytest.raises(InvalidArgument):
        ports.parse_publish(spec)


def test_publish_proto_case():
    from minidocker.network import ports
    assert ports.parse_publish("8080:80/TCP") == [("80/tcp", {"HostIp": "", "HostPort": "8080"})]


@pytest.mark.parametrize("subnet", ["127.0.0.0/8", "127.1.0.0/16", "224.0.0.0/24", "0.0.0.0/8", "240.1.0.0/16"])
def test_subnets_a_bridge_cannot_use(subnet):
    import ipaddress
    from minidocker.network import ipam
    with pytest.raises(InvalidArgument, match="which a network cannot use") as e:
        ipam.check_usable(ipaddress.ip_network(subnet))
    assert e.value.exit_code == 1
    ipam.check_usable(ipaddress.ip_network("10.5.0.0/24"))


def test_subnet_errors_exit_1():
    from minidocker.network import ipam
    with pytest.raises(InvalidArgument) as e:
        ipam.parse_subnet("10.99.0.0/33", None)
    assert e.value.exit_code == 1      # docker network create: a daemon error


# --- volumes.py: -v, --mount, --tmpfs

@pytest.mark.parametrize("spec,error", [
    ("/tmp:/proc/sys", "inside /proc"), ("/tmp:/proc/sys/kernel:ro", "inside /proc"),
    ("/tmp:/proc", "not of type proc"), ("vol:/proc/sys", "inside /proc"),
    ("/tmp:/x/..", "destination can't be '/'"), ("/tmp:/x:ro,rw", "invalid mode: ro,rw"),
    ("/tmp:/x:nocopy", "nocopy only supported for volumes"),
])
def test_v_refused(spec, error):
    from minidocker import volumes
    with pytest.raises(InvalidArgument, match=error):
        volumes.parse_v(spec)


def test_v_allowed_over_lxcfs_files_and_empty_mode():
    from minidocker import volumes
    assert volumes.parse_v("/tmp:/proc/cpuinfo")["Destination"] == "/proc/cpuinfo"
    assert volumes.parse_v("/tmp:/procx")["Destination"] == "/procx"
    assert volumes.parse_v("/tmp://x//y/:")["Destination"] == "/x/y"


@pytest.mark.parametrize("spec,error,code", [
    ("type=bind,src=/tmp,target=rel", "invalid mount path: 'rel' mount path must be absolute", 1),
    ("type=volume,target=rel", "invalid mount path: 'rel'", 1),
    ("type=tmpfs,target=rel", "invalid mount path: 'rel'", 1),
    ("type=bind,src=/tmp,target=/x,foo=bar", "unexpected key 'foo' in 'foo=bar'", 125),
    ("type=bind,src=/tmp,target=/x,readonly=maybe", "invalid value for readonly: maybe", 125),
    ("dst=/x,junk", "invalid field 'junk' must be a key=value pair", 125),
    ('type=volume,dst="/x', 'bare " in non-quoted-field', 125),
    ("type=tmpfs,dst=/x,tmpfs-mode=999", "invalid value for tmpfs-mode: 999", 125),
    ("type=tmpfs,dst=/x,tmpfs-size=abc", "invalid value for tmpfs-size: abc", 125),
    ("type=bind,src=/tmp,dst=/x,tmpfs-size=1m", "cannot mix 'tmpfs-\\*' options with mount type 'bind'", 125),
    ("type=tmpfs,src=/tmp,dst=/x", "field Source must not be specified", 1),
    ("type=bind,dst=/x", "field Source must not be empty", 1),
    ("type=bogus,dst=/x", "mount type unknown", 1),
    ("type=bind,src=/tmp,dst=/x,bind-propagation=bogus", "invalid propagation mode: bogus", 1),
    ("type=volume,dst=/x/..", "destination can't be '/'", 1),
    ("type=bind,src=/tmp,dst=/proc/sys", "inside /proc", 1),
    ("", "EOF", 125),
])
def test_mount_refused(spec, error, code):
    from minidocker import volumes
    with pytest.raises(InvalidArgument, match=error) as e:
        volumes.parse_mount(spec)
    assert e.value.exit_code == code


def test_mount_fields_as_docker_reads_them():
    from minidocker import volumes
    m = volumes.parse_mount('type=volume,"dst=/x",ro=1')
    assert (m["Destination"], m["RW"]) == ("/x", False)
    assert volumes.parse_mount("type=tmpfs,dst=/t,tmpfs-size=1.5g")["Mode"] == f"size={3 << 29}"
    with pytest.raises(InvalidArgument, match="inside /proc"):
        volumes.parse_tmpfs("/proc/sys")


# --- storage/archive.py: ArchiveError reaches the user as one line; tars must be complete

def test_archive_errors_are_minidocker_errors():
    from minidocker.storage import archive
    assert issubclass(archive.ArchiveError, MinidockerError)
    assert issubclass(archive.UnsafeArchiveError, MinidockerError)
    assert issubclass(archive.ArchiveError, ValueError)      # (still, for older callers)
    assert archive.ArchiveError("x").exit_code == 1


@pytest.mark.parametrize("make,error", [
    (truncated_in_data, "unexpected end of data"),
    (truncated_in_header, "unexpected EOF"),
    (garbage_after_entries, "invalid tar header"),
    (zero_block_then_garbage, "invalid tar header"),
    (lambda: b"", "the archive is empty"),
])
def test_incomplete_tars_refused(tmp_path, make, error):
    from minidocker.storage import archive
    path = write(tmp_path, "t.tar", make())
    with pytest.raises(archive.ArchiveError, match=error):
        archive.check_tar_file(path)
    with pytest.raises(archive.ArchiveError):
        archive.apply_layer(path, str(tmp_path / "out"), overlay=False)


@pytest.mark.parametrize("tail", [b"", b"\0" * 512, b"\0" * 1024, b"\0" * 1024 + b"junk"])
def test_complete_tars_accepted(tmp_path, tail):
    """Go's archive/tar takes a tar without its end blocks, or with one, or junk after two."""
    from minidocker.storage import archive
    path = write(tmp_path, "t.tar", THREE[:END] + tail)
    archive.check_tar_file(path)
    archive.apply_layer(path, str(tmp_path / "out"), overlay=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["a", "b", "c"]


# --- images: image configs and manifests

@pytest.mark.parametrize("raw,error", [
    (b"not json", "not JSON"), (b"[1, 2]", "a JSON array, not an object"), (b"\xff\xfe", "not JSON"),
    (b"[" * 100000 + b"]" * 100000, "not JSON"),                      # RecursionError
    (json.dumps({"rootfs": {"diff_ids": "x"}}).encode(), "diff_ids must be a list"),
    (json.dumps({"rootfs": {"diff_ids": ["../../etc"]}}).encode(), "sha256 digests"),
    (json.dumps({"config": {"Env": 5}}).encode(), "config.Env has the wrong type"),
    (json.dumps({"config": []}).encode(), "config must be an object"),
])
def test_image_config_refused(raw, error):
    from minidocker.images.store import parse_config
    with pytest.raises(MinidockerError, match=error) as e:
        parse_config(raw)
    assert e.value.exit_code == 1


# --- compat/build: Dockerfiles

def test_dockerfile_line_limit_is_dockers():
    from minidocker.compat.build import dockerfile
    ok = "FROM busybox\nRUN true " + "a" * (65535 - 9) + "\n"
    dockerfile.parse(ok)
    t = time.monotonic()
    with pytest.raises(dockerfile.DockerfileError, match="line greater than max allowed size of 65535"):
        dockerfile.parse("FROM busybox\nRUN true " + "a" * 10_000_000 + "\n")
    assert time.monotonic() - t < 2


def test_dockerfile_parser_is_linear():
    """The parser was quadratic (400 kB: 4.9 s) and its directive regex worse."""
    from minidocker.compat.build import dockerfile
    t = time.monotonic()
    dockerfile.parse("# check=a" + " " * 60000 + "x\nFROM busybox\n")       # was ~7 s
    long_env = "FROM busybox\nENV A=" + ("a" * 60000 + "\\\n") * 17 + "b\n"   # a 1 MB logical line
    df = dockerfile.parse(long_env)
    dockerfile.expand_instruction(df.stages[0].instructions[0], {})
    words = "FROM busybox\nLABEL " + ("a=b " * 15000 + "\\\n") * 17 + "c=d\n"
    dockerfile.parse(words)
    assert time.monotonic() - t < 3


def test_env_doubling_bomb_is_bounded():
    """`ENV A=$A$A` repeated, as the builder substitutes it step by step."""
    from minidocker.compat.build import dockerfile
    df = dockerfile.parse("FROM busybox\nENV A=x\n" + "ENV A=$A$A\n" * 40)
    env: dict = {}
    t = time.monotonic()
    with pytest.raises(dockerfile.DockerfileError, match="variable expansion too large") as e:
        for ins in df.stages[0].instructions:
            env.update(dockerfile.expand_instruction(ins, env).pairs)
    assert e.value.line == 23 and len(env["A"]) == 1 << 20      # stopped at 1 MiB
    assert time.monotonic() - t < 2


def test_arg_doubling_bomb_at_parse_time():
    from minidocker.compat.build import dockerfile
    with pytest.raises(dockerfile.DockerfileError, match="variable expansion too large"):
        dockerfile.parse("ARG A=x\n" + "ARG A=$A$A\n" * 40 + "FROM busybox\n")


@pytest.mark.parametrize("expr,env,expected", [
    ("${A%%" + "*?" * 30 + "Z}", {"A": "linux/amd64"}, "linux/amd64"),        # was exponential
    ("${A#" + "*a" * 30 + "b}", {"A": "a" * 20000}, "a" * 20000),
    ("${A//" + "*a" * 30 + "b/x}", {"A": "a" * 20000}, "a" * 20000),
    ("${A##*/}", {"A": "a/b/c"}, "c"), ("${A#*/}", {"A": "a/b/c"}, "b/c"),
    ("${A%/*}", {"A": "a/b/c"}, "a/b"), ("${A%%/*}", {"A": "a/b/c"}, "a"),
    ("${A/b/X}", {"A": "abcb"}, "aXcb"), ("${A//b/X}", {"A": "abcb"}, "aXcX"),
    ("${A/b*/X}", {"A": "abcb"}, "aX"), ("${A//?/X}", {"A": "ab"}, "XX"),
    ("${A/\\*/X}", {"A": "a*b"}, "aXb"),
])
def test_patterns_linear_and_right(expr, env, expected):
    from minidocker.compat.build import dockerfile
    t = time.monotonic()
    assert dockerfile.expand(expr, env) == expected
    assert time.monotonic() - t < 2


def test_replacement_amplification_bounded():
    from minidocker.compat.build import dockerfile
    with pytest.raises(dockerfile.DockerfileError, match="too large"):
        dockerfile.expand("${A//?/" + "y" * 60000 + "}", {"A": "a" * 100000})


def test_dockerfile_not_utf8():
    from minidocker.compat.build import dockerfile
    with pytest.raises(dockerfile.DockerfileError, match=r"^Dockerfile:2: invalid UTF-8 byte 0xff"):
        dockerfile.decode(b"FROM busybox\nRUN echo \xff\xfe\n")


def test_odd_digits_in_dockerfiles():
    """Unicode digits pass str.isdigit() but not int(); 5000 digits pass int()'s limit."""
    from minidocker.compat.build import builder, dockerfile
    for port in ("\u00b2", "99999999999999", "9" * 5000):
        ins = dockerfile.parse(f"FROM busybox\nEXPOSE {port}\n").stages[0].instructions[0]
        with pytest.raises(MinidockerError, match="invalid containerPort"):
            builder.apply_config_instruction({}, dockerfile.expand_instruction(ins, {}), {})
    with pytest.raises(dockerfile.DockerfileError, match="value out of range"):
        dockerfile.parse("FROM busybox\nHEALTHCHECK --retries=" + "9" * 5000 + " CMD true\n")
    df = dockerfile.parse("FROM busybox\nFROM busybox\nCOPY --from=0 a b\n")
    assert dockerfile.resolve_stage_ref(df, "\u00b2", 1) is None      # a name, not an index
    with pytest.raises(dockerfile.DockerfileError, match="invalid stage index"):
        dockerfile.resolve_stage_ref(df, "9" * 5000, 1)


@pytest.mark.parametrize("mode", ["999", "8", "-1", "+7", "77777", "u+x", ""])
def test_chmod_refused(mode):
    from minidocker.compat.build import builder
    with pytest.raises(builder.BuildError, match="invalid chmod parameter"):
        builder.parse_chmod(mode)
    assert builder.parse_chmod("0755") == 0o755 and builder.parse_chmod("7777") == 0o7777


def test_dockerignore_not_utf8(tmp_path):
    from minidocker.compat.build.ignore import DockerIgnore
    write(tmp_path, ".dockerignore", b"\xff\xfe*\nkeep\n")
    assert DockerIgnore.from_dir(str(tmp_path)).excluded("keep")


# =========================================================================== the CLI corpus

DIR = "{tmp}/dir"     # an existing directory in the case's tmp_path
R = ["run", "--rm", "--network", "none"]
C = ["create", "--network", "none"]


class Case:
    """One hostile command line. `argv` may name files made by `files(tmp)`; `rc` is Docker's
    exit code. docker=False: not compared with the real Docker (it disagrees, see why)."""

    def __init__(self, id, argv, rc, files=None, docker=True, why="", images_may_change=False, max_s=20):
        self.id, self.argv, self.rc, self.files = id, argv, rc, files
        self.docker, self.why, self.images_may_change, self.max_s = docker, why, images_may_change, max_s

    def make(self, tmp) -> list[str]:
        os.makedirs(os.path.join(str(tmp), "dir"), exist_ok=True)
        if self.files:
            self.files(tmp)
        return [a.replace("{tmp}", str(tmp)) for a in self.argv]


def _files(**named):
    """files(tmp) writing each name -> bytes (or a callable making them)."""
    def make(tmp):
        for name, data in named.items():
            write(tmp, name.replace("__", "/"), data() if callable(data) else data)
    return make


def _truncated_second_layer() -> bytes:
    good = tar_of({"one": b"1"})
    bad = truncated_in_data()
    return image_archive(layers=[good, bad])          # the config names the bad layer's real DiffID


def _gz_truncated() -> bytes:
    return gzip.compress(THREE)[:-20]


CASES = [
    # --- run: resource flags (container/hostconfig.py)
    Case("cpus-1e308", R + ["--cpus", "1e308", "busybox", "true"], 125, docker=False,
         why="docker 20.10 overflows and runs the container"),
    Case("cpus-nan", R + ["--cpus", "nan", "busybox", "true"], 125),
    Case("cpus-inf", R + ["--cpus", "inf", "busybox", "true"], 125),
    Case("cpus-too-precise", R + ["--cpus", "0.0000000001", "busybox", "true"], 125),
    Case("memory-empty", R + ["-m", "", "busybox", "true"], 125),
    Case("memory-huge", R + ["-m", "99999999999999999999g", "busybox", "true"], 125),
    Case("memory-blank", R + ["-m", " 512m", "busybox", "true"], 125),
    Case("memory-swap-empty", R + ["-m", "512m", "--memory-swap", "", "busybox", "true"], 125),
    Case("cpu-shares-huge", R + ["--cpu-shares", "99999999999", "busybox", "true"], 125),
    Case("cpu-shares-int64", R + ["--cpu-shares", "99999999999999999999", "busybox", "true"], 125),
    Case("cpu-shares-1", R + ["-c", "1", "busybox", "true"], 125, docker=False,
         why="docker refuses it on cgroup v1 hosts only (runc), takes it on v2"),
    Case("pids-limit-int64", R + ["--pids-limit", "99999999999999999999", "busybox", "true"], 125),
    # --- run: --env-file, --label, -u (container/runconfig.py)
    Case("env-file-dev-zero", R + ["--env-file", "/dev/zero", "busybox", "true"], 125),
    Case("env-file-dev-urandom", R + ["--env-file", "/dev/urandom", "busybox", "true"], 125),
    Case("env-file-long-line", R + ["--env-file", "{tmp}/long.env", "busybox", "true"], 125,
         files=_files(**{"long.env": "A=" + "x" * 70000 + "\n"})),
    Case("env-file-directory", R + ["--env-file", DIR, "busybox", "true"], 125),
    Case("label-empty-name", R + ["--label", "=x", "busybox", "true"], 125),
    Case("label-blank-name", R + ["--label", " =x", "busybox", "true"], 125),
    Case("label-whitespace", R + ["--label", "a b=c", "busybox", "true"], 125),
    Case("user-no-such-group", R + ["-u", "root:nosuchgroup", "busybox", "true"], 125),
    Case("user-no-such-user", R + ["-u", "nosuchuser:", "busybox", "true"], 125),
    Case("user-negative", R + ["-u", "-1", "busybox", "true"], 125),
    # --- run: mounts over /proc, --mount, --tmpfs (volumes.py)
    Case("v-proc-sys", R + ["-v", DIR + ":/proc/sys", "busybox", "true"], 125),
    Case("v-proc-sys-kernel", R + ["-v", DIR + ":/proc/sys/kernel:ro", "busybox", "true"], 125),
    Case("v-proc", R + ["-v", DIR + ":/proc", "busybox", "true"], 125),
    Case("v-named-proc-sys", R + ["-v", "mdbadinputvol:/proc/sys", "busybox", "true"], 125),
    Case("v-dest-root", R + ["-v", DIR + ":/x/..", "busybox", "true"], 125),
    Case("v-mode-ro-rw", R + ["-v", DIR + ":/x:ro,rw", "busybox", "true"], 125),
    Case("mount-proc-sys", R + ["--mount", "type=bind,src=" + DIR + ",dst=/proc/sys", "busybox", "true"], 125),
    Case("tmpfs-proc-sys", R + ["--tmpfs", "/proc/sys", "busybox", "true"], 125, docker=False,
         why="docker fails later, with 127"),
    Case("mount-relative-bind", R + ["--mount", "type=bind,src=" + DIR + ",target=rel", "busybox", "true"], 125),
    Case("mount-relative-volume", R + ["--mount", "type=volume,target=rel", "busybox", "true"], 125),
    Case("mount-relative-tmpfs", R + ["--mount", "type=tmpfs,target=rel", "busybox", "true"], 125),
    Case("create-mount-relative", C + ["--mount", "type=tmpfs,target=rel", "busybox", "true"], 1),
    Case("mount-unknown-key", R + ["--mount", "type=bind,src=" + DIR + ",target=/x,foo=bar", "busybox", "true"],
         125),
    Case("mount-readonly-maybe", R + ["--mount", "type=bind,src=" + DIR + ",target=/x,readonly=maybe",
                                      "busybox", "true"], 125),
    Case("mount-not-key-value", R + ["--mount", "dst=/x,junk", "busybox", "true"], 125),
    Case("mount-bare-quote", R + ["--mount", 'type=volume,dst="/x', "busybox", "true"], 125),
    Case("mount-tmpfs-mode", R + ["--mount", "type=tmpfs,dst=/x,tmpfs-mode=999", "busybox", "true"], 125),
    Case("mount-tmpfs-source", R + ["--mount", "type=tmpfs,src=" + DIR + ",dst=/x", "busybox", "true"], 125),
    Case("mount-bind-no-source", R + ["--mount", "type=bind,dst=/x", "busybox", "true"], 125),
    Case("mount-type-bogus", R + ["--mount", "type=bogus,dst=/x", "busybox", "true"], 125),
    Case("mount-propagation-bogus", R + ["--mount", "type=bind,src=" + DIR + ",dst=/x,bind-propagation=bogus",
                                         "busybox", "true"], 125),
    Case("create-v-proc-sys", C + ["-v", DIR + ":/proc/sys", "busybox", "true"], 1,
         docker=False, why="docker creates it and fails at start (125)"),
    # --- run: -p (network/ports.py)
    Case("p-leading-blank", R + ["-p", " 80", "busybox", "true"], 125),
    Case("p-trailing-blank", R + ["-p", "80 ", "busybox", "true"], 125),
    Case("p-blank-container-port", R + ["-p", "8080: 80", "busybox", "true"], 125),
    Case("p-blank-host-port", R + ["-p", "8080 :80", "busybox", "true"], 125),
    Case("p-blank-ip", R + ["-p", " 127.0.0.1:8080:80", "busybox", "true"], 125),
    Case("p-plus", R + ["-p", "+80", "busybox", "true"], 125),
    Case("p-open-range", R + ["-p", "80-", "busybox", "true"], 125),
    Case("p-range-sizes", R + ["-p", "8080:80-81", "busybox", "true"], 125),
    # --- load / import (images/transfer.py, images/manage.py, storage/archive.py)
    Case("load-dev-null", ["load", "-i", "/dev/null"], 1),
    Case("import-dev-null", ["import", "/dev/null"], 1, docker=False,
         why="docker imports an empty file as an empty image"),
    Case("import-dev-zero", ["import", "/dev/zero"], 1, docker=False, why="docker reads it for ever"),
    Case("load-dev-zero", ["load", "-i", "/dev/zero"], 1, docker=False, why="docker reads it for ever"),
    Case("load-garbage", ["load", "-i", "{tmp}/g.bin"], 1, files=_files(**{"g.bin": bytes(range(256)) * 20})),
    Case("import-garbage", ["import", "{tmp}/g.bin"], 1, files=_files(**{"g.bin": b"\x01" * 5000})),
    Case("load-config-not-json", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(config=b"not json")})),
    Case("load-config-not-object", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(config=b"[1, 2]")})),
    Case("load-config-deep", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(config=b"[" * 100000 + b"]" * 100000)})),
    Case("load-config-env-not-list", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(config=json.dumps(
             {"architecture": "amd64", "os": "linux", "config": {"Env": 5},
              "rootfs": {"type": "layers", "diff_ids": []}}).encode())})),
    Case("load-manifest-object", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(manifest={"a": 1})})),
    Case("load-manifest-items", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(manifest=[1, "x"])})),
    Case("load-manifest-not-json", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(manifest=b"\xff{")})),
    Case("load-bad-tag", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(layers=[tar_of({"x": b"1"})], tags=["BAD:REF"])})),
    Case("load-truncated-layer", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": _truncated_second_layer})),
    Case("load-truncated-archive", ["load", "-i", "{tmp}/a.tar"], 1,
         files=_files(**{"a.tar": lambda: image_archive(layers=[tar_of({"x": b"1" * 4000})])[:3000]})),
    Case("load-directory", ["load", "-i", DIR], 1),
    Case("import-truncated-data", ["import", "{tmp}/t.tar"], 1, files=_files(**{"t.tar": truncated_in_data})),
    Case("import-truncated-header", ["import", "{tmp}/t.tar"], 1, files=_files(**{"t.tar": truncated_in_header})),
    Case("import-garbage-after", ["import", "{tmp}/t.tar"], 1, files=_files(**{"t.tar": garbage_after_entries})),
    Case("import-zero-then-garbage", ["import", "{tmp}/t.tar"], 1,
         files=_files(**{"t.tar": zero_block_then_garbage})),
    Case("import-gzip-truncated", ["import", "{tmp}/t.tar.gz"], 1, files=_files(**{"t.tar.gz": _gz_truncated})),
    Case("import-bzip2-garbage", ["import", "{tmp}/t.tar.bz2"], 1,
         files=_files(**{"t.tar.bz2": b"BZh9" + b"garbage" * 50})),
    Case("import-directory", ["import", DIR], 1),
    Case("import-path-escape", ["import", "{tmp}/t.tar"], 1, docker=False, why="docker 20.10 clamps it to the root",
         files=_files(**{"t.tar": lambda: tar_of({"../../mdbadinput-escape": b"x"})})),
    Case("import-symlink-escape", ["import", "{tmp}/t.tar"], 1, docker=False, why="docker 20.10 takes it",
         files=_files(**{"t.tar": lambda: tar_of({}, symlinks={"a/up": "../../../../etc"})})),
    Case("import-through-symlink", ["import", "{tmp}/t.tar"], 1, docker=False,
         why="docker writes through the link inside its chroot",
         files=_files(**{"t.tar": lambda: tar_of({"link/passwd": b"x"}, symlinks={"link": "/etc"})})),
    Case("import-whiteout-dotdot", ["import", "{tmp}/t.tar"], 1, docker=False, why="not compared",
         files=_files(**{"t.tar": lambda: tar_of({"a/.wh..": b""})})),
    Case("import-bad-name", ["import", "{tmp}/t.tar", "BAD:REF"], 1, files=_files(**{"t.tar": THREE})),
    # --- build (compat/build/)
    Case("build-not-utf8", ["build", "-q", "{tmp}/ctx"], 1, docker=False,
         why="docker's classic builder passes the bytes through",
         files=lambda tmp: context(tmp, b"FROM busybox\nRUN echo \xff\xfe\n")),
    Case("build-chmod-999", ["build", "-q", "{tmp}/ctx"], 1,
         files=lambda tmp: context(tmp, "FROM busybox\nCOPY --chmod=999 f /f\n", f="hi\n")),
    Case("build-add-symlink-escape", ["build", "-q", "{tmp}/ctx"], 1, docker=False,
         why="docker writes through the link inside its chroot",
         files=lambda tmp: context(tmp, "FROM busybox\nADD evil.tar /x/\n", **{
             "evil.tar": tar_of({"link/passwd": b"pwned"}, symlinks={"link": "/etc"})})),
    Case("build-add-truncated-tar", ["build", "-q", "{tmp}/ctx"], 1, docker=False,
         why="docker's ADD copies what it cannot unpack as a file",
         files=lambda tmp: context(tmp, "FROM busybox\nADD t.tar /x/\n", **{"t.tar": truncated_in_data()})),
    Case("build-10mb-line", ["build", "-q", "{tmp}/ctx"], 1,
         files=lambda tmp: context(tmp, "FROM busybox\nENV A=" + "a" * 10_000_000 + "\n")),
    Case("build-directive-blanks", ["build", "-q", "{tmp}/ctx"], 1, max_s=5,
         files=lambda tmp: context(tmp, "# check=a" + " " * 60000 + "x\nFROM busybox\nBOGUS\n")),
    Case("build-env-bomb", ["build", "-q", "{tmp}/ctx"], 1, docker=False, images_may_change=True,
         why="dockerd itself runs for minutes", files=lambda tmp: context(
             tmp, "FROM busybox\nENV A=x\n" + "ENV A=$A$A\n" * 30)),
    Case("build-arg-bomb", ["build", "-q", "{tmp}/ctx"], 1, docker=False, why="dockerd itself runs for minutes",
         files=lambda tmp: context(tmp, "ARG A=x\n" + "ARG A=$A$A\n" * 40 + "FROM busybox\n")),
    Case("build-pattern-redos", ["build", "-q", "{tmp}/ctx"], 1, files=lambda tmp: context(
        tmp, "ARG A=" + "a" * 200 + "\nARG X=${A#" + "*a" * 12 + "b}\nFROM busybox\nBOGUS\n")),
    # --- network create (network/ipam.py)
    Case("network-loopback", ["network", "create", "--subnet", "127.0.0.0/8", "mdbadinput"], 1, docker=False,
         why="docker 20.10 takes it; on a bridge it would take the host's loopback routes"),
    Case("network-bad-cidr", ["network", "create", "--subnet", "10.99.0.0/33", "mdbadinput"], 1),
]


def state_snapshot(root: str) -> dict:
    """What a failed command must not change: containers, images and tags, layers (and their
    overlay2 directories), volumes, networks, leftover temporary files."""
    from minidocker.paths import StateRoot
    r = StateRoot(root)

    def ls(path):
        try:
            return sorted(os.listdir(path))
        except FileNotFoundError:
            return []
    repos = r.repositories
    volumes = [v for v in ls(os.path.join(root, "volumes")) if v != ".lock"]  # (the first use makes the lock)
    return {"containers": ls(r.containers), "images": ls(r.imagedb), "layers": ls(r.layerdb),
            "overlay2": ls(r.overlay2), "mounts": ls(r.mountsdb), "volumes": volumes,
            "networks": ls(os.path.join(root, "network")), "tmp": ls(r.tmp),
            "tags": open(repos).read() if os.path.exists(repos) else ""}


@pytest.fixture(scope="module")
def busybox_ready(state_root):
    """The state a first `run` makes anyway (the busybox image, the default networks)."""
    from conftest import MD
    from minidocker.images import busybox
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    if os.geteuid() == 0:
        busybox.ensure_busybox(ImageStore(StateRoot(state_root)))
        MD(state_root)("network", "ls")


@pytest.mark.root
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_cli_corpus(md, state_root, busybox_ready, tmp_path, case):
    argv = case.make(tmp_path)
    before = state_snapshot(state_root)
    t = time.monotonic()
    p = md(*argv, timeout=60)                 # a hang fails the test (TimeoutExpired)
    elapsed = time.monotonic() - t
    lines = p.stderr.strip().splitlines()
    assert "Traceback" not in p.stderr, p.stderr[-3000:]
    assert len(lines) == 1, p.stderr[-3000:]
    assert p.returncode == case.rc, p.stderr
    assert elapsed < case.max_s, f"took {elapsed:.1f} s"
    after = state_snapshot(state_root)
    if case.images_may_change:   # a failed build keeps the images of the steps that worked, as Docker
        for key in ("images", "layers", "overlay2", "tags"):
            before.pop(key), after.pop(key)
    assert after == before, "a failed command left something behind"


# --------------------------------------------------------------------------- the same, by Docker


COMPARED = [c for c in CASES if c.docker] + [
    Case("user-root-nogroup", R + ["-u", "root:nogroup", "busybox", "true"], 0),
    Case("user-empty-group", R + ["-u", "nobody:", "busybox", "true"], 0),
    Case("user-extra-field", R + ["-u", "root:nogroup:x", "busybox", "true"], 0),
    Case("p-proto-case", C + ["-p", "8080:80/TCP", "busybox", "true"], 0),
    Case("v-empty-mode", C + ["-v", DIR + ":/x:", "busybox", "true"], 0),
]


@pytest.mark.root
@pytest.mark.docker
@pytest.mark.parametrize("case", COMPARED, ids=[c.id for c in COMPARED])
def test_exit_code_as_docker(md, docker, tmp_path, monkeypatch, case):
    monkeypatch.setenv("DOCKER_BUILDKIT", "0")      # docker 20.10's classic builder, as ours
    argv = case.make(tmp_path)
    d = docker.docker(*argv, check=False, timeout=120)
    m = md(*argv, timeout=60)
    for p, runtime in ((d, docker.docker), (m, md)):
        if p.returncode == 0 and argv[0] == "create":   # (the cases that succeed make containers)
            runtime("rm", "-f", p.stdout.split()[-1], check=False)
    assert m.returncode == d.returncode == case.rc, (m.stderr[-500:], d.stderr[-500:])


# =========================================================================== fuzz (hypothesis)

# hypothesis keeps a little state (its "constants" cache): in /tmp, not in the repository
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join("/tmp", "minidocker-hypothesis"))
FUZZ = settings(max_examples=250, deadline=2000, database=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SPECIAL = list("az09AZ :/,=.-_@+\"'\\$`{}[]()*?#%!~^\t\n\r\x00/") + ["\u00e9", "\u0663", "\u00b2", "\u00a0",
                                                                        "\udcff", "\u2028", "sha256:", "//",
                                                                        "..", "tcp", "udp", "127.0.0.1"]
text = st.one_of(st.text(max_size=40), st.lists(st.sampled_from(SPECIAL), max_size=30).map("".join))
number_like = st.one_of(text, st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]{0,5})?([eE][+-]?[0-9]{1,4})?"
                                            r"( ?[kKmMgGtTpP][iI]?[bB]?)?", fullmatch=True))


def only_minidocker_errors(fn, *args):
    try:
        fn(*args)
    except MinidockerError:
        pass


@FUZZ
@given(text)
def test_fuzz_reference(s):
    from minidocker.images import reference
    only_minidocker_errors(reference.parse, s)


@FUZZ
@given(text, text)
def test_fuzz_ports(publish, expose):
    from minidocker.network import ports
    only_minidocker_errors(ports.parse_publish, publish)
    only_minidocker_errors(ports.bindings_from_flags, [publish], [expose])


@FUZZ
@given(text)
def test_fuzz_volumes(s):
    from minidocker import volumes
    for fn in (volumes.parse_v, volumes.parse_mount, volumes.parse_tmpfs):
        only_minidocker_errors(fn, s)
    only_minidocker_errors(volumes.parse_mount, "type=bind,src=/tmp,dst=/x," + s)
    only_minidocker_errors(volumes.parse_mount, "type=tmpfs,dst=/x,tmpfs-size=" + s)


@FUZZ
@given(number_like, number_like, number_like, number_like, number_like)
def test_fuzz_limits(memory, swap, cpus, shares, pids):
    from minidocker.container import hostconfig
    only_minidocker_errors(hostconfig.resources, memory, swap, cpus, None, shares, pids)
    only_minidocker_errors(hostconfig.resources, None, None, None, None, None, None)
    only_minidocker_errors(hostconfig.parse_cpus, cpus, 4)


@FUZZ
@given(text, text, text)
def test_fuzz_runconfig(spec, passwd, group):
    from minidocker.container import runconfig
    only_minidocker_errors(runconfig.resolve_user, spec, passwd, group)
    only_minidocker_errors(runconfig.resolve_user, spec, PASSWD + passwd, GROUP + group)
    only_minidocker_errors(runconfig.parse_label, spec)
    only_minidocker_errors(runconfig.parse_env_file, passwd, {"A": "1"})
    only_minidocker_errors(runconfig.parse_signal, spec)


@FUZZ
@given(text, text)
def test_fuzz_subnet(subnet, gateway):
    from minidocker.network import ipam
    try:
        net, _ = ipam.parse_subnet(subnet, gateway or None)
    except MinidockerError:
        return
    only_minidocker_errors(ipam.check_usable, net)


KEYWORDS = ["FROM", "FROM busybox AS", "RUN", "CMD", "ENTRYPOINT", "ENV", "LABEL", "ARG", "COPY", "ADD", "EXPOSE",
            "VOLUME", "WORKDIR", "USER", "STOPSIGNAL", "HEALTHCHECK", "HEALTHCHECK --interval=", "ONBUILD", "SHELL",
            "MAINTAINER", "COPY --from=", "COPY --chmod=", "ADD --chown=", "RUN --network=", "# escape=`",
            "# syntax=", "BOGUS", "from", "env", ""]
ARGS = st.lists(st.sampled_from(SPECIAL + ["$A", "${A}", "${A:-x}", "${A#*}", "${A%%?}", "${A/a/b}", "${A//*/}",
                                           "${A:?}", "[\"a\"]", "\\\n", "=", "A=1", "busybox", " "]),
                max_size=12).map("".join)
DOCKERFILE = st.lists(st.tuples(st.sampled_from(KEYWORDS), st.one_of(ARGS, text)), min_size=1, max_size=8).map(
    lambda lines: "FROM busybox\n" + "\n".join(f"{k} {a}" for k, a in lines) + "\n")


@FUZZ
@given(DOCKERFILE, st.dictionaries(st.sampled_from(["A", "B", "TARGETARCH"]), text, max_size=2))
def test_fuzz_dockerfile(source, build_args):
    from minidocker.compat.build import builder, dockerfile
    try:
        df = dockerfile.parse(source, build_args)
    except MinidockerError:
        return
    for stage in df.stages:
        env: dict = {"A": "a/b"}
        cfg: dict = {}
        for ins in stage.instructions:
            try:
                x = dockerfile.expand_instruction(ins, env)
                if x.cmd == "ENV":
                    env.update(x.pairs)
                if x.cmd in ("COPY", "ADD"):
                    if x.flags.get("chmod"):
                        builder.parse_chmod(x.flags["chmod"])
                    if x.flags.get("from"):
                        dockerfile.resolve_stage_ref(df, x.flags["from"], stage.index)
                if x.cmd in builder.CONFIG_ONLY:
                    builder.apply_config_instruction(cfg, x, env)
            except MinidockerError:
                pass
