"""The low-level runtime: run an OCI bundle (what `runc run` does), knowing nothing of Docker.

Taught in notebooks 01 and 03 (apply_resources and exit_status are steps of notebook 99).
The monitor (core/shim.py) calls `start()` with a bundle whose config.json engine/oci.py
wrote; `runc run -b <bundle> <id>` runs the very same bundle (tests/test_bundle.py). The
steps, with runc's names:

    this process (the runtime)                       the child (core/init.py)
    ------------------------------------------       -----------------------------------------
    enter the spec's PID namespace (unshare/setns)
    fork() ----------------------------------------> setns/unshare the other namespaces
                                                     "R": ready
    create the cgroup (linux.cgroupsPath),     <----
    write linux.resources, add the child
    on_created(pid): the createRuntime hook
      (Docker plugs the network in here)
    "G": go ---------------------------------------> rootfs, hostname, terminal, finalize
                                                     execve(process.args)
    EOF on the error pipe = the program runs   <---- (or the error: 125/126/127 and why)

With a user namespace in the spec (`--userns-remap`, or a bundle's linux.uidMappings), a
middle process comes first: it makes the user namespace, we write its uid/gid maps, and only
then does it make the PID namespace and fork PID 1 (_map_user_namespace below).

Why no hook programs? OCI hooks are executables run with the container's state on stdin;
minidocker's monitor is already a Python process, so it passes a function: the same moment,
without starting another interpreter (~30 ms).
"""
from __future__ import annotations

import json
import os

from ..errors import MinidockerError
from . import bundle, cgroups, steps
from . import userns as userns_mod
from . import init as initmod
from .linux import syscalls as sc


class StartFailed(Exception):
    """The container did not reach its program; `code` is docker's exit code (125/126/127)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def exit_status(wait_status: int) -> int:
    """waitpid status -> the exit code Docker reports: the code, or 128+signal."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


def cgroup_of(spec: dict, container_id: str) -> tuple[str, str]:
    """linux.cgroupsPath "/minidocker/<id>" -> ("minidocker", "<id>") (parent, name)."""
    path = ((spec.get("linux") or {}).get("cgroupsPath") or f"/minidocker/{container_id}").strip("/")
    parent, _, name = path.rpartition("/")
    if not parent or not name:
        raise bundle.BundleError(f"linux.cgroupsPath {path!r}: minidocker wants /<parent>/<name>")
    return parent, name


def _own_pid_namespace_for_children() -> None:
    """Undo unshare(CLONE_NEWPID)/setns for our next children: point them back at our own PID
    namespace. (The kernel refuses a second unshare(CLONE_NEWPID) until then: the monitor
    needs it to start the container again for its restart policy.)"""
    fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(fd, sc.CLONE_NEWPID)
    finally:
        os.close(fd)


