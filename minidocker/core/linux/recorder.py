"""A syscall layer that writes the calls down instead of making them.

    rec = Recorder()
    rootfs.setup("/var/lib/minidocker/overlay2/<id>/merged", spec, linux=rec)   # no root needed
    print("\\n".join(rec.lines()))
        mount(None, "/", None, MS_REC|MS_SLAVE)
        mount("/var/lib/.../merged", "/var/lib/.../merged", None, MS_BIND|MS_REC)
        mount("proc", ".../merged/proc", "proc", MS_NOSUID|MS_NODEV|MS_NOEXEC)
        ...
        pivot_root(".", ".")
        umount2(".", MNT_DETACH)

The order is the lesson (tests/test_rootfs_order.py asserts it; notebook 02 prints it).
"""
from __future__ import annotations

from .syscalls import Linux, flag_names


class Recorder(Linux):
    def __init__(self):
        self.calls: list[tuple] = []
        self._next_fd = 1000  # pretend file descriptors

    def _rec(self, *call) -> None:
        self.calls.append(call)

    def mount(self, source, target, fstype=None, flags=0, data=None) -> None:
        self._rec("mount", source, target, fstype, flags, data)

    def umount2(self, target, flags=0) -> None:
        self._rec("umount2", target, flags)

    def pivot_root(self, new_root, put_old) -> None:
        self._rec("pivot_root", new_root, put_old)

    def mknod(self, path, mode, device) -> None:
        self._rec("mknod", path, mode, device)

    def symlink(self, target, path) -> None:
        self._rec("symlink", target, path)

    def mkdir_p(self, path, mode=0o755) -> None:
        self._rec("mkdir", path)

    def chmod(self, path, mode) -> None:
        self._rec("chmod", path, oct(mode))

    def chown(self, path, uid, gid) -> None:
        self._rec("chown", path, uid, gid)

    def touch(self, path) -> None:
        self._rec("touch", path)

    def unlink(self, path) -> None:
        self._rec("unlink", path)

    def open_dir(self, path) -> int:
        self._next_fd += 1
        self._rec("open", path, self._next_fd)
        return self._next_fd

    def fchdir(self, fd) -> None:
        self._rec("fchdir", fd)

    def chdir(self, path) -> None:
        self._rec("chdir", path)

    def close(self, fd) -> None:
        self._rec("close", fd)

    def umask(self, mask) -> int:
        self._rec("umask", mask)
        return 0o022

    def sethostname(self, name) -> None:
        self._rec("sethostname", name)

    # --- reading the record ---
    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def mounts(self) -> list[tuple]:
        """(source, target, fstype, flags, data) of every mount call, in order."""
        return [c[1:] for c in self.calls if c[0] == "mount"]

    def lines(self, strip: str = "") -> list[str]:
        """The calls as C-like lines; `strip` (e.g. the rootfs path) is shortened to "…"."""
        def arg(v):
            if isinstance(v, str):
                return repr(v.replace(strip, "…") if strip else v).replace("'", '"')
            return "None" if v is None else str(v)
        out = []
        for name, *args in self.calls:
            if name == "mount":
                src, tgt, fstype, flags, data = args
                out.append(f"mount({arg(src)}, {arg(tgt)}, {arg(fstype)}, {flag_names(flags)}"
                           + (f", {arg(data)})" if data else ")"))
            elif name == "umount2":
                out.append(f"umount2({arg(args[0])}, {flag_names(args[1], 'MNT_')})")
            elif name == "umask":
                out.append(f"umask({args[0]:#05o})")
            elif name == "mknod":
                import os
                out.append(f"mknod({arg(args[0])}, {oct(args[1] & 0o7777)}, {os.major(args[2])}:{os.minor(args[2])})")
            else:
                out.append(f"{name}({', '.join(arg(a) for a in args)})")
        return out
