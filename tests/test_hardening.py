"""What an attack on minidocker found, kept fixed (issue 13). Each test fails on the code
before its fix."""
import os
import pty
import select
import subprocess
import sys
import time

import pytest

from conftest import REPO

PROBE = "test -t 0 && echo STDIN-IS-A-TTY; test -t 1 && echo STDOUT-IS-A-TTY; echo probe-done"


def _in_a_terminal(md, *args: str, timeout: float = 30) -> str:
    """Run `minidocker ARGS` with a terminal as its stdin, stdout and stderr, as an admin
    typing it would; return what appeared on the terminal."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "minidocker", *args], env=dict(md.env, PYTHONPATH=REPO),
                         stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: every holder of the terminal closed it
                    break
                out += chunk
            if p.poll() is not None and not ready:
                break
        p.wait(timeout=10)
    finally:
        os.close(master)
    return out.decode(errors="replace")


@pytest.mark.root
def test_exec_and_run_never_hand_the_callers_terminal_to_the_container(md):
    """Without -t the container gets pipes, never the caller's terminal: from a terminal it could
    TIOCSTI a command into the admin's shell (dev.tty.legacy_tiocsti=1 allows that)."""
    md.ok("run", "-d", "--name", "tty-probe", "--network", "none", "busybox", "sleep", "300")
    try:
        out = _in_a_terminal(md, "exec", "tty-probe", "sh", "-c", PROBE)
        assert "probe-done" in out and "IS-A-TTY" not in out, out
        out = _in_a_terminal(md, "exec", "-i", "tty-probe", "sh", "-c", PROBE)
        assert "probe-done" in out and "IS-A-TTY" not in out, out
    finally:
        md("rm", "-f", "tty-probe")
    out = _in_a_terminal(md, "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c", PROBE)
    assert "probe-done" in out and "IS-A-TTY" not in out, out
    # with -t the container gets a terminal, but one of its own (on its devpts), not the caller's
    out = _in_a_terminal(md, "run", "--rm", "-t", "--network", "none", "busybox", "sh", "-c",
                         "tty; " + PROBE)
    assert "/dev/pts/0" in out and "STDIN-IS-A-TTY" in out


@pytest.mark.root
def test_stdin_is_still_copied_in(md):
    md.ok("run", "-d", "--name", "stdin-copy", "--network", "none", "busybox", "sleep", "300")
    try:
        big = "x" * 300_000 + "\n"  # more than a pipe holds: the copy must not block
        assert md.ok("exec", "-i", "stdin-copy", "wc", "-c", input=big).strip() == str(len(big))
        assert md.ok("exec", "-i", "stdin-copy", "sh", "-c", "cat; echo end", input="a\nb\n") == "a\nb\nend\n"
    finally:
        md("rm", "-f", "stdin-copy")
    assert md.ok("run", "--rm", "-i", "--network", "none", "busybox", "wc", "-c", input=big).strip() == str(len(big))
