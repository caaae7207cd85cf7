"""Starting one of our helper processes: a container's monitor, the netlink helper.

Never fork() here: the caller may be a Jupyter kernel, whose threads make fork() unsafe (a
lock held by another thread stays locked forever in the child). posix_spawn() is vfork+exec in
glibc: nothing of ours is copied, nothing of ours runs in the child. It also spares `run` the
import of `subprocess` (~7 ms: threading, selectors, signal's enums) before its monitor starts.

The child gets stdin, stdout and stderr as given (an fd of ours; None: /dev/null), the fds in
`keep` under their own numbers, a session of its own (so no signal from our terminal reaches
it), and no other fd of ours: every other inheritable one is closed in it, as subprocess's
close_fds does. (subprocess would also reset SIGPIPE for the child; Python, which our helpers
are, sets it for itself at start.)
"""
from __future__ import annotations

import os
import sys

# The directory that holds the `minidocker` package: it goes first on a helper's path (an
# editable install is found through a .pth hook that `python -S` skips).
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def helper_env() -> dict:
    """The environment of a helper process (monitor, exec): our own import path, carried over."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PACKAGE_PARENT] + [p for p in sys.path if p]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let Python cache compiled modules
    return env


def spawn(argv: list[str], env: dict | None = None, *, stdin: int | None = None, stdout: int | None = None,
          stderr: int | None = None, keep: tuple[int, ...] | list[int] = ()) -> int:
    """Start argv[0] (a path) with `argv`; return its PID, for os.waitpid."""
    actions = []
    for target, fd in ((0, stdin), (1, stdout), (2, stderr)):
        if fd is None:
            actions.append((os.POSIX_SPAWN_OPEN, target, os.devnull, os.O_RDWR, 0))
        else:
            actions.append((os.POSIX_SPAWN_DUP2, fd, target))
    keep = [fd for fd in keep if fd > 2]
    for fd in _inheritable_fds():  # (after the dup2s: one of them may be a source)
        if fd > 2 and fd not in keep:
            actions.append((os.POSIX_SPAWN_CLOSE, fd))
    for fd in keep:
        os.set_inheritable(fd, True)  # (our own copies, made for this child: closed after)
    return os.posix_spawn(argv[0], argv, os.environ if env is None else env, file_actions=actions,
                          setsid=True)


def _inheritable_fds() -> list[int]:
    fds = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                fds.append(int(name))
        except OSError:
            pass  # (the listing's own fd, closed by now)
    return fds
