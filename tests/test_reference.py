"""Image reference grammar and Docker Hub normalisation: pure, no root."""
import pytest

from minidocker.errors import InvalidArgument
from minidocker.images import reference as ref


@pytest.mark.parametrize("text,name,familiar,tag,digest", [
    ("busybox", "docker.io/library/busybox", "busybox", "latest", None),
    ("busybox:1.36", "docker.io/library/busybox", "busybox", "1.36", None),
    ("library/busybox", "docker.io/library/busybox", "busybox", "latest", None),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox", "busybox", "latest", None),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox", "latest", None),
    ("user/app", "docker.io/user/app", "user/app", "latest", None),
    ("localhost:5000/team/app:v1", "localhost:5000/team/app", "localhost:5000/team/app", "v1", None),
    ("localhost/app", "localhost/app", "localhost/app", "latest", None),
    ("ghcr.io/a/b", "ghcr.io/a/b", "ghcr.io/a/b", "latest", None),
    ("a__b-c/e.f", "docker.io/a__b-c/e.f", "a__b-c/e.f", "latest", None),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox", "busybox", None, "sha256:" + "a" * 64),
])
def test_parse(text, name, familiar, tag, digest):
    r = ref.parse(text)
    assert (r.name, r.familiar_name, r.tag, r.digest) == (name, familiar, tag, digest)


def test_str_roundtrip():
    assert str(ref.parse("busybox")) == "busybox:latest"
    assert str(ref.parse("localhost:5000/x:1")) == "localhost:5000/x:1"


@pytest.mark.parametrize("bad,msg", [
    ("", "invalid reference format"),
    ("Busybox", "must be lowercase"),
    ("busybox:", "invalid reference format"),
    ("busy box", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
    ("busybox:" + "t" * 129, "invalid reference format"),
    ("x/" + "a" * 260, "must not be more than 255 characters"),
])
def test_bad_references(bad, msg):
    with pytest.raises(InvalidArgument, match=msg):
        ref.parse(bad)


def test_looks_like_id():
    assert ref.looks_like_id("1d692bda")
    assert ref.looks_like_id("sha256:" + "0" * 64)
    assert not ref.looks_like_id("busybox")
