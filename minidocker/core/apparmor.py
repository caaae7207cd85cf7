"""AppArmor: a profile the kernel checks on every file, mount, signal and ptrace a process asks for.

Capabilities say what root may do, seccomp which system calls may be made at all; AppArmor, a
Linux Security Module (Debian's and Ubuntu's kernels have it on), says what a process may do
with which *path* or *peer*: "write anywhere but /proc/sys", "no mount at all", "no signal to a
process outside this profile". A profile is text, compiled by `apparmor_parser` and loaded into
the kernel under its name; /sys/kernel/security/apparmor/profiles lists what is loaded, and
/proc/<pid>/attr/current says which profile confines a process ("unconfined" for none).

Docker, on a host that has AppArmor, runs every container under `docker-default` (moby's
profiles/apparmor/template.go), loading it first if it is not loaded; `--security-opt
apparmor=NAME` picks another loaded profile, `apparmor=unconfined` and `--privileged` none.
The profile reaches runc as `process.apparmorProfile` in config.json, and runc, just before
execve(), writes "exec NAME" into /proc/self/attr/apparmor/exec: the kernel switches the
process to NAME at its next execve, so the program starts confined and nothing before it is.

minidocker does the same under the name `minidocker-default` (a dockerd on the same host loads
its own docker-default: two runtimes must not replace each other's profile). Here: enabled(),
loaded(), default_profile() (the text, pure), ensure_default() (loads it) and apply_on_exec()
(core/init.py's finalize() calls it, for the container and for `exec`).

Taught in notebook 01 (`exec` runs under the container's profile); it will be the subject of
10-security, a notebook still to be written.
"""
from __future__ import annotations

import errno
import os

from ..errors import MinidockerError

DEFAULT = "minidocker-default"
UNCONFINED = "unconfined"
SECURITYFS = "/sys/kernel/security/apparmor"
PARAMETER = "/sys/module/apparmor/parameters/enabled"
PROFILE_DIR = "/etc/apparmor.d"
# where "exec NAME" goes: the AppArmor-only file (kernel 5.8+), else the older one shared by LSMs
EXEC_ATTR = "/proc/self/attr/apparmor/exec"
OLD_EXEC_ATTR = "/proc/self/attr/exec"
CURRENT_ATTRS = ("/proc/self/attr/apparmor/current", "/proc/self/attr/current")  # (newer kernels, older)


class ApplyError(Exception):
    """The profile could not be applied: runc's message and the exit code docker gives it.
    (core/init.py turns it into its StartError: init imports this module, not the reverse.)"""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def enabled() -> bool:
    """runc's IsEnabled: the kernel has AppArmor switched on, and securityfs shows it. Not in
    rootless mode: a user namespace's root may not load profiles (Docker's rootless mode
    runs without AppArmor too)."""
    from .userns import running_in_user_namespace
    if running_in_user_namespace():
        return False
    try:
        with open(PARAMETER) as f:
            on = f.read().startswith("Y")
    except OSError:
        return False
    return on and os.path.isdir(SECURITYFS)


def loaded(name: str) -> bool:
    """Is a profile called `name` in the kernel? (lines like "docker-default (enforce)")"""
    try:
        with open(os.path.join(SECURITYFS, "profiles")) as f:
            return any(line.startswith(name + " ") for line in f)
    except OSError:
        return False


# moby's profiles/apparmor/template.go (its current rules: /proc writes only under /proc/<pid>
# and /proc/sys/kernel/shm*, powercap denied), as Docker fills it in with an apparmor_parser of
# 2.9 or later (the signal and ptrace rules are in). The comments are the template's own.
def default_profile(name: str = DEFAULT, *, daemon_profile: str = UNCONFINED, tunables: bool = True,
                    base: bool = True) -> str:
    """The text of a profile equivalent to docker-default, called `name`. `tunables` / `base`:
    whether /etc/apparmor.d has tunables/global and abstractions/base to include (without
    tunables, @{PROC} is defined here); `daemon_profile`: the profile of whoever sends the
    signals of `kill` and `stop` (ours run unconfined)."""
    head = "#include <tunables/global>" if tunables else "@{PROC}=/proc/"
    inner = "  #include <abstractions/base>\n" if base else ""
    return f"""{head}

profile {name} flags=(attach_disconnected,mediate_deleted) {{
{inner}
  network,
  capability,
  file,
  umount,
  # Host (privileged) processes may send signals to container processes.
  signal (receive) peer=unconfined,
  # dockerd (here: minidocker's monitor and CLI) may send signals to container processes (for "docker kill").
  signal (receive) peer={daemon_profile},
  # Container processes may send signals amongst themselves.
  signal (send,receive) peer={name},

  deny @{{PROC}}/* w,   # deny write for all files directly in /proc (not in a subdir)
  # deny write to files not in /proc/<number>/** or /proc/sys/**
  deny @{{PROC}}/{{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],[^1-9/][^0-9/][^0-9/][^0-9/]*}}/** w,
  deny @{{PROC}}/sys/[^k]** w,  # deny /proc/sys except /proc/sys/k* (effectively /proc/sys/kernel)
  deny @{{PROC}}/sys/kernel/{{?,??,[^s][^h][^m]**}} w,  # deny everything except shm* in /proc/sys/kernel/
  deny @{{PROC}}/sysrq-trigger rwklx,
  deny @{{PROC}}/kcore rwklx,

  deny mount,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,

  # suppress ptrace denials when using 'docker ps' or using 'ps' inside a container
  ptrace (trace,read,tracedby,readby) peer={name},
}}
"""


