"""minidocker/spawn.py: a helper process gets its stdio, the fds it is given, a session of its
own, and nothing else of ours (no root needed)."""
import json
import os
import sys

from minidocker.spawn import helper_env, spawn

PROBE = ("import json, os, sys; print(json.dumps({'fds': sorted(int(f) for f in os.listdir('/proc/self/fd')), "
         "'sid': os.getsid(0), 'pid': os.getpid(), 'stderr': os.readlink('/proc/self/fd/2'), "
         "'stdin': sys.stdin.read(), 'path': sys.path}))")


def _run(**kw) -> dict:
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    try:
        pid = spawn([sys.executable, "-S", "-c", PROBE], helper_env(), stdin=in_r, stdout=out_w, **kw)
    finally:
        os.close(in_r)
        os.close(out_w)
    os.write(in_w, b"hello")
    os.close(in_w)
    with os.fdopen(out_r) as f:
        got = json.loads(f.read())
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return got


def test_a_helper_gets_its_stdio_the_kept_fds_and_nothing_else():
    leak_r, leak_w = os.pipe()
    kept_r, kept_w = os.pipe()
    os.set_inheritable(leak_w, True)  # inheritable, yet not given: it must not reach the child
    try:
        got = _run(keep=[kept_w])
    finally:
        for fd in (leak_r, leak_w, kept_r, kept_w):
            os.close(fd)
    assert got["stdin"] == "hello"
    assert got["stderr"] == "/dev/null"  # stderr=None
    # 0, 1, 2, the kept fd under its own number, and the listing's own fd: nothing else
    assert len(set(got["fds"]) - {0, 1, 2, kept_w}) == 1
    assert kept_w in got["fds"] and leak_w not in got["fds"]
    assert got["sid"] == got["pid"]  # a session of its own
    assert os.path.dirname(os.path.dirname(os.path.abspath(__import__("minidocker").__file__))) in got["path"]


def test_a_helper_may_share_our_stderr():
    got = _run(stderr=2)
    assert got["stderr"] == os.readlink("/proc/self/fd/2")
