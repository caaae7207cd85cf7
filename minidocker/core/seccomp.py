"""Seccomp (安全计算模式): a filter the kernel runs on every system call the container makes.

Capabilities decide what root may do; seccomp decides which system calls may be made at all.
Before each system call the kernel runs a small classic-BPF program over the call's number,
the CPU architecture and the six arguments (struct seccomp_data), and the program's return
value decides: ALLOW, ERRNO(n) (the call fails with errno n, never reaching the kernel), KILL,
TRAP, LOG... Once loaded, a filter can never be removed, only made stricter, and it is
inherited by every child and kept across execve.

Docker's default profile (seccomp_default.json beside this module: moby v20.10.24's
profiles/seccomp/default.json, Apache-2.0) is an allow-list: ~350 calls allowed, everything
else ERRNO(EPERM). Some rules depend on the container's capabilities (with CAP_SYS_ADMIN,
`mount`, `unshare` and `clone` with namespace flags are allowed), on the architecture, or on
an argument (`personality` only with the values programs really use).

Pure, but for compile(): resolve() turns a Docker profile into the OCI `linux.seccomp`
section for one container (moby's setupSeccomp), rules() into libseccomp's terms, compile()
asks libseccomp (core/linux/libseccomp.py) for the BPF program, disassemble() shows it as
text and run() executes it on a (syscall, arch, args) the way the kernel does, so a learner
can ask "what happens to unshare(CLONE_NEWUSER)?" and check the answer in a real container.
core/init.py compiles the filter before pivot_root and installs it just before execve.
Taught in notebook 01 (the Seccomp line of a container's /proc/<pid>/status).
"""
from __future__ import annotations

import errno
import json
import os
import re
import struct

PROFILE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")


class ProfileError(ValueError):
    """A profile Docker would refuse (the daemon's message)."""


def default_profile() -> dict:
    with open(PROFILE_FILE) as f:
        return json.load(f)


# ---------------------------------------------------------------- architectures
# uname -m -> the name moby's profile uses in includes/excludes "arches" (Go's names)
NATIVE = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "armv7l": "arm", "s390x": "s390x",
          "ppc64le": "ppc64le", "mips64": "mips64"}
# Go's name -> the OCI/libseccomp architecture constant
SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "x32": "SCMP_ARCH_X32",
             "arm64": "SCMP_ARCH_AARCH64", "arm": "SCMP_ARCH_ARM", "s390x": "SCMP_ARCH_S390X",
             "s390": "SCMP_ARCH_S390", "ppc64le": "SCMP_ARCH_PPC64LE", "mips64": "SCMP_ARCH_MIPS64"}
# the value the kernel puts in seccomp_data.arch (linux/audit.h)
AUDIT_ARCH = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X32": 0xC000003E,
              "SCMP_ARCH_AARCH64": 0xC00000B7, "SCMP_ARCH_ARM": 0x40000028}
AUDIT_ARCH_NAMES = {0xC000003E: "x86_64", 0x40000003: "i386", 0xC00000B7: "aarch64", 0x40000028: "arm"}


def native_arch(machine: str | None = None) -> str:
    return NATIVE.get(machine or os.uname().machine, machine or os.uname().machine)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    """(4, 8) from "4.8.0-generic": moby compares only the first two numbers."""
    m = re.match(r"(\d+)(?:\.(\d+))?", release or os.uname().release)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)


def _min_kernel(value: str) -> tuple[int, int]:
    parts = value.split(".", 2)
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ProfileError(f'invalid kernel version: "{value}", expected "<kernel>.<major>"')
    return int(parts[0]), int(parts[1])


