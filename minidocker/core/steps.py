"""Replaceable steps: the capstone's hook, where a learner's function takes the place of one of
minidocker's own, in a real `run`. Taught in notebook 99 (build your own `docker run`).

    MINIDOCKER_STEPS=/path/to/steps.py minidocker run --rm busybox echo hi

The file is ordinary Python. Each public top-level function it defines must be named after one
of the STEPS below, and replaces minidocker's own function for that step in every process of the
run: the CLI, the container's monitor (spawn.py's helper_env() passes the environment on)
and the container's init (forked from the monitor). Helpers start with "_". The file is loaded
once per process; a file that does not import, or a public function that is not a step, is an
error in one line (the container does not start: exit 125), never a traceback.

A call site reads like this (core/rootfs.py):

    steps.get("pivot_root", pivot_root)(rootfs, linux)

If a replacement raises, the run fails with exit 125 and a line naming the step, unless it raises
what minidocker's own step raises to choose an exit code (init.StartError: 126, 127).
"""
from __future__ import annotations

import functools
import os
import sys
import types

from ..errors import MinidockerError

ENV = "MINIDOCKER_STEPS"

# name -> (level, signature, where minidocker's own is called)
STEPS = {
    "find_executable": (1, "find_executable(name, path_env) -> path; raises init.StartError(127|126, ...)",
                        "core/init.py finalize()"),
    "exit_status":     (1, "exit_status(wait_status) -> the code docker reports (128+signal)",
                        "core/shim.py, core/nsexec.py"),
    "enter_namespaces": (2, "enter_namespaces(new_flags, join_paths): setns() into join_paths "
                            "{kind: /proc/<pid>/ns/<kind>}, unshare() new_flags (but PID and cgroup)",
                         "core/init.py run()"),
    "pivot_root":      (3, "pivot_root(rootfs, linux): make rootfs '/', the old root gone",
                        "core/rootfs.py setup()"),
    "mount_overlay":   (4, "mount_overlay(lowers, upper, work, target): lowers uppermost first",
                        "core/overlay2.py Overlay2.mount()"),
    "apply_resources": (5, "apply_resources(version, paths, resources): write linux.resources' memory, "
                           "cpu, pids into the cgroup (v1: paths = {controller: dir}; v2: {'unified': dir})",
                        "core/runc.py start()"),
    "plug_container":  (6, "plug_container(pid, bridge, ip, prefixlen, gateway, mac, ifname='eth0', "
                           "default_route=True) -> host-side veth name",
                        "network/modes.py Networking.attach()"),
}


class StepError(MinidockerError):
    """The steps file could not be used, or a replacement failed: one line, exit 125."""
    exit_code = 125


_cache: dict[str, dict] = {}  # path -> {step name: function}, loaded once per process


def load(path: str) -> dict:
    """The replacements in the steps file `path`, checked: {step name: function}."""
    if path in _cache:
        return _cache[path]
    import importlib.util  # (only a run with a steps file pays for the import machinery)
    where = f"{ENV}={path}"
    spec = importlib.util.spec_from_file_location("minidocker_steps", path)
    if spec is None or not os.path.isfile(path):
        raise StepError(f"{where}: no such file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise StepError(f"{where}: it does not import: SyntaxError: {e.msg} (line {e.lineno})") from None
    except BaseException as e:  # noqa: BLE001 -- whatever the file does, one line
        raise StepError(f"{where}: it does not import: {type(e).__name__}: {e}") from None
    found = {}
    for name, value in vars(module).items():
        if name.startswith("_") or not isinstance(value, types.FunctionType) or value.__module__ != module.__name__:
            continue  # helpers, and what the file imported
        if name not in STEPS:
            raise StepError(f"{where}: {name}() is not a step (the steps are: {', '.join(STEPS)}; "
                            "name helper functions with a leading _)")
        found[name] = _reported(name, value, path)
    _cache[path] = found
    return found


def _reported(name: str, fn, path: str):
    """The replacement, with its failures turned into one line naming the step."""
    @functools.wraps(fn)
    def step(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MinidockerError:
            raise
        except Exception as e:
            if isinstance(getattr(e, "code", None), int):  # e.g. init.StartError(127, ...): on purpose
                raise
            raise StepError(f"your {name}() ({ENV}={path}) raised {type(e).__name__}: {e}".rstrip(": ")) from e
    step.replacement = True
    return step


def replacements() -> dict:
    """The replacements this process uses ({} without MINIDOCKER_STEPS)."""
    path = os.environ.get(ENV)
    return load(os.path.abspath(path)) if path else {}


def get(name: str, default):
    """The function to call for step `name`: the learner's if MINIDOCKER_STEPS has one, else `default`."""
    assert name in STEPS, name
    return replacements().get(name, default)


def main(argv: list[str] | None = None) -> int:
    """python -m minidocker.core.steps: list the steps (and check $MINIDOCKER_STEPS)."""
    for name, (level, signature, where) in STEPS.items():
        print(f"L{level}  {signature}\n      called in {where}")
    try:
        mine = replacements()
    except StepError as e:
        print(e, file=sys.stderr)
        return 125
    if mine:
        print(f"{ENV} replaces: {', '.join(mine)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
