"""attach and real terminals: `attach` to a running container later (output, input, the
detach keys, the exit code), `run -it` on a pty from the container's own devpts, detaching
with ctrl-p ctrl-q and attaching again. Beside the private dockerd where a pipe can show it."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from minidocker.engine import attach

N = ["--network", "none"]


def test_frames_and_detach_keys():
    data = attach.frame("stdout", b"out") + attach.frame("stderr", b"err!") + attach.frame("stdout", b"x")[:5]
    frames, rest = attach.unframe(data)
    assert frames == [(1, b"out"), (2, b"err!")] and len(rest) == 5
    assert attach.split_detach(b"abc\x10\x11def", b"") == (b"abc", b"", True)
    send, held, done = attach.split_detach(b"abc\x10", b"")            # the keys split across two reads
    assert (send, held, done) == (b"abc", b"\x10", False)
    assert attach.split_detach(b"\x11", held) == (b"", b"", True)
    assert attach.split_detach(b"q", b"\x10") == (b"\x10q", b"", False)  # ctrl-p alone is just input
    assert attach.parse_detach_keys("ctrl-x,y") == b"\x18y"


@pytest.mark.root
@pytest.mark.docker
def test_attach_later_sees_the_output_and_exits_with_the_code(md, docker):
    import concurrent.futures
    cmd = ["sh", "-c", "sleep 3; echo later; echo oops >&2; exit 3"]
    try:
        for rt in (md, lambda *a, **k: docker.docker(*a, check=False, **k)):
            assert rt("run", "-d", "--name", "att-later", *N, "busybox", *cmd).returncode == 0
        # both attaches at once, each well before its container's program ends (one after the
        # other, a loaded machine made the second come too late)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            mine = pool.submit(md, "attach", "--no-stdin", "att-later", timeout=30)
            theirs = pool.submit(docker.docker, "attach", "--no-stdin", "att-later", check=False, timeout=30)
            ours, theirs = mine.result(), theirs.result()
        assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr) == \
            (3, "later\n", "oops\n")
        m, d = md("attach", "att-later"), docker.docker("attach", "att-later", check=False)
        assert m.returncode == d.returncode == 1
        assert "You cannot attach to a stopped container, start it first" in m.stderr and \
            "You cannot attach to a stopped container, start it first" in d.stderr
    finally:
        md("rm", "-f", "att-later"), docker.docker("rm", "-f", "att-later", check=False)


@pytest.mark.root
def test_input_through_attach_and_the_detach_keys(md):
    md.ok("run", "-d", "-i", "--name", "att-cat", *N, "busybox", "cat")
    try:
        p = subprocess.Popen([sys.executable, "-m", "minidocker", "attach", "att-cat"], env=md.env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdin.write(b"hello\n")
        p.stdin.flush()
        time.sleep(1)
        p.stdin.write(b"\x10\x11")
        p.stdin.flush()
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0 and out == b"hello\n" and b"read escape sequence" in err
        assert md.ok("inspect", "-f", "{{.State.Status}}", "att-cat") == "running\n"   # it runs on
    finally:
        md("rm", "-f", "att-cat")


def set_size(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Terminal:
    """A program on a pty of ours, as a person in tmux would run it."""

    def __init__(self, argv, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(sys.executable, [sys.executable, "-m", "minidocker", *argv], env)
        self.out = b""

    def read(self, seconds: float) -> bytes:
        end, got = time.time() + seconds, b""
        while time.time() < end:
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    got += os.read(self.fd, 4096)
                except OSError:
                    break
        self.out += got
        return got

    def type(self, text: bytes, wait: float = 1.0) -> bytes:
        os.write(self.fd, text)
        return self.read(wait)

    def exit_code(self, timeout: float = 10) -> int | None:
        end = time.time() + timeout
        while time.time() < end:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            self.read(0.1)
        return None


@pytest.mark.root
def test_run_it_on_a_terminal_detach_and_attach_again(md):
    try:
        t = Terminal(["run", "-it", "--name", "att-tty", *N, "busybox", "sh"], md.env)
        set_size(t.fd, 30, 100)
        t.read(2)
        got = t.type(b"tty; stty size\r", 1.5)
        assert b"/dev/pts/0" in got and b"30 100" in got, got   # the container's own devpts, our size
        set_size(t.fd, 40, 132)                     # the window grows: SIGWINCH, passed on
        os.kill(t.pid, __import__("signal").SIGWINCH)
        assert b"40 132" in t.type(b"stty size\r", 1.5)
        assert t.type(b"\x10\x11", 1.5).endswith(b"read escape sequence\r\n")
        assert t.exit_code() == 0
        assert md.ok("inspect", "-f", "{{.State.Status}}", "att-tty") == "running\n"
        e = Terminal(["exec", "-it", "att-tty", "sh", "-c", "tty; ls /dev/pts"], md.env)
        assert e.exit_code() == 0
        assert b"/dev/pts/1" in e.out and b"ptmx" in e.out, e.out    # exec -t: the container's devpts too
        t = Terminal(["attach", "att-tty"], md.env)
        t.read(0.5)
        assert b"again" in t.type(b"echo again\r", 1.5)
        t.type(b"exit 7\r", 1.0)
        assert t.exit_code() == 7
    finally:
        md("rm", "-f", "att-tty")
