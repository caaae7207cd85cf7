"""bpf(2): load an eBPF program into the kernel and attach it to a cgroup (the v2 device rules).

Two calls: BPF_PROG_LOAD hands the kernel the instructions; its verifier checks that the
program terminates and reads only what it may, then returns a file descriptor for it.
BPF_PROG_ATTACH ties that program to a cgroup directory; from then on the kernel runs it for
every process in the cgroup (and its children), and keeps it there after we close our fd.
core/cgroups/devices.py writes the program. Taught in notebook 04 (cgroups).
"""
from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(platform.machine(), 321)

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2  # more programs may be attached below (runc attaches this way)


class _ProgLoad(ctypes.Structure):  # the BPF_PROG_LOAD part of union bpf_attr
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32),
                ("insns", ctypes.c_uint64), ("license", ctypes.c_uint64),
                ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32), ("log_buf", ctypes.c_uint64),
                ("kern_version", ctypes.c_uint32), ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32), ("_rest", ctypes.c_uint8 * 56)]


class _ProgAttach(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("replace_bpf_fd", ctypes.c_uint32), ("_rest", ctypes.c_uint8 * 12)]


class _ProgQuery(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_type", ctypes.c_uint32),
                ("query_flags", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32),
                ("prog_ids", ctypes.c_uint64), ("prog_cnt", ctypes.c_uint32), ("_rest", ctypes.c_uint8 * 36)]


def _bpf(cmd: int, attr: ctypes.Structure, what: str) -> int:
    ret = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(cmd), ctypes.byref(attr),
                        ctypes.c_uint(ctypes.sizeof(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def load_device_program(code: bytes, name: str = "minidocker_dev") -> int:
    """Load an eBPF program of type CGROUP_DEVICE; return its fd. The verifier's complaint,
    if any, is in the error message."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache")
    log = ctypes.create_string_buffer(65536)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=len(code) // 8,
                     insns=ctypes.addressof(insns), license=ctypes.addressof(license_),
                     log_level=1, log_size=len(log), log_buf=ctypes.addressof(log),
                     prog_name=name.encode()[:15])
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")
    except OSError as e:
        detail = log.value.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise OSError(e.errno, f"{e.strerror} {detail[0]}".strip()) from None


def attach_device_program(cgroup_dir: str, prog_fd: int) -> None:
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _bpf(BPF_PROG_ATTACH, _ProgAttach(target_fd=fd, attach_bpf_fd=prog_fd, attach_type=BPF_CGROUP_DEVICE,
                                          attach_flags=BPF_F_ALLOW_MULTI), f"bpf(BPF_PROG_ATTACH, {cgroup_dir})")
    finally:
        os.close(fd)


def device_programs(cgroup_dir: str) -> list[int]:
    """The ids of the device programs attached to a cgroup directory itself (`bpftool cgroup list`)."""
    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ids = (ctypes.c_uint32 * 64)()
        q = _ProgQuery(target_fd=fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ctypes.addressof(ids), prog_cnt=64)
        _bpf(BPF_PROG_QUERY, q, f"bpf(BPF_PROG_QUERY, {cgroup_dir})")
        return list(ids[:q.prog_cnt])
    finally:
        os.close(fd)


def restrict_devices(cgroup_dir: str, code: bytes) -> None:
    """Load `code` and attach it to `cgroup_dir`; the cgroup keeps the program alive."""
    prog = load_device_program(code)
    try:
        attach_device_program(cgroup_dir, prog)
    finally:
        os.close(prog)
