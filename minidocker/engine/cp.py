"""`docker cp`: files between a container and the host (or a tar stream), both ways.

Taught in notebook 07 (volumes and data). The container's side of the copy runs in a helper
process whose root *is* the container's root, so a path (and any symlink in it) means what
it means inside the container and nothing can lead out to the host's files:

    running container   the helper joins its mount namespace (setns: our root becomes its
                        root; its volumes and tmpfs mounts are there too)
    stopped container   the helper makes a mount namespace of its own, mounts the container's
                        overlay and binds its volumes where the container would see them,
                        then chroot()s into it

Between the two sides goes a tar stream, as between the docker CLI and dockerd (GET/PUT
/containers/<id>/archive). Where a copy lands follows Docker's rules (resolve_dest): into an
existing directory, or under a new name; "dir/." copies a directory's contents.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tarfile

from ..core.userns import IdMap
from ..errors import MinidockerError, NotFound


class CopyError(MinidockerError):
    pass


# ---------------------------------------------------------------- the rules (pure)
def split_arg(arg: str) -> tuple[str | None, str]:
    """docker/cli splitCpArg: "name:/path" is a container's path; an absolute path, a path
    starting with "." or one without ":" is the host's."""
    if arg == "-" or arg.startswith("/"):
        return None, arg
    name, colon, path = arg.partition(":")
    if not colon or name.startswith("."):
        return None, arg
    return name, path


def resolve_dest(src_name: str, src_is_dir: bool, contents_only: bool, dest: str, dest_kind: str | None,
                 parent_is_dir: bool) -> tuple[str, str | None]:
    """Where a copy of `src_name` lands, given what `dest` is (dest_kind: "dir", "file" or
    None if missing). Returns (directory to extract into, new name for src_name or None to
    keep it; "." for a directory's contents). Raises CopyError with Docker's words."""
    if dest_kind == "dir":
        return dest, "." if (src_is_dir and contents_only) else None
    if dest_kind == "file":
        if src_is_dir:
            raise CopyError("cannot copy directory")
        return os.path.dirname(dest.rstrip("/")) or "/", os.path.basename(dest)
    if dest.endswith("/") and not src_is_dir:  # (a directory may be made there; a file not)
        raise CopyError("no such directory")
    dest = dest.rstrip("/") or "/"
    parent = os.path.dirname(dest) or "."
    if not parent_is_dir:
        raise NotFound(parent)
    return parent, os.path.basename(dest)


def renamed(member: str, src_name: str, new: str | None) -> str | None:
    """A tar member's name under its new top-level name (None: leave the top out)."""
    if new is None:
        return member
    rest = member[len(src_name):].lstrip("/") if member != src_name else ""
    if new == ".":
        return rest or None
    return f"{new}/{rest}" if rest else new


def safe_member(name: str) -> bool:
    """No absolute name and no `..`: a stream handed to us names things under its top only."""
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and ".." not in parts


# ---------------------------------------------------------------- the container's side
def _kind(path: str, follow: bool = True) -> str | None:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return "dir" if stat.S_ISDIR(st.st_mode) else "file"


def _extract(tf, into: str, src_name: str, new: str | None, uid_gid: tuple[int, int] | None,
             maps=None) -> None:
    """Extract the stream into `into` under the new name, refusing what would go through a
    symlink or outside (a host extraction: the tar comes from a container). `maps`: a
    --userns-remap container's (uid, gid) IdMaps: owners are shifted to the host's ids."""
    real_into = os.path.realpath(into)
    for m in tf:
        name = renamed(m.name.rstrip("/"), src_name, new)
        if name is None:
            continue
        if not safe_member(name):
            raise CopyError(f"refusing to extract {m.name!r}: outside the destination")
        parent = os.path.dirname(os.path.join(into, name))
        if os.path.realpath(parent) != os.path.normpath(os.path.join(real_into, os.path.dirname(name))):
            raise CopyError(f"refusing to extract {m.name!r}: through a symbolic link")
        m.name = name
        if uid_gid is not None:
            m.uid, m.gid = uid_gid
        elif maps is not None:
            m.uid, m.gid = maps[0].to_host(m.uid), maps[1].to_host(m.gid)
        if m.isreg() or m.isdir() or m.issym() or m.islnk():
            if m.islnk():
                m.linkname = renamed(m.linkname, src_name, new) or m.linkname
            # (our own checks above; `filter` exists from Python 3.11.4 / 3.12, not in Debian 12's 3.11.2)
            extra = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
            tf.extract(m, into, numeric_owner=True, set_attrs=True, **extra)


def _maps(req: dict):
    if not req.get("idmaps"):
        return None
    return IdMap.from_oci(req["idmaps"]["uidMappings"]), IdMap.from_oci(req["idmaps"]["gidMappings"])


