"""overlay2: image layers and container layers, laid out on disk exactly as Docker does.

Each layer is a directory `overlay2/<cache-id>/`:

    diff/     the files this layer adds or changes (its "delta"); whiteouts mark deletions
    link      a 26-character short id; `overlay2/l/<short-id>` is a symlink to ../<cache-id>/diff
    lower     (layers with a parent) `l/<parent-short>:l/<grandparent-short>:...`, uppermost first
    work/     (layers with a parent) scratch space the overlay filesystem needs
    merged/   where the union is mounted while a container uses this layer
    committed (on a parent) an empty file: "someone built on top of me"

Why the short ids? mount(2) takes its options in one page (4096 bytes). Sixty layers with
64-character absolute paths would not fit; `l/ABC...` names do.

A container gets two layers on top of its image: `<id>-init` (the files Docker always
provides: /etc/hosts, /etc/resolv.conf, /dev mount points, ...) and `<id>` (its writable
layer, the overlay "upperdir"). Image layers are only ever lowerdirs, so no container can
change them. Taught in notebook 05 (overlay2); mount_overlay is a step of notebook 99.
"""
from __future__ import annotations

import base64
import errno
import os
import stat
import threading

from . import steps
from .linux import syscalls as sc
from .. import fsutil
from .linux.procfs import is_mountpoint
from .userns import running_in_user_namespace

MAX_DEPTH = 128  # moby's limit on the number of lower layers


def _short_id() -> str:
    # base32 of random bytes, cut to 26 characters (moby: generateID)
    return base64.b32encode(os.urandom(16)).decode()[:26]


def random_id() -> str:
    return os.urandom(32).hex()  # (what secrets.token_hex does, without importing it)


def mount_options(lowers: list[str], upper: str, work: str, userxattr: bool = False,
                  volatile: bool = False) -> str:
    """The overlay mount data string. Pure: tested without root. `userxattr` in a user
    namespace (rootless mode): overlayfs keeps its marks in user.overlay.* xattrs there,
    since trusted.* ones are for the host's root only (Linux 5.11+). `volatile` (Linux 5.10+):
    overlayfs skips its syncs of the upper dir (see Overlay2.mount)."""
    return f"index=off,lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}" + \
        (",userxattr" if userxattr else "") + (",volatile" if volatile else "")


def mount_overlay(lowers: list[str], upper: str, work: str, target: str) -> None:
    """mount -t overlay overlay -o lowerdir=...,upperdir=...,workdir=... target
    (`lowers` uppermost first; the paths may be relative to the current directory)."""
    sc.mount("overlay", target, "overlay", 0, mount_options(lowers, upper, work, running_in_user_namespace()))


def mount_overlay_volatile(lowers: list[str], upper: str, work: str, target: str) -> None:
    """The same, with `volatile` (see Overlay2.mount); without it on a kernel older than 5.10."""
    try:
        sc.mount("overlay", target, "overlay", 0,
                 mount_options(lowers, upper, work, running_in_user_namespace(), volatile=True))
    except OSError as e:
        if e.errno != errno.EINVAL:
            raise
        mount_overlay(lowers, upper, work, target)


# The working directory belongs to the whole process: in a threaded one (minidocker serve) two
# mounts must not move it at the same time.
_CWD_LOCK = threading.Lock()