def own_profile() -> str:
    """The profile confining this process ("unconfined (...)" -> "unconfined"), as moby reads
    dockerd's own for the signal rule."""
    try:
        with open("/proc/self/attr/current") as f:
            return f.read().split(" ", 1)[0].strip() or UNCONFINED
    except OSError:
        return UNCONFINED


def ensure_default(name: str = DEFAULT) -> None:
    """Load the default profile unless the kernel has it (moby's ensureDefaultAppArmorProfile,
    run at each start: something may have unloaded it since boot)."""
    import subprocess  # (here: core/init.py imports this module into every container's init)
    import tempfile
    if loaded(name):
        return
    text = default_profile(name, daemon_profile=own_profile(),
                           tunables=os.path.exists(os.path.join(PROFILE_DIR, "tunables/global")),
                           base=os.path.exists(os.path.join(PROFILE_DIR, "abstractions/base")))
    with tempfile.NamedTemporaryFile("w", prefix=name, suffix=".profile") as f:
        f.write(text)
        f.flush()
        # The one external program minidocker runs: a profile is compiled by apparmor_parser
        # (a whole compiler, to a kernel-version-dependent binary format) before the kernel takes
        # it, and Docker runs the same command. -K: no cache, -r: replace whatever has the name.
        try:
            p = subprocess.run(["apparmor_parser", "-Kr", f.name], capture_output=True, text=True,
                               env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"))
            failure = ((p.stdout + p.stderr).strip() or f"exit status {p.returncode}") if p.returncode else ""
        except OSError as e:  # not installed (Debian's package apparmor)
            failure = (e.strerror or str(e)).lower()
        if failure:  # (moby's message, on one line)
            raise MinidockerError(f"AppArmor enabled on system but the {name} profile could not be loaded: "
                                  f"running `apparmor_parser -Kr {f.name}` failed with output: "
                                  + "; ".join(failure.splitlines()), exit_code=125)


def exec_attr(exists=os.path.exists) -> str:
    """The file to write "exec NAME" to (runc's choice)."""
    return EXEC_ATTR if exists(EXEC_ATTR) else OLD_EXEC_ATTR


def apply_on_exec(profile: str | None) -> None:
    """Ask the kernel to put us under `profile` at our next execve (libapparmor's
    aa_change_onexec). Nothing changes before the execve: the program starts confined."""
    if not profile:
        return
    path = exec_attr()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise _failed("open", path, e) from None
    try:
        os.write(fd, f"exec {profile}".encode())
    except OSError as e:  # ENOENT: no profile of that name is loaded
        raise _failed("write", path, e) from None
    finally:
        os.close(fd)


def change_profile(profile: str | None) -> bool:
    """Put this very process under `profile` now (libapparmor's aa_change_profile): what
    `--init`'s PID 1 does once it has started the program, so that, like Docker's tini (which
    is exec'd under the profile), it is confined too. False if it could not."""
    if not profile or profile == "unconfined":
        return False
    for path in CURRENT_ATTRS:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, f"changeprofile {profile}".encode())
            return True
        except OSError:
            return False
        finally:
            os.close(fd)
    return False


def _failed(op: str, path: str, e: OSError) -> ApplyError:
    """runc's words (Go's "write PATH: message"), and the exit code `docker run` gives them
    (it reads the message: "no such file or directory" is 127, "permission denied" 126)."""
    code = {errno.ENOENT: 127, errno.EACCES: 126}.get(e.errno, 125)
    return ApplyError(code, f"apparmor failed to apply profile: {op} {path}: {os.strerror(e.errno).lower()}")