# ---------------------------------------------------------------- profile -> OCI
def resolve(profile: dict, bounding_caps: list[str], arch: str | None = None,
            kernel: tuple[int, int] | None = None) -> dict | None:
    """The OCI `linux.seccomp` of a container whose bounding set is `bounding_caps`
    ("CAP_..." names), from a Docker profile: rules whose includes/excludes (caps, arches,
    minKernel) do not match are dropped, the archMap becomes the list of architectures.
    None for a profile that says nothing (moby: seccomp disabled)."""
    if not isinstance(profile, dict):
        raise ProfileError("Decoding seccomp profile failed: the profile is not a JSON object")
    if not profile.get("defaultAction") and not profile.get("syscalls"):
        return None
    if profile.get("architectures") and profile.get("archMap"):
        raise ProfileError("'architectures' and 'archMap' were specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    arch = arch or native_arch()
    kernel = kernel or kernel_version()
    caps = set(bounding_caps)
    out: dict = {"defaultAction": profile.get("defaultAction") or "",
                 "architectures": list(profile.get("architectures") or [])}
    if profile.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    for a in profile.get("archMap") or []:
        if a.get("architecture") == SCMP_ARCH.get(arch):
            out["architectures"] += [a["architecture"], *(a.get("subArchitectures") or [])]
            break
    calls = []
    for call in profile.get("syscalls") or []:
        inc, exc = call.get("includes") or {}, call.get("excludes") or {}
        if arch in (exc.get("arches") or []):
            continue
        if any(c in caps for c in exc.get("caps") or []):
            continue
        if exc.get("minKernel") and kernel >= _min_kernel(exc["minKernel"]):
            continue
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if any(c not in caps for c in inc.get("caps") or []):
            continue
        if inc.get("minKernel") and kernel < _min_kernel(inc["minKernel"]):
            continue
        if call.get("name") and call.get("names"):
            raise ProfileError("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
        new = {"names": [call["name"]] if call.get("name") else list(call.get("names") or []),
               "action": call.get("action") or ""}
        if call.get("errnoRet") is not None:
            new["errnoRet"] = int(call["errnoRet"])
        if call.get("args"):
            new["args"] = [dict(a) for a in call["args"]]
        calls.append(new)
    out["syscalls"] = calls
    return out


def load_profile_text(text: str) -> dict:
    """A profile given as JSON text (`--security-opt seccomp=<file>` sends the file's content)."""
    try:
        profile = json.loads(text)
    except ValueError as e:
        raise ProfileError(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(profile, dict):
        raise ProfileError("Decoding seccomp profile failed: the profile is not a JSON object")
    return profile


# ---------------------------------------------------------------- actions
RET_KILL_PROCESS = 0x80000000
RET_KILL_THREAD = 0x00000000
RET_TRAP = 0x00030000
RET_ERRNO = 0x00050000
RET_USER_NOTIF = 0x7FC00000
RET_TRACE = 0x7FF00000
RET_LOG = 0x7FFC0000
RET_ALLOW = 0x7FFF0000

ACTIONS = {"SCMP_ACT_KILL": RET_KILL_THREAD, "SCMP_ACT_KILL_THREAD": RET_KILL_THREAD,
           "SCMP_ACT_KILL_PROCESS": RET_KILL_PROCESS, "SCMP_ACT_TRAP": RET_TRAP,
           "SCMP_ACT_ERRNO": RET_ERRNO, "SCMP_ACT_TRACE": RET_TRACE, "SCMP_ACT_LOG": RET_LOG,
           "SCMP_ACT_ALLOW": RET_ALLOW}


def action_value(name: str, errno_ret: int | None = None) -> int:
    """The 32-bit value a filter returns for an OCI action; ERRNO without a number is EPERM (runc)."""
    if name not in ACTIONS:
        raise ProfileError(f"unknown seccomp action {name!r}")  # (SCMP_ACT_NOTIFY needs a listener)
    value = ACTIONS[name]
    if name == "SCMP_ACT_ERRNO":
        value |= (errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    elif name == "SCMP_ACT_TRACE":
        value |= (errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def action_name(value: int) -> str:
    """ALLOW, ERRNO(EPERM), KILL_PROCESS... for a filter's return value."""
    action, data = value & 0xFFFF0000, value & 0xFFFF
    if action == RET_ERRNO:
        return f"ERRNO({errno.errorcode.get(data, data)})"
    for name, v in (("ALLOW", RET_ALLOW), ("KILL_PROCESS", RET_KILL_PROCESS), ("KILL_THREAD", RET_KILL_THREAD),
                    ("TRAP", RET_TRAP), ("LOG", RET_LOG), ("USER_NOTIF", RET_USER_NOTIF)):
        if action == v:
            return name
    if action == RET_TRACE:
        return f"TRACE({data})"
    return hex(value)


OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}  # enum scmp_compare (seccomp.h)


# ---------------------------------------------------------------- classic BPF, read and run
# struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; }, 8 bytes each
# struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
DATA_FIELDS = {0: "nr", 4: "arch", 8: "ip_lo", 12: "ip_hi"}
DATA_FIELDS.update({16 + 8 * i + half * 4: f"args[{i}]{'_hi' if half else '_lo'}"
                    for i in range(6) for half in (0, 1)})
_LD, _LDX, _ST, _STX, _ALU, _JMP, _RET, _MISC = range(8)
_ALU_OPS = {0x00: ("add", lambda a, b: a + b), 0x10: ("sub", lambda a, b: a - b),
            0x20: ("mul", lambda a, b: a * b), 0x30: ("div", lambda a, b: a // b if b else 0),
            0x40: ("or", lambda a, b: a | b), 0x50: ("and", lambda a, b: a & b),
            0x60: ("lsh", lambda a, b: a << b), 0x70: ("rsh", lambda a, b: a >> b),
            0x80: ("neg", lambda a, b: -a), 0x90: ("mod", lambda a, b: a % b if b else 0),
            0xA0: ("xor", lambda a, b: a ^ b)}
_JMP_OPS = {0x00: "ja", 0x10: "jeq", 0x20: "jgt", 0x30: "jge", 0x40: "jset"}


def instructions(bpf: bytes) -> list[tuple[int, int, int, int]]:
    if len(bpf) % 8:
        raise ValueError(f"a BPF program is a multiple of 8 bytes, not {len(bpf)}")
    return [struct.unpack_from("<HBBI", bpf, i) for i in range(0, len(bpf), 8)]


def assemble(program: list[tuple[int, int, int, int]]) -> bytes:
    return b"".join(struct.pack("<HBBI", *ins) for ins in program)


def disassemble(bpf: bytes, syscall_names: dict[int, str] | None = None) -> list[str]:
    """One line per instruction, like `seccomp-tools dump`: `0004: jeq #59 -> 0005 else 0006`."""
    names = syscall_names or {}
    lines = []
    loaded = None  # which seccomp_data field A holds, to name the constants it is compared with
    for pc, (code, jt, jf, k) in enumerate(instructions(bpf)):
        cls = code & 0x07
        if cls == _LD and code & 0xE0 == 0x20:
            loaded = DATA_FIELDS.get(k, str(k))
            text = f"ld  [{loaded}]"
        elif cls in (_LD, _LDX) and code & 0xE0 == 0x60:
            text = f"{'ld ' if cls == _LD else 'ldx'} M[{k}]"
            loaded = None
        elif cls in (_LD, _LDX):
            text = f"{'ld ' if cls == _LD else 'ldx'} #{k:#x}"
            loaded = None
        elif cls in (_ST, _STX):
            text = f"{'st ' if cls == _ST else 'stx'} M[{k}]"
        elif cls == _ALU:
            text = f"{_ALU_OPS.get(code & 0xF0, ('alu?',))[0]} {'x' if code & 0x08 else f'#{k:#x}'}"
            loaded = None
        elif cls == _JMP:
            op = _JMP_OPS.get(code & 0xF0, "j?")
            if op == "ja":
                text = f"ja  -> {pc + 1 + k:04}"
            else:
                what = f"#{k:#x}"
                if loaded == "nr" and k in names:
                    what = f"#{k} ({names[k]})"
                elif loaded == "arch" and k in AUDIT_ARCH_NAMES:
                    what = f"#{k:#x} ({AUDIT_ARCH_NAMES[k]})"
                elif loaded == "nr":
                    what = f"#{k}"
                text = f"{op} {'x' if code & 0x08 else what} -> {pc + 1 + jt:04} else {pc + 1 + jf:04}"
        elif cls == _RET:
            text = "ret A" if code & 0x18 == 0x10 else f"ret {action_name(k)}"
        else:
            text = "tax" if code & 0xF8 == 0x00 else "txa"
        lines.append(f"{pc:04}: {text}")
    return lines


def seccomp_data(nr: int, arch: int, args: tuple[int, ...] = (), ip: int = 0) -> bytes:
    args = tuple(args) + (0,) * (6 - len(args))
    return struct.pack("<iIQ6Q", nr, arch, ip, *[a & 0xFFFFFFFFFFFFFFFF for a in args])


def run(bpf: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Execute the filter on one system call as the kernel would; return its 32-bit verdict."""
    data = seccomp_data(nr, arch, args)
    prog = instructions(bpf)
    a = x = 0
    mem = [0] * 16
    pc = 0
    for _ in range(len(prog) + 1):  # classic BPF only jumps forward: at most one pass
        code, jt, jf, k = prog[pc]
        cls = code & 0x07
        if cls in (_LD, _LDX):
            mode = code & 0xE0
            value = (struct.unpack_from("<I", data, k)[0] if mode == 0x20 else mem[k] if mode == 0x60
                     else len(data) if mode == 0x80 else k)
            if cls == _LD:
                a = value
            else:
                x = value
        elif cls == _ST:
            mem[k] = a
        elif cls == _STX:
            mem[k] = x
        elif cls == _ALU:
            a = _ALU_OPS[code & 0xF0][1](a, x if code & 0x08 else k) & 0xFFFFFFFF
        elif cls == _JMP:
            op, operand = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x00:
                pc += 1 + k
                continue
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand, 0x40: bool(a & operand)}[op]
            pc += 1 + (jt if taken else jf)
            continue
        elif cls == _RET:
            return a if code & 0x18 == 0x10 else k
        else:
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x
        pc += 1
    raise ValueError("the filter ran off its end without a ret")


# ---------------------------------------------------------------- OCI -> libseccomp
def rules(spec: dict) -> tuple[int, list[str], list[tuple[str, int, list[tuple[int, int, int, int]]]]]:
    """(default action, libseccomp architecture names, rules) for an OCI linux.seccomp section.
    Rules whose action is the default are left out (libseccomp refuses them; so does runc).
    libseccomp ANDs the comparisons of a rule; Docker means OR when several test the same
    argument, so those become one rule each (runc does the same)."""
    default = action_value(spec["defaultAction"], spec.get("defaultErrnoRet"))
    arches = [a.removeprefix("SCMP_ARCH_").lower() for a in spec.get("architectures") or []]
    out = []
    for call in spec.get("syscalls") or []:
        action = action_value(call["action"], call.get("errnoRet"))
        if action == default:
            continue
        args = [(int(a["index"]), OPS[a["op"]], int(a.get("value", 0)) & 0xFFFFFFFFFFFFFFFF,
                 int(a.get("valueTwo", 0)) & 0xFFFFFFFFFFFFFFFF) for a in call.get("args") or []]
        indexes = [a[0] for a in args]
        groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
        for name in call.get("names") or []:
            out += [(name, action, group) for group in groups]
    return default, arches, out


def compile(spec: dict) -> bytes:  # noqa: A001 -- what it does
    """The BPF program for an OCI linux.seccomp section, made by libseccomp, behind runc's
    ENOSYS stub (enosys_stub). A runtime compiles it before pivot_root (libseccomp lives on the
    host's /lib) and installs it with syscalls.seccomp_filter() just before execve."""
    from .linux import libseccomp
    default, arches, calls = rules(spec)
    with libseccomp.Filter(default, arches, calls) as f:
        bpf = f.export()
    if default in (RET_ALLOW, RET_LOG):
        return bpf  # (a deny-list: unknown calls are allowed anyway)
    known = [libseccomp.syscall_number(n) for c in spec.get("syscalls") or [] for n in c.get("names") or []]
    known = [nr for nr in known if nr is not None and nr >= 0]
    arch = AUDIT_ARCH.get(SCMP_ARCH.get(native_arch(), ""))
    if not known or arch is None:
        return bpf
    return assemble(enosys_stub(arch, max(known), x32=native_arch() == "amd64")) + bpf


# ---------------------------------------------------------------- runc's ENOSYS stub
# A profile is written against the system calls of its day. A call added to the kernel later
# (fchmodat2 is 452) is unknown to it, so the default action, EPERM, answers it, and a program
# that tries the new call and falls back to the old one on ENOSYS ("not implemented here")
# takes EPERM as a real refusal and fails. runc (libcontainer/seccomp/patchbpf) puts a stub in
# front of the filter: any call numbered above the profile's highest one gets ENOSYS, as on a
# kernel that lacks it. Classic BPF jumps are relative, so the stub is just prepended.
LD_W_ABS, JEQ_K, JGE_K, JGT_K, RET_K = 0x20, 0x15, 0x35, 0x25, 0x06
X32_SYSCALL_BIT = 0x40000000


def enosys_stub(audit_arch: int, last: int, x32: bool = False) -> list[tuple[int, int, int, int]]:
    """For the native architecture: nr > last -> ERRNO(ENOSYS); anything else goes on to the
    filter that follows. (x86_64's x32 calls, nr | 0x40000000, are left to the filter.) Pure."""
    tail = [(JGT_K, 0, 1, last), (RET_K, 0, 0, RET_ERRNO | errno.ENOSYS)]
    if x32:
        tail.insert(0, (JGE_K, len(tail), 0, X32_SYSCALL_BIT))  # x32: jump past the stub
    return [(LD_W_ABS, 0, 0, 4), (JEQ_K, 0, len(tail) + 1, audit_arch), (LD_W_ABS, 0, 0, 0)] + tail