class Overlay2:
    def __init__(self, home: str):
        self.home = home  # <root>/overlay2
        os.makedirs(os.path.join(home, "l"), exist_ok=True)

    # --- paths ---
    def dir(self, cache_id: str) -> str:
        if not cache_id or "/" in cache_id or cache_id in (".", "..", "l"):
            raise ValueError(f"invalid layer id {cache_id!r}")
        return os.path.join(self.home, cache_id)

    def diff(self, cache_id: str) -> str:
        return os.path.join(self.dir(cache_id), "diff")

    def merged(self, cache_id: str) -> str:
        return os.path.join(self.dir(cache_id), "merged")

    def exists(self, cache_id: str) -> bool:
        return os.path.isdir(self.diff(cache_id))

    def lower_chain(self, cache_id: str) -> list[str]:
        """The `lower` file as a list: short links, uppermost first."""
        try:
            with open(os.path.join(self.dir(cache_id), "lower")) as f:
                return [x for x in f.read().strip().split(":") if x]
        except FileNotFoundError:
            return []

    def link(self, cache_id: str) -> str:
        with open(os.path.join(self.dir(cache_id), "link")) as f:
            return f.read().strip()

    # --- create / remove ---
    def create(self, cache_id: str | None = None, parent: str | None = None) -> str:
        """Make an empty layer on top of `parent` (a cache id) and return its cache id."""
        cache_id = cache_id or random_id()
        d = self.dir(cache_id)
        os.makedirs(d, mode=0o700)
        try:
            os.mkdir(os.path.join(d, "diff"), 0o755)
            short = _short_id()
            os.symlink(os.path.join("..", cache_id, "diff"), os.path.join(self.home, "l", short))
            with open(os.path.join(d, "link"), "w") as f:
                f.write(short)
            if parent:
                lowers = [f"l/{self.link(parent)}"] + self.lower_chain(parent)
                if len(lowers) > MAX_DEPTH:
                    raise OSError(errno.EINVAL, "max depth exceeded")
                with open(os.path.join(d, "lower"), "w") as f:
                    f.write(":".join(lowers))
                os.mkdir(os.path.join(d, "work"), 0o700)
                open(os.path.join(self.dir(parent), "committed"), "a").close()
        except BaseException:
            self.remove(cache_id)
            raise
        return cache_id

    def remove(self, cache_id: str) -> None:
        d = self.dir(cache_id)
        merged = os.path.join(d, "merged")
        if is_mountpoint(merged):
            sc.umount2(merged, sc.MNT_DETACH)
        try:
            short = self.link(cache_id)
            os.unlink(os.path.join(self.home, "l", short))
        except (FileNotFoundError, OSError):
            pass
        fsutil.rmtree(d, ignore_errors=True)

    # --- mount / unmount ---
    def mount(self, cache_id: str, volatile: bool = False) -> str:
        """Mount the union of `cache_id` (as upper) and its lowers on merged/; return merged.

        `volatile`: the upper layer is thrown away after one run (`run --rm`), so overlayfs
        need not sync it to disk, ever. Without it, unmounting syncs the whole file system
        the upper dir is on (syncfs): ~0.5 ms on an idle disk, tens or hundreds of ms on a
        busy one, at the end of every container. (Docker does not do this; its --rm is
        removed by the daemon after a normal unmount.)"""
        d = self.dir(cache_id)
        merged = os.path.join(d, "merged")
        os.makedirs(merged, mode=0o700, exist_ok=True)
        if is_mountpoint(merged):
            return merged
        lowers = self.lower_chain(cache_id)
        if not lowers:
            raise ValueError(f"layer {cache_id} has no parent: nothing to mount")
        mount = steps.get("mount_overlay", mount_overlay)  # (a learner's, in notebook 99)
        if volatile and mount is mount_overlay:
            mount = mount_overlay_volatile
        abs_lowers = [os.path.join(self.home, x) for x in lowers]
        upper, work = os.path.join(d, "diff"), os.path.join(d, "work")
        if len(mount_options(abs_lowers, upper, work)) < os.sysconf("SC_PAGESIZE") - 1:
            mount(abs_lowers, upper, work, merged)
        else:
            # Too long for one page: use paths relative to overlay2/, as moby does.
            with _CWD_LOCK:
                cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.chdir(self.home)
                    mount(lowers, os.path.join(cache_id, "diff"), os.path.join(cache_id, "work"), merged)
                finally:
                    os.fchdir(cwd)
                    os.close(cwd)
        return merged

    def mount_readonly(self, cache_ids: list[str], target: str) -> None:
        """Mount the union of layers (uppermost first), with no upper dir: a read-only view of
        an image (overlayfs needs two or more lower dirs for that)."""
        lowers = [f"l/{self.link(c)}" for c in cache_ids]
        with _CWD_LOCK:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.chdir(self.home)  # short relative l/ paths keep the options within a page
                sc.mount("overlay", target, "overlay", sc.MS_RDONLY,
                         f"lowerdir={':'.join(lowers)}" + (",userxattr" if running_in_user_namespace() else ""))
            finally:
                os.fchdir(cwd)
                os.close(cwd)

    def unmount(self, cache_id: str) -> None:
        merged = self.merged(cache_id)
        if is_mountpoint(merged):
            sc.umount2(merged, sc.MNT_DETACH)
        try:
            os.rmdir(merged)
        except OSError:
            pass

    def layers(self) -> list[str]:
        return sorted(x for x in os.listdir(self.home) if x != "l" and not x.startswith("."))


# --- deletions, overlayfs' way ----------------------------------------------------------
# A layer cannot delete a file of the layers below; it can only hide it. overlayfs marks
# that in the upper (diff/) directory with a *whiteout*, a character device 0/0 of the
# same name, and marks a directory whose lower contents are all hidden as *opaque*.
# (Layer tars say the same with `.wh.` names: storage/archive.py translates.)
OPAQUE_XATTR = "trusted.overlay.opaque"
USER_OPAQUE_XATTR = "user.overlay.opaque"  # the same mark with `userxattr` (rootless mode)


def opaque_xattr() -> str:
    return USER_OPAQUE_XATTR if running_in_user_namespace() else OPAQUE_XATTR


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs marks a deleted file with a character device 0/0 in the upper dir."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: str) -> bool:
    """A directory overlayfs shows as "only what this layer has": the xattr trusted.overlay.opaque=y."""
    try:
        return os.getxattr(path, opaque_xattr(), follow_symlinks=False) == b"y"
    except OSError:
        return False


def visible_in_layers(diffs: list[str], rel: str) -> bool:
    """Would `rel` exist in the overlay of `diffs` (uppermost first)? Answered the way
    overlayfs does: the first layer that has the path decides; a whiteout hides it; a
    whiteout or opaque directory on the way hides everything from the layers below."""
    parts = rel.strip("/").split("/")
    for diff in diffs:
        cur = diff
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                break  # not in this layer: look further down
            if is_whiteout(st):
                return False
            if i == len(parts) - 1:
                return True
            if not stat.S_ISDIR(st.st_mode):
                return False  # a file where a directory should be
            if is_opaque(cur):
                # everything under an opaque dir comes from this layer only
                return os.path.lexists(os.path.join(diff, *parts))
    return False