def _in_container(req: dict) -> int:
    """The helper, inside the container's root: "in" extracts the tar on stdin at req["dest"];
    "out" writes a JSON line (what the source is) and a tar of it on stdout."""
    try:
        if req["mode"] == "in":
            dest = req["dest"]
            kind = _kind(dest)
            if req.get("stream") and kind != "dir":  # `cp - c:DEST`: the tar is unpacked in DEST
                raise CopyError("extraction point is not a directory")
            parent = os.path.dirname(dest.rstrip("/")) or "/"
            into, new = resolve_dest(req["src_name"], req["src_is_dir"], req["contents_only"], dest, kind,
                                     _kind(parent) == "dir")
            with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tf:
                _extract(tf, into, req["src_name"], new, None, _maps(req))
            return 0
        src = req["src"]
        follow = req.get("follow") or src.endswith("/.") or src.endswith("/")
        kind = _kind(src, follow)
        if kind is None:
            raise NotFound(src)
        name = os.path.basename(os.path.normpath(src)) or "/"
        st = os.stat(src) if follow else os.lstat(src)
        info = {"name": name, "is_dir": kind == "dir", "mode": st.st_mode, "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "link": os.readlink(src) if stat.S_ISLNK(st.st_mode) else ""}
        out = sys.stdout.buffer
        out.write((json.dumps(info) + "\n").encode())
        out.flush()
        if req["mode"] == "stat":  # (HEAD /containers/{id}/archive: what is there, no tar)
            return 0
        maps = _maps(req)

        def as_inside(info):  # (a --userns-remap container: owners as the container sees them)
            if maps is not None:
                info.uid, info.gid = maps[0].to_container(info.uid), maps[1].to_container(info.gid)
            return info

        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            tf.add(os.path.realpath(src) if follow else src, arcname=name, recursive=True, filter=as_inside)
        return 0
    except NotFound as e:
        print(json.dumps({"error": "path", "path": str(e)}), file=sys.stderr)
        return 2
    except (CopyError, OSError, tarfile.TarError) as e:
        print(json.dumps({"error": "copy", "message": str(e)}), file=sys.stderr)
        return 1


def _enter(req: dict) -> None:
    """Become a process whose root is the container's root (see the module's docstring)."""
    from ..core.linux import syscalls as sc
    if req.get("pid"):
        try:
            fd = os.open(f"/proc/{req['pid']}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, ProcessLookupError):
            fd = -1  # it ended meanwhile (a restart loop): its root as a stopped one's, below
        if fd >= 0:
            sc.setns(fd, sc.CLONE_NEWNS)
            os.close(fd)
            os.chdir("/")
            return
    sc.unshare(sc.CLONE_NEWNS)
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)
    root = req["root"]
    from ..fsutil import scoped_path
    for m in req.get("binds") or []:
        target = scoped_path(root, m["Destination"])
        if not os.path.exists(target):
            os.makedirs(target, exist_ok=True) if os.path.isdir(m["Source"]) else open(target, "a").close()
        sc.mount(m["Source"], target, None, sc.MS_BIND | sc.MS_REC)
        if not m.get("RW", True):  # (:ro stays read-only for cp too, as dockerd keeps it)
            sc.mount(None, target, None, sc.MS_BIND | sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_REC)
    os.chroot(root)
    os.chdir("/")


def main() -> int:
    req = json.loads(sys.argv[1])
    # tarfile would look owners' names up with getpwuid(): inside the container's root, glibc
    # would read its nsswitch.conf and load its libnss_*.so into us, root on the host (Docker's
    # CVE-2019-14271). Numbers only, then.
    tarfile.pwd = tarfile.grp = None
    _enter(req)
    return _in_container(req)


# ---------------------------------------------------------------- the host's side
def _helper(rt, cid: str, req: dict, stdin=None, stdout=None) -> subprocess.Popen:
    from ..spawn import helper_env
    rec = rt.containers.read(cid)
    from . import remap
    maps = remap.idmaps(rt.root.root)
    if maps and rec["HostConfig"].get("UsernsMode") != "host":
        req["idmaps"] = {"uidMappings": maps[0].oci(), "gidMappings": maps[1].oci()}
    s = rec["State"]
    if s["Running"] and s["Pid"] > 0:
        req["pid"] = s["Pid"]
    # (also for a running one: if its process ends before the helper joins it, the helper
    # falls back to the root, which _Rootfs keeps mounted)
    d = rt.images.driver
    req["root"] = d.merged(rt.images.container_mount_id(cid))
    req["binds"] = [{"Source": m["Source"], "Destination": m["Destination"], "RW": m.get("RW", True)}
                    for m in rec.get("Mounts") or [] if m.get("Type") in ("volume", "bind")]
    return subprocess.Popen([sys.executable, "-S", "-m", "minidocker.engine.cp", json.dumps(req)],
                            stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=helper_env())


class _Rootfs:
    """The container's overlay mounted while we copy (a stopped one has none), no start meanwhile."""

    def __init__(self, rt, cid: str):
        self.rt, self.cid = rt, cid

    def __enter__(self):
        self.lock = self.rt.containers.op_lock(self.cid)
        d = self.rt.images.driver
        self.mount_id = self.rt.images.container_mount_id(self.cid)
        self.was_mounted = os.path.ismount(d.merged(self.mount_id))
        d.mount(self.mount_id)
        return self

    def __exit__(self, *exc):
        if not self.was_mounted and not self.rt.containers.shim_alive(self.cid):
            self.rt.images.driver.unmount(self.mount_id)
        self.lock.release()


def _fail(proc: subprocess.Popen, ref: str) -> None:
    err = proc.stderr.read().decode(errors="replace").strip().splitlines()
    code = proc.wait()
    if code == 0:
        return
    try:
        info = json.loads(err[-1])
    except (ValueError, IndexError):
        raise MinidockerError("copy failed: " + (err[-1] if err else f"helper exited {code}")) from None
    if info["error"] == "path":
        raise NotFound(f"No such container:path: {ref}:{info['path']}")
    raise MinidockerError(info["message"])


def copy_to_container(rt, ref: str, src: str, dest: str, out_of_stdin=None) -> None:
    """`docker cp SRC|- CONTAINER:DEST`. Owners and modes come along (as dockerd keeps them)."""
    cid = rt.resolve(ref)
    if src == "-":
        req = {"mode": "in", "dest": dest, "src_name": "", "src_is_dir": True, "contents_only": True,
               "stream": True}
        source = out_of_stdin if out_of_stdin is not None else sys.stdin.buffer
    else:
        try:
            st = os.stat(src)
        except FileNotFoundError:
            raise MinidockerError(f"lstat {src}: no such file or directory") from None
        name = os.path.basename(os.path.normpath(src))
        req = {"mode": "in", "dest": dest, "src_name": name, "src_is_dir": stat.S_ISDIR(st.st_mode),
               "contents_only": src.endswith("/.")}
        source = None
    with _Rootfs(rt, cid):
        proc = _helper(rt, cid, req, stdin=subprocess.PIPE)
        try:
            if source is not None:
                while chunk := source.read(1 << 16):
                    proc.stdin.write(chunk)
            else:
                with tarfile.open(fileobj=proc.stdin, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                    tf.add(src, arcname=name, recursive=True)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        _fail(proc, ref)


def stat_path(rt, ref: str, path: str) -> dict:
    """What `path` is in the container: name, is_dir, mode (st_mode), size, mtime_ns, link."""
    cid = rt.resolve(ref)
    with _Rootfs(rt, cid):
        proc = _helper(rt, cid, {"mode": "stat", "src": path}, stdout=subprocess.PIPE)
        header = proc.stdout.readline()
        _fail(proc, ref)
    if not header:
        raise MinidockerError("stat failed")
    return json.loads(header)


def copy_from_container(rt, ref: str, src: str, dest: str, follow: bool = False, out=None,
                        on_info=None) -> None:
    """`docker cp CONTAINER:SRC DEST|-`. On the host the files belong to whoever copies.
    `on_info(info)` is called with what SRC is before the tar is written (the Engine API sends
    it as a header)."""
    cid = rt.resolve(ref)
    if dest != "-":
        kind = _kind(dest)
        parent = os.path.dirname(dest.rstrip("/")) or "."
        if kind is None and not dest.endswith("/") and _kind(parent) != "dir":
            raise MinidockerError(f'invalid output path: directory "{parent}" does not exist')
    with _Rootfs(rt, cid):
        proc = _helper(rt, cid, {"mode": "out", "src": src, "follow": follow}, stdout=subprocess.PIPE)
        header = proc.stdout.readline()
        if not header:
            _fail(proc, ref)
            raise MinidockerError("copy failed")
        info = json.loads(header)
        if on_info is not None:
            on_info(info)
        if dest == "-":
            sink = out if out is not None else sys.stdout.buffer
            while chunk := proc.stdout.read(1 << 16):
                sink.write(chunk)
            sink.flush()
        else:
            into, new = resolve_dest(info["name"], info["is_dir"], src.endswith("/."), dest, _kind(dest),
                                     True)
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
                _extract(tf, into, info["name"], new, (os.getuid(), os.getgid()))
        _fail(proc, ref)


if __name__ == "__main__":
    sys.exit(main())
