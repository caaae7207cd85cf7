"""MINIDOCKER_STEPS (core/steps.py): a learner's file of functions replaces minidocker's own steps
in a real run (notebook 99). The loader without root; real runs through the CLI as root."""
from __future__ import annotations

import os
import textwrap

import pytest

from minidocker.core import steps


@pytest.fixture(autouse=True)
def _fresh_cache():
    steps._cache.clear()
    yield
    steps._cache.clear()


def steps_file(tmp_path, code: str, name: str = "steps.py") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(code))
    return str(path)


# ------------------------------------------------------------------ the loader (no root)
def test_without_the_variable_minidockers_own_step_is_used(monkeypatch):
    monkeypatch.delenv(steps.ENV, raising=False)
    own = object()
    assert steps.get("pivot_root", own) is own


def test_a_step_in_the_file_replaces_minidockers_own(tmp_path, monkeypatch):
    path = steps_file(tmp_path, """
        import os
        from os.path import join          # an imported function is not a step
        def _helper(x):                   # a helper: leading underscore
            return x * 2
        def exit_status(wait_status):
            return _helper(21)
    """)
    monkeypatch.setenv(steps.ENV, path)
    assert steps.get("exit_status", os.waitstatus_to_exitcode)(0) == 42
    assert steps.get("pivot_root", "own") == "own"      # a step the file leaves alone
    assert list(steps.replacements()) == ["exit_status"]
    assert steps.load(path) is steps.load(path)           # loaded once per process


