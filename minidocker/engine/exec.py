"""`docker exec`: one more process in a running container.

Taught in notebook 03 (namespaces). The Docker side decides the process (argv, -e over the
container's environment, -u looked up in the container's /etc/passwd, -w) as an OCI
`process` object, with the capabilities, limits and AppArmor profile of the container's own
config.json; the low-level side (core/nsexec.py, a fresh helper process) joins the
container's namespaces and cgroup and runs it, as `runc exec --process` does.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from ..container import runconfig
from ..core import apparmor, bundle, runc
from ..errors import InvalidArgument, InvalidState, MinidockerError
from . import oci
from .reconcile import reconcile
from ..spawn import helper_env


def exec_process(spec: dict, rootfs: str, rec: dict, argv: list[str], user: str | None, workdir: str | None,
                 env: list[str] | None, tty: bool) -> dict:
    """The OCI process of `docker exec` (what `runc exec --process process.json` reads), from
    the container's own config.json (`spec`) and its mounted root filesystem."""
    cfg = rec["Config"]
    uid, gid, groups, _ = oci.resolve_user(rootfs, user if user is not None else cfg.get("User") or "",
                                           rec["HostConfig"].get("GroupAdd"))
    hostname = cfg.get("Hostname") or rec["Id"][:12]
    profile = spec["process"].get("apparmorProfile")  # (Docker: the container's, for exec too)
    return {
        "terminal": tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": list(groups)},
        "args": list(argv),
        "env": runconfig.process_env(runconfig.replace_or_append(cfg.get("Env") or [], env or []), hostname, tty),
        "cwd": workdir or cfg.get("WorkingDir") or "/",
        "capabilities": spec["process"].get("capabilities") or {},
        "rlimits": spec["process"].get("rlimits") or [],
        "noNewPrivileges": spec["process"].get("noNewPrivileges", False),
        **({"apparmorProfile": profile} if profile else {}),
    }


def exec_start(rt, ref: str, argv: list[str], *, user: str | None = None, workdir: str | None = None,
               env: list[str] | None = None, tty: bool = False, interactive: bool = False,
               detach: bool = False, stdio: tuple[int, int, int] | None = None,
               kill_after: float | None = None, resize_fd: int | None = None) -> subprocess.Popen:
    """Start `argv` inside the running container in a helper process; return it once the
    command runs (its exit status is the command's exit code).
    `stdio`: the (stdin, stdout, stderr) fds the command should use; `kill_after`: seconds
    after which the command is killed (a health probe's timeout); `resize_fd`: the read end of
    a pipe of "rows cols" lines for the command's terminal (the API's exec resize)."""
    if not argv:
        raise InvalidArgument("exec needs a command", exit_code=1)
    cid = rt.resolve(ref)
    rec = reconcile(rt, rt.containers.read(cid))
    s = rec["State"]
    if not s["Running"]:
        raise InvalidState(f"Container {cid} is not running")
    if s["Paused"]:
        raise InvalidState(f"Container {ref} is paused, unpause the container before exec")
    if s.get("Restarting"):
        raise InvalidState(f"Container {cid} is restarting, wait until the container is running")
    if workdir and not workdir.startswith("/"):
        raise InvalidArgument(f"the working directory '{workdir}' is invalid, it needs to be an absolute path",
                              exit_code=1)
    bundle_dir = oci.bundle_dir(rt.containers.dir(cid))
    try:
        spec = bundle.load(bundle_dir)
        process = exec_process(spec, bundle.root_path(bundle_dir, spec), rec, argv, user, workdir, env, tty)
        if process.get("apparmorProfile") == apparmor.DEFAULT:
            apparmor.ensure_default()  # (dockerd reloads it for exec too, if it was unloaded)
    except bundle.BundleError as e:  # e.g. started by a minidocker that wrote no bundle
        raise MinidockerError(f"{e}: restart the container", exit_code=126) from None
    except MinidockerError as e:
        raise MinidockerError(str(e), exit_code=126) from None
    parent, name = runc.cgroup_of(spec, cid)
    req = {"cid": name, "pid": s["Pid"], "cgroup_parent": parent, "process": process,
           "tty": tty, "interactive": interactive, "kill_after": kill_after,
           "seccomp": (spec.get("linux") or {}).get("seccomp"),  # exec runs under the container's filter
           "resize_fd": resize_fd if tty else None}
    r, w = os.pipe()
    if stdio is None or detach:
        stdin = stdout = stderr = subprocess.DEVNULL
    else:
        stdin = stdio[0] if interactive and stdio[0] >= 0 else subprocess.DEVNULL
        stdout, stderr = stdio[1], stdio[2]
    try:
        extra = [resize_fd] if tty and resize_fd is not None else []
        proc = subprocess.Popen([sys.executable, "-S", "-m", "minidocker.core.nsexec", json.dumps(req), str(w)],
                                pass_fds=[w, *extra], stdin=stdin, stdout=stdout, stderr=stderr, env=helper_env(),
                                start_new_session=detach)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as f:
        failure = f.read()  # EOF once the command runs (or the error, if it could not start)
    if failure:
        proc.wait()
        err = json.loads(failure)
        raise MinidockerError(err["message"], exit_code=err["code"])
    return proc


def exec_run(rt, ref: str, argv: list[str], **kw) -> tuple[int, bytes, bytes]:
    """Run a command in the container to its end; return (exit code, stdout, stderr)."""
    import tempfile
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = exec_start(rt, ref, argv, stdio=(-1, out.fileno(), err.fileno()), **kw)
        code = proc.wait()
        out.seek(0)
        err.seek(0)
        return code, out.read(), err.read()