def start(bundle_dir: str, container_id: str, stdio: tuple[int, int, int], *, spec: dict | None = None,
          console_sock: int | None = None, on_created=None, exec_fifo: int | None = None) -> int:
    """Create the container from the bundle and start its process; return its host PID.

    `stdio` are the fds the container's 0, 1, 2 become (unless process.terminal: then the
    child makes a pty and sends its master over `console_sock`). `on_created(pid)` runs while
    the child waits in its namespaces, inside its cgroup. Raises StartFailed (the child is
    reaped and its cgroup removed) if the program could not be started.
    With `exec_fifo` (an fd of a fifo open read-write) this is runc's `create`: it returns
    once the program is found and everything but the execve is done; the child then waits
    for a byte in the fifo (`start`, compat/runc)."""
    try:
        spec = spec or bundle.load(bundle_dir)
        root = bundle.root_path(bundle_dir, spec)
        parent, name = cgroup_of(spec, container_id)
        cg = cgroups.driver(parent)
        cgroup_mounts = cg.container_mounts()
        new, join = bundle.namespaces(spec)
        if new & sc.CLONE_NEWUSER and cg.version == 1:
            cgroup_mounts = _v1_binds(cgroup_mounts, cg.paths(name))
    except (MinidockerError, OSError) as e:
        raise StartFailed(125, str(e)) from e
    sync_parent_r, sync_child_w = os.pipe()
    sync_child_r, sync_parent_w = os.pipe()
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # orphans in the container are ours to reap
    userns = bool(new & sc.CLONE_NEWUSER)   # then the child makes the PID namespace (see below)
    # rootless (core/rootless.py): we could not come back to our PID namespace; a child goes
    middle = not userns and ("pid" in join or bool(new & sc.CLONE_NEWPID)) and userns_mod.running_in_user_namespace()
    if userns or middle:
        pass
    elif "pid" in join:                     # the next child is in that PID namespace...
        fd = os.open(join["pid"], os.O_RDONLY | os.O_CLOEXEC)
        sc.setns(fd, sc.CLONE_NEWPID)
        os.close(fd)
    elif new & sc.CLONE_NEWPID:             # ...or PID 1 of a new one
        sc.unshare(sc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:  # ---- child: becomes the container
        try:
            # our copies of the parent's ends must go, or the child would never see
            # EOF on the sync pipe when the parent gives up
            for fd in (sync_parent_r, sync_parent_w, err_r):
                os.close(fd)
            for i, fd in enumerate(stdio):
                os.dup2(fd, i)
            if userns:  # returns in the grandchild, PID 1 of the new namespaces
                initmod.enter_user_namespace(spec, join, sync_child_r, sync_child_w, err_w)
            elif middle:  # the same, for the PID namespace only
                initmod.enter_pid_namespace(join, sync_child_w, err_w)
            initmod.run(spec, root, cgroup_mounts, sync_child_r, sync_child_w, err_w, console_sock, exec_fifo)
        finally:
            os._exit(125)
    for fd in (sync_child_r, sync_child_w, err_w):
        os.close(fd)
    if ("pid" in join or new & sc.CLONE_NEWPID) and not (userns or middle):
        _own_pid_namespace_for_children()  # so that this process can start a container again
    # The child has its namespaces and waits ("R"): put it in its cgroup and run the hook now,
    # so that the user's program starts limited (and, with Docker's hook, connected): "G".
    try:
        try:
            if userns:
                pid = _map_user_namespace(spec, pid, sync_parent_r, sync_parent_w, err_r)
            elif middle:
                pid = _pid_one(pid, sync_parent_r, err_r)
            if os.read(sync_parent_r, 1) != b"R":
                raise _init_failure(err_r)  # it may have said why (e.g. a namespace to join is gone)
            cg.create(name, bundle.device_rules(spec))
            steps.get("apply_resources", cgroups.apply_resources)(
                cg.version, cg.paths(name), (spec.get("linux") or {}).get("resources") or {})
            cg.add_process(name, pid)
            if on_created is not None:
                on_created(pid)
            try:
                os.write(sync_parent_w, b"G")
            except BrokenPipeError:  # it gave up before "go" (its seccomp profile, say): why
                raise _init_failure(err_r) from None
        finally:
            os.close(sync_parent_r)
            os.close(sync_parent_w)  # without "G" the child gives up
        failure = b""
        while chunk := os.read(err_r, 65536):
            failure += chunk
            if failure == initmod.CREATED:
                break  # (created: it waits for start)
        if failure and failure != initmod.CREATED:  # init could not execve the program
            err = json.loads(failure)
            raise StartFailed(err["code"], err["message"])
    except BaseException as e:
        os.close(err_r)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass  # (a user namespace's middle process, already reaped)
        try:
            delete(spec, container_id)
        except (OSError, cgroups.CgroupError):
            pass  # (system prune removes a cgroup left busy)
        if isinstance(e, StartFailed) or not isinstance(e, Exception):
            raise
        raise StartFailed(125, str(e) or type(e).__name__) from e
    os.close(err_r)
    return pid


def _init_failure(err_r: int) -> StartFailed:
    """The child stopped before "ready": what it wrote on the error pipe, if anything."""
    why = os.read(err_r, 65536)
    err = json.loads(why) if why else {"code": 125, "message": "the container's init died while starting"}
    return StartFailed(err["code"], err["message"])


def _v1_binds(mounts: list[tuple], paths: dict[str, str]) -> list[tuple]:
    """In a user namespace the kernel refuses new cgroup v1 mounts of some hierarchies: bind
    the container's own cgroup directories instead (runc does the same)."""
    out = []
    for source, target, fstype, extra, data in mounts:
        if fstype == "cgroup":
            ctrl = next((c for c in (data or "").split(",") if c in paths), None)
            if ctrl is None:
                continue
            source, fstype, data = paths[ctrl], "bind", None
        out.append((source, target, fstype, extra, data))
    return out


def _map_user_namespace(spec: dict, child: int, sync_r: int, sync_w: int, err_r: int) -> int:
    """With a new user namespace (runc's nsexec stages, in short):

        the child                                   this process (root on the host)
        setns the network to join (host rights)
        unshare(CLONE_NEWUSER|CLONE_NEWNS),
        open the bind mounts' sources
          (still the host's uid 0 for the files)
        "U" ------------------------------------->  write /proc/<child>/uid_map and gid_map
                                    <-------------  "M": the ids are mapped
        setresuid/gid(0): root *inside*
        unshare(CLONE_NEWPID), fork(): PID 1 ---->  its host PID (4 bytes); the child exits,
                                                    PID 1 is re-parented to us (the subreaper)

    The namespaces made after the user namespace belong to it: that is what lets root inside
    mount /proc, sysfs and tmpfs there with capabilities that count nowhere else.
    Returns PID 1's host PID."""
    from . import userns
    if os.read(sync_r, 1) != b"U":
        os.waitpid(child, 0)
        raise _init_failure(err_r)
    linux = spec.get("linux") or {}
    # gid_map first or last does not matter here: we are privileged (no setgroups "deny" needed)
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        with open(f"/proc/{child}/{name}", "w") as f:
            f.write(userns.IdMap.from_oci(linux.get(key)).proc_text())
    os.write(sync_w, b"M")
    return _pid_one(child, sync_r, err_r)


def _pid_one(middle: int, sync_r: int, err_r: int) -> int:
    """The middle process says PID 1's host PID (4 bytes) and exits; PID 1 is re-parented to
    us (the subreaper)."""
    data = os.read(sync_r, 4)
    os.waitpid(middle, 0)
    if len(data) != 4:
        raise _init_failure(err_r)
    return int.from_bytes(data, "little")


def delete(spec: dict, container_id: str) -> None:
    """What `runc delete` leaves behind: nothing. The cgroup goes (once its processes have)."""
    parent, name = cgroup_of(spec, container_id)
    cgroups.driver(parent).remove(name)
