"""Which devices a container may open, as an eBPF program (cgroup v2's device controller).

cgroup v1 has a `devices` controller: write "c 1:3 rwm" into devices.allow (v1.py). cgroup v2
has no such file. Instead the kernel runs a small eBPF program, attached to the container's
cgroup (type BPF_PROG_TYPE_CGROUP_DEVICE), every time a process in it creates (mknod) or
opens a device node; the program gets the device's type, major, minor and the access wanted,
and returns 1 (allow) or 0 (deny, EPERM). runc compiles Docker's device rules into such a
program; so does this module, instruction by instruction:

    r2 = ctx->access_type & 0xffff     the type: 1 block, 2 char
    r3 = ctx->access_type >> 16        the access: 1 mknod, 2 read, 4 write
    r4 = ctx->major, r5 = ctx->minor
    for each rule: if type, access, major and minor match, return 1
    return 0

Pure: rules(), program() (the instructions), disassemble() and run() (an interpreter of the
few instructions used, to check a program without the kernel). core/linux/bpf.py loads and
attaches it. Taught in notebook 04 (cgroups: the v1 and v2 files side by side).
"""
from __future__ import annotations

import struct

# Docker's default device rules (moby oci/defaults.go): mknod anything, open only these.
DEFAULT_RULES = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                 "c 1:5 rwm", "c 1:9 rwm", "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]

ALLOW_ALL = ["a *:* rwm"]  # --privileged (moby: linux.resources.devices [{"allow": true, "access": "rwm"}])
TYPES = {"b": 1, "c": 2, "a": 0}        # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR; a: any
ACCESS = {"m": 1, "r": 2, "w": 4}       # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
WILDCARD = -1


def parse_rule(rule: str) -> tuple[int, int, int, int]:
    """ "c 1:3 rwm" -> (type, major, minor, access bits); * is WILDCARD."""
    try:
        kind, numbers, access = rule.split()
        major, minor = numbers.split(":")
        bits = 0
        for ch in access:
            bits |= ACCESS[ch]
        return (TYPES[kind], WILDCARD if major == "*" else int(major),
                WILDCARD if minor == "*" else int(minor), bits)
    except (ValueError, KeyError):
        raise ValueError(f"bad device rule {rule!r}: want e.g. 'c 1:3 rwm'") from None


# ---------------------------------------------------------------- eBPF, the few instructions used
# struct bpf_insn { u8 code; u8 dst_reg:4, src_reg:4; s16 off; s32 imm; }
LDXW = 0x61      # dst = *(u32 *)(src + off)
AND32 = 0x54     # dst &= imm (32-bit)
RSH32 = 0x74     # dst >>= imm
MOV32 = 0xB4     # dst = imm
MOV32X = 0xBC    # dst = src
JNE = 0x55       # if dst != imm: pc += off
JNEX = 0x5D      # if dst != src: pc += off
EXIT = 0x95      # return r0


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> tuple[int, int, int, int, int]:
    return (code, dst, src, off, imm)


def program(rules: list[str]) -> list[tuple[int, int, int, int, int]]:
    """The device program for `rules` (allow rules, in order; anything else is denied)."""
    prog = [insn(LDXW, 2, 1, 0), insn(AND32, 2, imm=0xFFFF),       # r2 = type
            insn(LDXW, 3, 1, 0), insn(RSH32, 3, imm=16),           # r3 = access
            insn(LDXW, 4, 1, 4), insn(LDXW, 5, 1, 8)]              # r4 = major, r5 = minor
    for rule in rules:
        kind, major, minor, access = parse_rule(rule)
        checks = []  # each: instructions ending in a jump to the next rule (offset filled below)
        if kind:
            checks.append([insn(JNE, 2, imm=kind)])
        if access != 7:  # wanted & allowed must be wanted
            checks.append([insn(MOV32X, 1, 3), insn(AND32, 1, imm=access), insn(JNEX, 1, 3)])
        if major != WILDCARD:
            checks.append([insn(JNE, 4, imm=major)])
        if minor != WILDCARD:
            checks.append([insn(JNE, 5, imm=minor)])
        block = [i for c in checks for i in c] + [insn(MOV32, 0, imm=1), insn(EXIT)]
        for pos, (code, dst, src, _, imm) in enumerate(block):
            if code in (JNE, JNEX):
                block[pos] = insn(code, dst, src, len(block) - pos - 1, imm)
        prog += block
        if not checks:  # allows everything ("a *:* rwm", --privileged): what follows could never
            return prog  # run, and the kernel's verifier refuses a program with unreachable code
    return prog + [insn(MOV32, 0, imm=0), insn(EXIT)]


def encode(prog: list[tuple[int, int, int, int, int]]) -> bytes:
    return b"".join(struct.pack("<BBhi", code, dst | src << 4, off, imm) for code, dst, src, off, imm in prog)


_NAMES = {LDXW: "ldxw", AND32: "and32", RSH32: "rsh32", MOV32: "mov32", MOV32X: "mov32",
          JNE: "jne", JNEX: "jne", EXIT: "exit"}
_FIELDS = {0: "access_type", 4: "major", 8: "minor"}


def disassemble(prog: list[tuple[int, int, int, int, int]]) -> list[str]:
    out = []
    for pc, (code, dst, src, off, imm) in enumerate(prog):
        name = _NAMES.get(code, hex(code))
        if code == LDXW:
            text = f"r{dst} = ctx->{_FIELDS.get(off, off)}"
        elif code in (AND32, RSH32):
            text = f"r{dst} {'&' if code == AND32 else '>>'}= {imm:#x}"
        elif code == MOV32:
            text = f"r{dst} = {imm}"
        elif code == MOV32X:
            text = f"r{dst} = r{src}"
        elif code in (JNE, JNEX):
            text = f"if r{dst} != {f'r{src}' if code == JNEX else imm} goto {pc + 1 + off}"
        else:
            text = "exit (return r0)"
        out.append(f"{pc:3}: {name:<6} {text}")
    return out


def run(prog: list[tuple[int, int, int, int, int]], kind: str, major: int, minor: int, access: str) -> bool:
    """What the kernel would answer for a process that wants `access` ("m", "r", "w" or
    combined) on device `kind` ("c"/"b") major:minor."""
    bits = 0
    for ch in access:
        bits |= ACCESS[ch]
    ctx = {0: TYPES[kind] | bits << 16, 4: major, 8: minor}
    r = [0] * 11
    r[1] = None  # the context pointer
    pc = 0
    while True:
        code, dst, src, off, imm = prog[pc]
        pc += 1
        if code == LDXW:
            r[dst] = ctx[off]
        elif code == AND32:
            r[dst] &= imm & 0xFFFFFFFF
        elif code == RSH32:
            r[dst] = (r[dst] & 0xFFFFFFFF) >> imm
        elif code == MOV32:
            r[dst] = imm & 0xFFFFFFFF
        elif code == MOV32X:
            r[dst] = r[src]
        elif code == JNE:
            pc += off if r[dst] != imm & 0xFFFFFFFF else 0
        elif code == JNEX:
            pc += off if r[dst] != r[src] else 0
        elif code == EXIT:
            return r[0] == 1
        else:
            raise ValueError(f"instruction {code:#x} is not one this interpreter knows")
