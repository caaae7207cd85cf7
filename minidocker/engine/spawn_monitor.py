"""Spawning a container's monitor: now (`start`), or ahead of the container (`run`).

Taught in notebook 01. The monitor is `python -S -m minidocker.engine.monitor ROOT ID STATUS_FD
[IN OUT ERR CALLER]`: a fresh Python (never a fork of the caller, see ../spawn.py) that reports
on the status pipe STATUS_FD and, for an attached caller, writes the container's output
straight to the caller's stdin/stdout/stderr, which it is given under new numbers.

Starting Python and importing what a monitor needs takes ~40 ms. `run` does not wait for that:
it spawns the monitor first of all, for the id its container will get (EarlyMonitor), then
parses its command line and creates the container while the monitor starts on the other CPU.
The early monitor waits for "go" on its stdin (engine/monitor.py, _wait_for_go).

This module imports little on purpose: the program's entry imports it before anything else
(compat/cli/main.py, entry).
"""
from __future__ import annotations

import os
import sys

from .. import spawn
from ..network import netlink_helper


def spawn_monitor(root: str, cid: str, attach: tuple[int, int, int] | None,
                  netlink: netlink_helper.NetlinkHelper | None, *, stdin: int | None, stderr: int | None,
                  early: bool = False) -> tuple[int, int]:
    """Spawn the monitor; return its PID and the read end of its status pipe. (-S skips
    site-packages' .pth processing, tens of ms at every start: spawn.helper_env() puts our
    package on its path instead.) The caller's
    stdio in `attach` (-1: not attached) is passed under new numbers: the monitor's own 0/1/2
    are `stdin`, /dev/null and `stderr` (its error log), so that a detached monitor holds no
    terminal."""
    r, w = os.pipe()
    attach_fds = [os.dup(fd) if fd >= 0 else -1 for fd in attach] if attach else []
    argv = [sys.executable, "-S", "-m", "minidocker.engine.monitor", *(["--early"] if early else []),
            root, cid, str(w)]
    if attach:
        argv += [str(fd) for fd in attach_fds] + [str(os.getpid())]
    env = spawn.helper_env()
    if netlink is not None:
        env[netlink_helper.HELPER_ENV] = "{},{}".format(*netlink.fds())
    try:
        pid = spawn.spawn(argv, env, stdin=stdin, stderr=stderr,
                          keep=[w] + [fd for fd in attach_fds if fd >= 0] + (list(netlink.fds()) if netlink else []))
    except BaseException:
        os.close(r)
        raise
    finally:
        for fd in [w] + attach_fds:  # (the monitor has its own copies)
            if fd >= 0:
                os.close(fd)
    return pid, r


class EarlyMonitor:
    """A container's monitor, spawned before the container exists: it starts Python and does
    its imports while the caller creates the container under the id chosen here, then waits
    for "go" on its stdin. Its command line is a monitor's (root, id, fds): `ps` and `system
    prune` know it as one. If the create fails, it reads EOF and exits.

    It is given the caller's stdin, stdout and stderr now, and told at "go" which of them the
    container is attached to (none for `run -d`). With `netlink`, a netlink helper is spawned
    first, for a container that will get a veth; a wrong guess costs time, not correctness (the
    monitor closes a helper it does not need, or spawns the one it needs)."""

    def __init__(self, root: str, netlink: bool):
        self.root, self.cid = root, os.urandom(32).hex()  # (secrets.token_hex, without its imports)
        self.netlink = self.pid = None
        control_r, self.control = os.pipe()         # "go", on its stdin
        try:
            if netlink:
                # first: it imports pyroute2 (~0.1 s) while the monitor starts (network/netlink_helper.py)
                self.netlink = netlink_helper.NetlinkHelper.spawn(spawn.helper_env(), reap_later=True)
            # (stderr: not ours, which a caller of `run -d` may read to its end; the monitor takes
            # the container's shim.log once the container exists)
            self.pid, self.r = spawn_monitor(root, self.cid, (0, 1, 2), self.netlink, stdin=control_r,
                                             stderr=None, early=True)
        except BaseException:
            os.close(self.control)
            self.control = self.r = -1
            self._reap_helper()
            raise
        finally:
            os.close(control_r)
            if self.netlink is not None:
                self.netlink.close()  # (the monitor has its own copies)

    def go(self, attach: tuple[int, int, int] | None) -> int:
        """The container exists: the monitor goes on as one spawned by start would, attached to
        the caller's stdio that `attach` names ((-1, 1, 2): stdout and stderr), or to none.
        Returns the read end of its status pipe."""
        mask = " " + "".join("1" if fd >= 0 else "0" for fd in attach) if attach else ""
        os.write(self.control, f"go{mask}\n".encode())
        os.close(self.control)
        self.control = -1
        os.waitpid(self.pid, 0)  # it daemonizes once it may go: this reaps its parent
        self._reap_helper()
        status, self.r = self.r, -1
        return status

    def close(self) -> None:
        """Not needed (the create failed, or the start did not use it): EOF, and it exits."""
        if self.control >= 0:
            os.close(self.control)
            self.control = -1
            os.waitpid(self.pid, 0)
        if self.r >= 0:
            os.close(self.r)
            self.r = -1
        self._reap_helper()

    def _reap_helper(self) -> None:
        if self.netlink is not None:
            self.netlink.close()  # (our copies of its pipes, if still open)
            self.netlink.reap()   # (it has daemonized by now; if unused, it sees EOF and exits)
            self.netlink = None


# The monitor the program's entry spawned for `run` (compat/cli/main.py), until `run` takes it.
_prespawned: EarlyMonitor | None = None


def prespawn(root: str, netlink: bool) -> None:
    """`minidocker run ...`: spawn its monitor first of all, before the command line is even
    parsed (~30 ms of imports and argparse), which the monitor's own start then overlaps."""
    global _prespawned
    try:
        _prespawned = EarlyMonitor(root, netlink)
    except OSError:
        _prespawned = None  # (run spawns one itself)


def close_prespawned() -> None:
    """At the program's end: a prespawned monitor that `run` never took (a usage error, --help)
    is told to exit, and reaped, before we exit: so it holds our stdout no longer than we do."""
    global _prespawned
    if _prespawned is not None:
        _prespawned.close()
        _prespawned = None


def take_prespawned(root: str) -> EarlyMonitor | None:
    """The prespawned monitor, if it serves this state root (else it is closed)."""
    global _prespawned
    early, _prespawned = _prespawned, None
    if early is not None and early.root != root:
        early.close()
        early = None
    return early
