"""A one-system-call program, made byte by byte: ask the kernel directly, no libc, no shell.

busybox has no `keyctl`, `perf` or `userfaultfd` command, and a Python or C program would
need a compiler or an interpreter in the image. So this module writes a tiny static ELF
executable (x86_64, ~200 bytes) that makes ONE system call with fixed arguments and exits
with the errno it got (0 on success). Run it in a container and its exit code says what
seccomp, the capabilities or the kernel decided:

    with open("keyctl", "wb") as f:
        f.write(sysprobe.elf(250, 0, -4, 0))      # keyctl(KEYCTL_GET_KEYRING_ID, @u, 0)
    # docker run -v $PWD:/p busybox /p/keyctl; echo $?    -> 1 (EPERM: the default profile)

Used by tests/test_confinement.py to compare minidocker with Docker, and by notebook 10.
"""
from __future__ import annotations

import platform
import struct

BASE = 0x400000
_EHDR, _PHDR = 64, 56
# mov <reg>, imm64 for the syscall number and its six arguments (x86_64 ABI: rax; rdi rsi rdx r10 r8 r9)
_MOV_IMM64 = [b"\x48\xb8", b"\x48\xbf", b"\x48\xbe", b"\x48\xba", b"\x49\xba", b"\x49\xb8", b"\x49\xb9"]
_TAIL = bytes.fromhex(
    "0f05"          # syscall
    "4889c7"        # mov rdi, rax       the result...
    "48f7df"        # neg rdi            ...negated: -(-errno) = errno
    "4885c0"        # test rax, rax
    "7902"          # jns +2             success: exit 0
    "eb02"          # jmp +2             failure: exit errno
    "31ff"          # xor edi, edi
    "b83c000000"    # mov eax, 60        exit(edi)
    "0f05"          # syscall
)


def supported(machine: str | None = None) -> bool:
    return (machine or platform.machine()) == "x86_64"


def code(nr: int, *args: int) -> bytes:
    if len(args) > 6:
        raise ValueError("a system call has at most six arguments")
    values = [nr, *args] + [0] * (6 - len(args))
    return b"".join(op + struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF) for op, v in zip(_MOV_IMM64, values)) + _TAIL


def elf(nr: int, *args: int) -> bytes:
    """A static x86_64 ELF executable making syscall `nr` with `args`; exit code = errno."""
    body = code(nr, *args)
    entry = BASE + _EHDR + _PHDR
    size = _EHDR + _PHDR + len(body)
    ehdr = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)             # 64-bit, little endian, v1, System V
            + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, entry,      # ET_EXEC, EM_X86_64
                          _EHDR, 0, 0, _EHDR, _PHDR, 1, 0, 0, 0))  # one program header, no sections
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)  # PT_LOAD, R+X, the whole file
    return ehdr + phdr + body
