"""`--userns-remap`: every container's root is an unprivileged range of host ids.

Taught in notebook 10 (security). dockerd's option, as a global flag here (minidocker has no
daemon): `minidocker --userns-remap default run ...`. What Docker does, and so do we:

  * the ids come from /etc/subuid and /etc/subgid ("default" means the user `dockremap`,
    created with a free range of 65536 ids when missing);
  * the state moves to <root>/<uid>.<gid> (e.g. /var/lib/minidocker/100000.100000): its images,
    layers, containers and volumes are separate from the unmapped ones;
  * files are *shifted* on disk: a layer's file owned by 0 in the image is owned by 100000 in
    overlay2/<id>/diff, so that root in the container (100000 on the host) owns it;
  * every container gets a user namespace with that map (core/userns.py, core/runc.py), unless
    run with `--userns host`.

The container's init runs as uid 100000 on the host from the moment it enters its namespace,
so it needs a way into its own files: the state roots are group-owned by the remapped gid and
traversable by that group only (0710), as /var/lib/docker and /var/lib/docker/100000.100000 are.
"""
from __future__ import annotations

import json
import os
import pwd
import stat
import subprocess

from .. import fsutil
from ..core import userns
from ..errors import MinidockerError
from ..storage.shift import RECORD, idmaps  # noqa: F401 -- (idmaps: the engine asks through here)

DEFAULT_USER = "dockremap"
ENV = "MINIDOCKER_USERNS_REMAP"


def parse(value: str) -> tuple[str, str]:
    """"default" | "user" | "user:group" -> (user, group) (dockerd's parseRemappedRoot)."""
    if value == "default":
        return DEFAULT_USER, DEFAULT_USER
    user, _, group = value.partition(":")
    if not user:
        raise MinidockerError(f"invalid --userns-remap value: {value!r}", exit_code=125)
    return user, group or user



def _add_default_user() -> None:
    """What dockerd does for "default": a system user, and a free subordinate range for it.
    (useradd is the one program run here: the user database has its own locking rules.)"""
    try:
        pwd.getpwnam(DEFAULT_USER)
    except KeyError:
        r = subprocess.run(["useradd", "--system", "--shell", "/bin/false", "--no-create-home", DEFAULT_USER],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise MinidockerError(f"could not create the {DEFAULT_USER} user: {r.stderr.strip()}", exit_code=125)
    texts = [fsutil.read_text("/etc/subuid", ""), fsutil.read_text("/etc/subgid", "")]
    if userns.subid_ranges(texts[0], DEFAULT_USER) and userns.subid_ranges(texts[1], DEFAULT_USER):
        return
    start = userns.free_range(texts)
    for path, text in zip(("/etc/subuid", "/etc/subgid"), texts):
        if not userns.subid_ranges(text, DEFAULT_USER):
            with open(path, "a") as f:
                f.write(("" if not text or text.endswith("\n") else "\n") + f"{DEFAULT_USER}:{start}:65536\n")


def maps(value: str) -> tuple[userns.IdMap, userns.IdMap]:
    """The uid and gid maps of --userns-remap `value`, from /etc/subuid and /etc/subgid."""
    user, group = parse(value)
    if value == "default":
        _add_default_user()
    try:
        number = pwd.getpwnam(user).pw_uid if not user.isdigit() else int(user)
        name = user if not user.isdigit() else pwd.getpwuid(number).pw_name
    except KeyError:
        raise MinidockerError(f"can't create ID mappings: user {user!r} does not exist", exit_code=125) from None
    out = []
    for path, who in (("/etc/subuid", name), ("/etc/subgid", group)):
        ranges = userns.subid_ranges(fsutil.read_text(path, ""), who, number if who == name else None)
        if not ranges:
            raise MinidockerError(f"can't create ID mappings: no subordinate ids for {who!r} in {path}",
                                  exit_code=125)
        out.append(userns.map_from_subids(ranges))
    return out[0], out[1]


def setup(value: str, base_root: str) -> str:
    """Make (or open) the remapped state root under `base_root`; return its path."""
    uids, gids = maps(value)
    uid0, gid0 = uids.to_host(0), gids.to_host(0)
    root = os.path.join(base_root, f"{uid0}.{gid0}")
    os.makedirs(root, mode=0o710, exist_ok=True)
    for d in (base_root, root):  # as dockerd leaves them: root:<gid> 0710, the mapped root may pass
        os.chown(d, 0, gid0)
        os.chmod(d, 0o710)
    record = {"uidMappings": uids.oci(), "gidMappings": gids.oci()}
    path = os.path.join(root, RECORD)
    if fsutil.read_text(path, "") != json.dumps(record):
        fsutil.write_atomic(path, json.dumps(record))
    return root


def grant_traversal(root: str, path: str, gid: int) -> None:
    """Let the remapped root (group `gid`) pass through every directory from state root `root`
    down to `path`'s parent: those only root could enter get group `gid` and g+x."""
    root = os.path.abspath(root)
    rel = os.path.relpath(os.path.dirname(os.path.abspath(path)), root)
    if rel.startswith(".."):
        return  # not ours (a host directory bound with -v): as in Docker, the user's business
    d = root
    for part in [] if rel == "." else rel.split(os.sep):
        d = os.path.join(d, part)
        st = os.stat(d)
        if not st.st_mode & 0o001 and not (st.st_gid == gid and st.st_mode & 0o010):
            os.chown(d, -1, gid)
            os.chmod(d, stat.S_IMODE(st.st_mode) | 0o010)


def check_host_options(host: dict) -> None:
    """dockerd's refusals with remapping on (unless --userns host)."""
    if host.get("UsernsMode") == "host":
        return
    if host.get("Privileged"):
        raise MinidockerError("privileged mode is incompatible with user namespaces.  You must run the "
                              "container in the host namespace when running privileged mode", exit_code=125)
    if (host.get("NetworkMode") or "") == "host":
        raise MinidockerError("cannot share the host's network namespace when user namespaces are enabled",
                              exit_code=125)
    if (host.get("PidMode") or "") == "host":
        raise MinidockerError("cannot share the host PID namespace when user namespaces are enabled",
                              exit_code=125)
