"""The capstone's helpers (notebook 99): put the learner's function in a steps file, run a real
container through it, and set the result beside minidocker's own (and the real Docker's).

    def pivot_root(rootfs, linux): ...            # the learner's step, in a cell
    env = capstone.use(lab, pivot_root)           # <lab root>/lab/capstone/steps-N.py, checked
    mine = capstone.run(lab, "run", "--rm", "busybox", "ls", "/", env=env)   # through it
    own = capstone.run(lab, "run", "--rm", "busybox", "ls", "/")             # minidocker's own

The steps file is MINIDOCKER_STEPS (core/steps.py): its functions replace minidocker's own in
every process of that one run, and nowhere else: the notebook's kernel never uses them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..core import steps
from .exercise import Mismatch, program_for


def use(lab, *fns) -> dict:
    """Write the source of the learner's step functions (and what they use from the notebook)
    into a new steps file of this session; return the environment that makes a run use them.
    A function that is not a step, or a file that does not load, fails here in one line."""
    d = lab.mkdir("capstone")
    path = os.path.join(d, f"steps-{sum(n.startswith('steps-') for n in os.listdir(d)) + 1}.py")
    for fn in fns:
        if fn.__name__ not in steps.STEPS:
            raise Mismatch(f"{fn.__name__}() is not a step: the steps are {', '.join(steps.STEPS)}")
    with open(path, "w") as f:
        f.write("\n\n".join(program_for(fn) for fn in fns) + "\n")
    steps._cache.pop(path, None)
    try:
        steps.load(path)  # defines the functions (runs none): the same check the CLI makes
    except steps.StepError as e:
        raise Mismatch(str(e)) from None
    return {steps.ENV: path}


def run(lab, *args: str, env: dict | None = None, timeout: float = 60, input: str | None = None
        ) -> subprocess.CompletedProcess:
    """`minidocker --root <lab root> args...` (with `env`, e.g. use()'s); the finished process:
    returncode, stdout, stderr (text)."""
    return subprocess.run([sys.executable, "-m", "minidocker", "--root", lab.root, *args],
                          capture_output=True, text=True, timeout=timeout, env=lab.child_env(env),
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def error_line(p: subprocess.CompletedProcess) -> str:
    """The last line of what a run said on stderr (its error, if it failed)."""
    lines = p.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def outcome(p: subprocess.CompletedProcess) -> str:
    """A run in one line: "exit 0" or "exit 125: <its error>"."""
    return f"exit {p.returncode}" + (f": {error_line(p)}" if p.returncode and error_line(p) else "")


# ------------------------------------------------------------------ level 3: the calls, recorded
_RECORD = r"""
import json, sys
from minidocker.core.linux import syscalls as sc
from minidocker.core.linux.recorder import Recorder
# a mount namespace of our own: whatever the function does for real stays in this process
sc.unshare(sc.CLONE_NEWNS)
sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
program, name, rootfs = json.loads(sys.stdin.read())
ns = {"__name__": "__lab__"}
rec = Recorder()
try:
    exec(compile(program, "<your code>", "exec"), ns)
    ns[name](rootfs, rec)
    error = None
except BaseException as e:
    error = f"{type(e).__name__}: {e}".rstrip(": ")
print(json.dumps({"lines": rec.lines(strip=rootfs), "names": rec.names(), "error": error,
                  "calls": [[str(a) for a in c] for c in rec.calls]}))
"""


def record(fn, rootfs: str = "/var/lib/minidocker/overlay2/<id>/merged") -> dict:
    """Call `fn(rootfs, linux)` with a Recorder as `linux` (core/linux/recorder.py), in a fresh
    process with a mount namespace of its own: the calls it makes through `linux`, written down
    instead of made. Returns {"lines": [...], "names": [...], "calls": [...], "error": None or why}."""
    from .exercise import PACKAGE_PARENT
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    env.pop(steps.ENV, None)
    p = subprocess.run([sys.executable, "-c", _RECORD], input=json.dumps([program_for(fn), fn.__name__, rootfs]),
                       capture_output=True, text=True, timeout=30, env=env)
    if p.returncode != 0 or not p.stdout.strip():
        raise Mismatch(f"recording {fn.__name__}() failed: {error_line(p) or 'exit %d' % p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ level 6: what a leak looks like
def host_veths() -> dict[str, bool]:
    """{name: both ends here?} for every veth of the host's network namespace."""
    from ..network.bridge import netlink_in, outside_event_loop

    @outside_event_loop
    def ask():
        out = {}
        with netlink_in(None) as ipr:
            for link in ipr.get_links():
                info = link.get_attr("IFLA_LINKINFO")
                if info is None or info.get_attr("IFLA_INFO_KIND") != "veth":
                    continue
                # a peer in another namespace is named by a netns id; one here, by its index only
                out[link.get_attr("IFLA_IFNAME")] = link.get_attr("IFLA_LINK_NETNSID") is None
        return out
    return ask()


def leaked_veths(before: dict[str, bool]) -> list[str]:
    """veths made since `before` (a host_veths()) with both ends still on the host: a pair the
    learner's plug_container made but never moved into the container (nothing would remove it)."""
    return sorted(name for name, here in host_veths().items() if here and name not in before)


def remove_links(names: list[str]) -> None:
    from ..network import bridge
    for name in names:
        try:
            bridge.delete_link(name)  # (deleting one end of a pair deletes both)
        except Exception:  # noqa: BLE001 -- its peer's deletion took it already
            pass