@pytest.mark.parametrize("code, message", [
    ("def pivot_rot(rootfs, linux):\n    pass\n", "pivot_rot() is not a step (the steps are: find_executable"),
    ("import no_such_module_here\n", "it does not import: ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("def pivot_root(rootfs, linux)\n    pass\n", "it does not import: SyntaxError: expected ':' (line 1)"),
    ("raise SystemExit(3)\n", "it does not import: SystemExit: 3"),
])
def test_a_file_that_cannot_be_used_is_one_line(tmp_path, monkeypatch, code, message):
    path = steps_file(tmp_path, code)
    monkeypatch.setenv(steps.ENV, path)
    with pytest.raises(steps.StepError) as e:
        steps.get("pivot_root", None)
    assert str(e.value).startswith(f"{steps.ENV}={path}: {message}")
    assert "\n" not in str(e.value) and e.value.exit_code == 125


def test_a_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(steps.ENV, str(tmp_path / "nope.py"))
    with pytest.raises(steps.StepError, match="nope.py: no such file"):
        steps.replacements()


def test_a_replacement_that_raises_is_named_in_one_line_but_start_errors_pass(tmp_path, monkeypatch):
    path = steps_file(tmp_path, """
        from minidocker.core.init import StartError
        def pivot_root(rootfs, linux):
            raise NotImplementedError()
        def enter_namespaces(new, join):
            raise OSError(22, "unshare(0x20000): Invalid argument")
        def find_executable(name, path_env):
            raise StartError(127, f'exec: "{name}": executable file not found in $PATH')
    """)
    monkeypatch.setenv(steps.ENV, path)
    with pytest.raises(steps.StepError) as e:
        steps.get("pivot_root", None)("/x", None)
    assert str(e.value) == f"your pivot_root() ({steps.ENV}={path}) raised NotImplementedError"
    with pytest.raises(steps.StepError, match=r"raised OSError: \[Errno 22\] unshare"):
        steps.get("enter_namespaces", None)(0, {})
    from minidocker.core.init import StartError
    with pytest.raises(StartError) as e:
        steps.get("find_executable", None)("nosuch", "/bin")
    assert e.value.code == 127


def test_every_step_has_minidockers_own_function():
    """The names in STEPS are the names of minidocker's own functions, with the same arguments."""
    import inspect
    from minidocker.core import cgroups, init, overlay2, rootfs, runc
    from minidocker.network import bridge
    own = {"find_executable": init.find_executable, "exit_status": runc.exit_status,
           "enter_namespaces": init.enter_namespaces, "pivot_root": rootfs.pivot_root,
           "mount_overlay": overlay2.mount_overlay, "apply_resources": cgroups.apply_resources,
           "plug_container": bridge.plug_container}
    assert set(own) == set(steps.STEPS)
    for name, fn in own.items():
        assert fn.__name__ == name
        first = steps.STEPS[name][1].split("(", 1)[1].split(")")[0]
        params = list(inspect.signature(fn).parameters)
        assert len([p for p in first.split(",") if p.strip()]) == len(params), (name, params)


# ------------------------------------------------------------------ real runs (root)
RECORDING = """
    import os
    from minidocker.core import cgroups, init, overlay2, rootfs, runc
    from minidocker.network import bridge
    LOG = {log!r}
    def _note(what):
        with open(LOG, "a") as f:
            f.write(f"{{what}} {{os.getpid()}}\\n")
    def enter_namespaces(new_flags, join_paths):
        _note("enter_namespaces")
        init.enter_namespaces(new_flags, join_paths)
    def pivot_root(rootfs_path, linux):
        _note("pivot_root")
        rootfs.pivot_root(rootfs_path, linux)
    def mount_overlay(lowers, upper, work, target):
        _note("mount_overlay")
        overlay2.mount_overlay(lowers, upper, work, target)
    def apply_resources(version, paths, resources):
        _note("apply_resources")
        cgroups.apply_resources(version, paths, resources)
    def plug_container(*args, **kwargs):
        _note("plug_container")
        return bridge.plug_container(*args, **kwargs)
    def exit_status(wait_status):
        _note("exit_status")
        return runc.exit_status(wait_status)
"""


def with_steps(md, path: str):
    from conftest import MD
    other = MD(md.root)
    other.env = dict(md.env, MINIDOCKER_STEPS=path)
    return other


@pytest.mark.root
def test_the_learners_steps_run_in_a_real_container(md, tmp_path):
    log = tmp_path / "ran.log"
    mine = with_steps(md, steps_file(tmp_path, RECORDING.format(log=str(log))))
    p = mine("run", "--rm", "-m", "32m", "busybox", "sh", "-c", "hostname; ip -o -4 addr show eth0; exit 3")
    assert p.returncode == 3, p.stderr
    assert " eth0 " in p.stdout and "inet " in p.stdout
    ran = [line.split() for line in log.read_text().splitlines()]
    assert [name for name, _ in ran] == ["mount_overlay", "enter_namespaces", "apply_resources",
                                         "plug_container", "pivot_root", "exit_status"], ran
    pids = {name: pid for name, pid in ran}
    # the monitor mounts, writes the limits, plugs the network and reaps; the container's init
    # (a child of the monitor) enters its namespaces and pivots
    assert pids["mount_overlay"] == pids["apply_resources"] == pids["plug_container"] == pids["exit_status"]
    assert pids["enter_namespaces"] == pids["pivot_root"] != pids["mount_overlay"]
    # and without the variable nothing is written
    log.unlink()
    assert md("run", "--rm", "busybox", "true").returncode == 0 and not log.exists()


@pytest.mark.root
def test_a_broken_replacement_fails_the_start_with_125_and_its_line(md, tmp_path):
    mine = with_steps(md, steps_file(tmp_path, """
        def pivot_root(rootfs, linux):
            raise NotImplementedError()
    """))
    p = mine("run", "--rm", "--name", "steps-broken", "busybox", "true")
    assert p.returncode == 125
    assert p.stderr.strip().splitlines()[-1].endswith("raised NotImplementedError") and "Traceback" not in p.stderr
    assert "steps-broken" not in md.ok("ps", "-a")      # --rm removed it


@pytest.mark.root
def test_a_file_that_cannot_be_used_fails_before_anything_runs(md, tmp_path):
    mine = with_steps(md, steps_file(tmp_path, "def pivot_rot(rootfs, linux):\n    pass\n"))
    p = mine("run", "--rm", "busybox", "true")
    assert p.returncode == 125 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"minidocker: MINIDOCKER_STEPS={tmp_path}/steps.py: pivot_rot() is not a step " \
        "(the steps are: find_executable, exit_status, enter_namespaces, pivot_root, mount_overlay, " \
        "apply_resources, plug_container; name helper functions with a leading _)"


@pytest.mark.root
def test_a_learners_find_executable_chooses_the_exit_code(md, tmp_path):
    mine = with_steps(md, steps_file(tmp_path, """
        from minidocker.core.init import StartError
        def find_executable(name, path_env):
            raise StartError(126, f'exec: "{name}": permission denied (mine)')
    """))
    p = mine("run", "--rm", "busybox", "true")
    assert p.returncode == 126 and "permission denied (mine)" in p.stderr
    assert "\n" not in p.stderr.strip()
