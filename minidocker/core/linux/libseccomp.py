"""libseccomp through ctypes: compile an OCI `linux.seccomp` section into a BPF filter, show it,
load it. The same library runc uses (libseccomp2 is on every Debian and Ubuntu: systemd needs it).

libseccomp does the hard parts a runtime should not redo: syscall names to numbers on each
architecture (x86_64 plus the 32-bit x86 and x32 ABIs a 64-bit kernel also accepts: a filter
that only checked x86_64 numbers could be bypassed with int 0x80), 64-bit argument
comparisons split into 32-bit BPF words, and a jump tree instead of a linear scan.
core/seccomp.py (pure) turns a profile into the rules given here, and reads and runs the
program libseccomp makes. Taught in notebook 01 (the container's Seccomp line).
"""
from __future__ import annotations

import ctypes
import os

_lib = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        # the soname first: ctypes.util.find_library runs `ldconfig -p` (~10 ms at every start)
        try:
            _lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        except OSError:
            from ctypes.util import find_library
            name = find_library("seccomp") or "libseccomp.so"
            try:
                _lib = ctypes.CDLL(name, use_errno=True)
            except OSError as e:
                raise OSError(f"libseccomp is missing ({e}): apt-get install libseccomp2") from None
        _lib.seccomp_init.restype = ctypes.c_void_p
        _lib.seccomp_init.argtypes = [ctypes.c_uint32]
        for fn in ("seccomp_release",):
            getattr(_lib, fn).argtypes = [ctypes.c_void_p]
        _lib.seccomp_load.argtypes = [ctypes.c_void_p]
        _lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        _lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        _lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        _lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        _lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p  # char*, to free()
        _lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
        _lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                ctypes.c_uint, ctypes.c_void_p]
    return _lib


class ArgCmp(ctypes.Structure):  # struct scmp_arg_cmp
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


SCMP_FLTATR_CTL_NNP = 3      # libseccomp sets no_new_privs when loading unless told not to
__NR_SCMP_ERROR = -1


def available() -> bool:
    try:
        lib()
        return True
    except OSError:
        return False


def syscall_number(name: str) -> int | None:
    """The native number of a syscall name (negative pseudo-numbers for calls only another
    architecture of the filter has, e.g. socketcall on x86_64); None if libseccomp does not know it."""
    nr = lib().seccomp_syscall_resolve_name(name.encode())
    return None if nr == __NR_SCMP_ERROR else nr


def syscall_name(nr: int) -> str | None:
    p = lib().seccomp_syscall_resolve_num_arch(0, nr)  # 0: the native architecture
    if not p:
        return None
    try:
        return ctypes.string_at(p).decode()
    finally:
        ctypes.CDLL(None).free(ctypes.c_void_p(p))


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise OSError(-ret, f"{what}: {os.strerror(-ret)}")


class Filter:
    """A libseccomp filter context. `default`: the 32-bit action for calls no rule matches;
    `architectures`: libseccomp names ("x86_64", "x86", "x32"); `rules`: (syscall name, action,
    [(arg index, comparison op, value, value two)]), the comparisons of one rule ANDed. Use as a
    context manager; export() gives the BPF program, load() installs it in the calling thread."""

    def __init__(self, default: int, architectures: list[str], rules: list[tuple[str, int, list[tuple]]]):
        self.skipped: list[str] = []  # names this libseccomp does not know (runc ignores them too)
        L = lib()
        self.ctx = L.seccomp_init(default)
        if not self.ctx:
            raise OSError("seccomp_init failed")
        try:
            # no_new_privs is the runtime's choice (process.noNewPrivileges), not libseccomp's
            _check(L.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set")
            for arch in architectures:
                token = L.seccomp_arch_resolve_name(arch.encode())
                if token == 0:
                    raise OSError(f"unknown seccomp architecture {arch}")
                ret = L.seccomp_arch_add(self.ctx, token)
                if ret < 0 and -ret != 17:  # EEXIST: the native one is there already
                    _check(ret, f"seccomp_arch_add({arch})")
            for name, action, args in rules:
                nr = syscall_number(name)
                if nr is None:
                    self.skipped.append(name)
                    continue
                arr = (ArgCmp * max(len(args), 1))(*[ArgCmp(*a) for a in args])
                _check(L.seccomp_rule_add_array(self.ctx, action, nr, len(args), arr if args else None),
                       f"seccomp_rule_add({name})")
        except BaseException:
            self.close()
            raise

    def export(self) -> bytes:
        """The BPF program the kernel will run (what seccomp_load would install)."""
        fd = os.memfd_create("seccomp-bpf")
        try:
            _check(lib().seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def load(self) -> None:
        _check(lib().seccomp_load(self.ctx), "seccomp_load")

    def close(self) -> None:
        if self.ctx:
            lib().seccomp_release(self.ctx)
            self.ctx = None

    def __enter__(self) -> "Filter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
