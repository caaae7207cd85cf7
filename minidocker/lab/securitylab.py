"""Notebook 10 (security): small programs made byte by byte, the probe battery run in containers
under several profiles, and its picture.

Programs. busybox cannot call setresuid() and then exec, nor chroot without chdir, nor make a
system call it has no command for, and an image has no compiler or interpreter. So, like
sysprobe.py, this module writes tiny static ELF executables, for x86_64 and aarch64: probe()
makes one system call and exits with its errno; program() makes a list of system calls one
after the other (their results ignored), then, if asked, execve()s a command. Two of those:

    become_root(["/bin/id", "-u"])   setresuid(0, 0, 0), then exec: what su, sudo and passwd do
                                     first. Installed setuid root, it makes a user root, unless
                                     no_new_privs (--security-opt no-new-privileges) is set.
    chroot_escape(["/bin/sh", ...])  notebook 02's breakout: mkdir("/.e"), chroot("/.e"), 64 times
                                     chdir(".."), chroot("."), then exec: out of a chroot, not
                                     out of a container's pivot_root.

Probes. PROBES is what a container's root might try against the host, each harmless if it
succeeds (a wrong reboot magic, a module from fd -1, a sysctl written with the value it has);
probe_script() runs them all in one `sh -c` and prints `key=exit code`, parse() reads that
back, allowed() says whether each got through. PROFILES are the flags compared; draw() paints
probes x profiles for one or more runtimes.

And dpkg_stanzas(): the records /var/lib/dpkg/status keeps for some packages, to give an
image made of those packages' files the same record (what `minidocker scan` reads).
Pure but for the files written by write_probes().
"""
from __future__ import annotations

import errno
import os
import platform
import re
import struct

from ..core.security import CAPABILITIES as CAPABILITY_NAMES

# ---------------------------------------------------------------- tiny ELF programs
BASE = 0x400000
_EHDR, _PHDR = 64, 56
EM = {"x86_64": 0x3E, "aarch64": 0xB7}
AT_FDCWD = -100
# the system calls used here, by architecture (x86_64's own table; aarch64's is asm-generic's)
NR = {
    "x86_64": {"mkdirat": 258, "chdir": 80, "chroot": 161, "setresuid": 117, "execve": 59, "exit": 60,
               "keyctl": 250, "reboot": 169, "settimeofday": 164},
    "aarch64": {"mkdirat": 34, "chdir": 49, "chroot": 51, "setresuid": 147, "execve": 221, "exit": 93,
                "keyctl": 219, "reboot": 142, "settimeofday": 170},
}


def machine_of(machine: str | None = None) -> str:
    return machine or platform.machine()


def supported(machine: str | None = None) -> bool:
    return machine_of(machine) in NR


def _x86_load(reg: int, value: int) -> bytes:
    """mov <reg>, imm64 (reg: 0 rax, then the argument registers rdi rsi rdx r10 r8 r9)."""
    ops = [b"\x48\xb8", b"\x48\xbf", b"\x48\xbe", b"\x48\xba", b"\x49\xba", b"\x49\xb8", b"\x49\xb9"]
    return ops[reg] + struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)


def _arm_load(reg: int, value: int) -> bytes:
    """movz + 3 movk: a 64-bit value into x<reg> (16 bytes, whatever the value)."""
    value &= 0xFFFFFFFFFFFFFFFF
    words = [(0xD2800000 if hw == 0 else 0xF2800000) | hw << 21 | ((value >> 16 * hw) & 0xFFFF) << 5 | reg
             for hw in range(4)]
    return struct.pack("<4I", *words)


def _call(machine: str, nr: int, args: list[int]) -> bytes:
    """The number and arguments loaded, then the system call instruction."""
    if machine == "x86_64":
        return _x86_load(0, nr) + b"".join(_x86_load(i + 1, a) for i, a in enumerate(args)) + b"\x0f\x05"
    return (_arm_load(8, nr) + b"".join(_arm_load(i, a) for i, a in enumerate(args))
            + struct.pack("<I", 0xD4000001))                                   # x8 = nr, x0-x5, svc #0


def _exit_with_errno(machine: str) -> bytes:
    """After a system call: exit 0 if it succeeded, else exit with its errno."""
    if machine == "x86_64":
        return bytes.fromhex("4889c7" "48f7df" "4885c0" "7902" "eb02" "31ff"   # rdi = -rax if rax < 0, else 0
                             "b83c000000" "0f05")                             # exit(rdi)
    return struct.pack("<8I",
                       0xF100001F,                  # cmp x0, #0
                       0x54000000 | 3 << 5 | 0xA,   # b.ge +12 (to movz x0, #0)
                       0xCB0003E0,                  # neg x0, x0: -(-errno) = errno
                       0x14000002,                  # b +8 (to the exit)
                       0xD2800000,                  # movz x0, #0
                       0xD2800000 | 93 << 5 | 8,    # movz x8, #93 (exit)
                       0xD4000001,                  # svc #0
                       0xD4000001)                  # (not reached)


def _elf(body: bytes, machine: str) -> bytes:
    """A static executable: the ELF header, one PT_LOAD segment (R+X) holding the whole file,
    the entry point right after the headers."""
    entry = BASE + _EHDR + _PHDR
    size = _EHDR + _PHDR + len(body)
    ehdr = (b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)             # 64-bit, little endian, v1, System V
            + struct.pack("<HHIQQQIHHHHHH", 2, EM[machine], 1, entry, _EHDR, 0, 0, _EHDR, _PHDR, 1, 0, 0, 0))
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return ehdr + phdr + body


def probe(name: str, *args: int, machine: str | None = None) -> bytes:
    """A program making ONE system call (by name: NR's) and exiting with the errno it got (0: it
    worked), as sysprobe.py's, for x86_64 and aarch64."""
    machine = machine_of(machine)
    return _elf(_call(machine, NR[machine][name], list(args)) + _exit_with_errno(machine), machine)


def program(calls: list[tuple], argv: list[str] | None = None, machine: str | None = None) -> bytes:
    """A program that makes each system call of `calls` in turn ((name, arg, ...), names from NR;
    an argument that is a str is passed as the address of that NUL-terminated string), ignoring
    what they return; then execve(argv[0], argv, NULL) if `argv` (exit 127 if that fails), else
    exit 0. x86_64 or aarch64 (default: this machine's)."""
    machine = machine_of(machine)
    nrs = NR[machine]
    strings: dict[str, int] = {}   # text -> offset after the argv array

    for _, *args in calls:
        if len(args) > 6:
            raise ValueError("a system call has at most six arguments")
        for a in args:
            if isinstance(a, str):
                strings.setdefault(a, sum(len(s.encode()) + 1 for s in strings))
    for a in argv or []:
        strings.setdefault(a, sum(len(s.encode()) + 1 for s in strings))

    def code(data_at: int) -> bytes:
        text_at = data_at + 8 * (len(argv) + 1 if argv else 0)
        out = b""
        for name, *args in calls:
            out += _call(machine, nrs[name], [text_at + strings[a] if isinstance(a, str) else a for a in args])
        if argv:
            out += _call(machine, nrs["execve"], [text_at + strings[argv[0]], data_at, 0])
        return out + _call(machine, nrs["exit"], [127 if argv else 0])

    size = len(code(0))                      # (every load has a fixed size: the length is known)
    pad = -(_EHDR + _PHDR + size) % 8
    data_at = BASE + _EHDR + _PHDR + size + pad
    body = code(data_at) + b"\0" * pad
    if argv:
        text_at = data_at + 8 * (len(argv) + 1)
        body += b"".join(struct.pack("<Q", text_at + strings[a]) for a in argv) + struct.pack("<Q", 0)
    body += b"".join(s.encode() + b"\0" for s in strings)
    return _elf(body, machine)


def become_root(argv: list[str], machine: str | None = None) -> bytes:
    """setresuid(0, 0, 0), then execve(argv): a setuid-root helper (what su and sudo do first)."""
    return program([("setresuid", 0, 0, 0)], argv, machine)


def chroot_escape(argv: list[str], depth: int = 64, machine: str | None = None) -> bytes:
    """Notebook 02's nested-chroot breakout, then execve(argv): mkdir("/.e"), chroot("/.e") (the
    root moves below the current directory), `depth` times chdir(".."), chroot(".")."""
    calls = [("mkdirat", AT_FDCWD, "/.e", 0o755), ("chroot", "/.e")]
    calls += [("chdir", "..")] * depth
    calls += [("chroot", ".")]
    return program(calls, argv, machine)


def strings_of(elf: bytes) -> list[str]:
    """The NUL-terminated printable strings (of 2 characters or more) in a program(), to show what
    it will run."""
    return [s.decode() for s in re.findall(rb"[\x20-\x7e]{2,}(?=\0)", elf[_EHDR + _PHDR:])]


# ---------------------------------------------------------------- the probes
class Probe:
    """One thing a container's root might try. `shell`: a busybox command (exit 0: it worked);
    or `call`: (system call name, args...) made by a probe() program (exit code: the errno)."""

    def __init__(self, key: str, label: str, shell: str | None = None, call: tuple | None = None,
                 needs: str = ""):
        self.key, self.label, self.shell, self.call, self.needs = key, label, shell, call, needs

    def __repr__(self) -> str:
        return f"Probe({self.key!r})"


PROBES = [
    Probe("mount", "mount a filesystem", shell="mount -t tmpfs none /tmp", needs="SYS_ADMIN, seccomp, AppArmor"),
    Probe("unshare", "unshare -U (a user namespace)", shell="unshare -U true", needs="seccomp (SYS_ADMIN)"),
    Probe("hostname", "set the hostname", shell="hostname probe", needs="SYS_ADMIN, seccomp"),
    Probe("keyctl", "keyctl (the kernel's keyrings)", call=("keyctl", 0, -4, 0), needs="seccomp"),
    Probe("reboot", "reboot (a wrong magic)", call=("reboot", 0, 0, 0, 0), needs="SYS_BOOT, seccomp"),
    Probe("clock", "set the clock", call=("settimeofday", 0, 0), needs="SYS_TIME, seccomp"),
    Probe("sysctl", "write /proc/sys (a sysctl)",
          shell="v=$(cat /proc/sys/kernel/printk_ratelimit) && echo $v > /proc/sys/kernel/printk_ratelimit",
          needs="/proc/sys read-only"),
    Probe("kcore", "read /proc/kcore (kernel memory)",
          shell='[ "$(head -c 16 /proc/kcore 2>/dev/null | wc -c)" -eq 16 ]', needs="masked path"),
    Probe("disk", "read the host's disk", shell="mknod /tmp/disk b {major} {minor} && "
          "dd if=/tmp/disk of=/dev/null bs=512 count=1", needs="device cgroup"),
    Probe("chroot", "chroot", shell="chroot / true", needs="SYS_CHROOT"),
    Probe("ping", "ping (a raw socket)", shell="ping -c1 -W1 127.0.0.1", needs="NET_RAW"),
    Probe("chown", "chown a file", shell="touch /tmp/f && chown 1000:1000 /tmp/f", needs="CHOWN"),
    Probe("write", "write to / (the image)", shell="touch /probe-file", needs="--read-only, a user"),
]
PROBE_KEYS = [p.key for p in PROBES]

# (label, flags) of the profiles compared
PROFILES = [
    ("default", []),
    ("--cap-drop ALL", ["--cap-drop", "ALL"]),
    ("--cap-add SYS_ADMIN", ["--cap-add", "SYS_ADMIN"]),
    ("seccomp=unconfined", ["--security-opt", "seccomp=unconfined"]),
    ("--read-only", ["--read-only"]),
    ("-u 1000", ["-u", "1000"]),
    ("--privileged", ["--privileged"]),
]

REFUSED_ERRNOS = {errno.EPERM, errno.EACCES}


def write_probes(directory: str, probes: list[Probe] = PROBES, machine: str | None = None) -> str:
    """The probe() programs of `probes` in `directory` (mounted at /p in the container)."""
    os.makedirs(directory, exist_ok=True)
    for p in probes:
        if p.call:
            path = os.path.join(directory, p.key)
            with open(path, "wb") as f:
                f.write(probe(*p.call, machine=machine))
            os.chmod(path, 0o755)
    return directory


def probe_script(probes: list[Probe] = PROBES, major: int = 0, minor: int = 0) -> str:
    """One `sh -c` script running every probe, printing `key=exit code` lines; syscall probes
    are /p/<key>. `major:minor`: the host's root disk, for the "disk" probe."""
    lines = []
    for p in probes:
        if p.call:
            lines.append(f"/p/{p.key} 2>/dev/null; echo {p.key}=$?")
        else:
            lines.append(f"({p.shell.format(major=major, minor=minor)}) >/dev/null 2>&1; echo {p.key}=$?")
    return "\n".join(lines)


def parse(stdout: str) -> dict[str, int]:
    """`key=code` lines -> {key: code}."""
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and value.lstrip("-").isdigit():
            out[key] = int(value)
    return out


def allowed(probe: Probe, code: int) -> bool:
    """Did the probe get through? A shell probe: exit 0. A system call: any answer but EPERM or
    EACCES (EINVAL for the wrong reboot magic, EBADF for fd -1: the kernel itself looked at it)."""
    if probe.call:
        return code not in REFUSED_ERRNOS
    return code == 0


def verdicts(results: dict[str, int] | None, probes: list[Probe] = PROBES) -> list[bool | None]:
    """[allowed?] per probe; None for every probe when the container did not start."""
    if results is None:
        return [None] * len(probes)
    return [allowed(p, results[p.key]) if p.key in results else None for p in probes]


def table(columns: dict[str, list[bool | None]], probes: list[Probe] = PROBES) -> str:
    """Text table: a row per probe, a column per profile; yes / - / ? (did not start)."""
    width = max(len(p.label) for p in probes)
    heads = list(columns)
    lines = [" " * width + "  " + "  ".join(heads)]
    for i, p in enumerate(probes):
        cells = []
        for h in heads:
            v = columns[h][i]
            cells.append(("yes" if v else "-" if v is not None else "?").center(len(h)))
        lines.append(p.label.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def draw(axes, runtimes: dict[str, dict[str, list[bool | None]]], probes: list[Probe] = PROBES) -> None:
    """One heat map per runtime ({runtime: {profile: verdicts}}): green got through, red refused,
    grey the container did not start."""
    import numpy as np
    from matplotlib.colors import ListedColormap
    cmap = ListedColormap(["#d9534f", "#5cb85c", "#bbbbbb"])  # refused, allowed, n/a
    for ax, (name, columns) in zip(np.atleast_1d(axes), runtimes.items()):
        heads = list(columns)
        grid = np.array([[2 if columns[h][i] is None else int(columns[h][i]) for h in heads]
                         for i in range(len(probes))])
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=2, aspect="auto")
        ax.set_xticks(range(len(heads)), heads, rotation=40, ha="right", fontsize=8)
        ax.set_yticks(range(len(probes)), [p.label for p in probes], fontsize=8)
        for i in range(len(probes)):
            for j in range(len(heads)):
                ax.text(j, i, "✓" if grid[i, j] == 1 else "✗" if grid[i, j] == 0 else "n/a", ha="center", va="center",
                        fontsize=8, color="white" if grid[i, j] < 2 else "black", fontfamily="DejaVu Sans")  # (has ✓ ✗)
        ax.set_title(name)


# ---------------------------------------------------------------- package records
def dpkg_stanzas(status_text: str, packages: list[str]) -> str:
    """The stanzas of `packages` in a /var/lib/dpkg/status text, in the given order (those that
    are installed), joined as dpkg writes them."""
    found = {}
    for stanza in re.split(r"\n\s*\n", status_text):
        m = re.search(r"^Package: (\S+)$", stanza, re.M)
        if m and m.group(1) in packages and re.search(r"^Status: .* installed$", stanza, re.M):
            found.setdefault(m.group(1), stanza.strip("\n") + "\n")
    return "\n".join(found[p] for p in packages if p in found)


def ldd_paths(ldd_output: str) -> list[str]:
    """The files `ldd PROGRAM` names (libraries and the loader); vdso has no file."""
    out = []
    for line in ldd_output.splitlines():
        line = line.strip()
        if "=>" in line:
            path = line.split("=>", 1)[1].split("(")[0].strip()
        else:
            path = line.split("(")[0].strip()
        if path.startswith("/"):
            out.append(path)
    return out


def draw_caps(ax, rows: dict[str, int], last_cap: int = 40) -> None:
    """Capability masks ({label: mask}) as rows of cells, one column per capability number
    (0 .. last_cap, named below): dark = held."""
    import numpy as np
    from matplotlib.colors import ListedColormap
    names = [n.lower() for n in CAPABILITY_NAMES[:last_cap + 1]]
    grid = np.array([[mask >> i & 1 for i in range(last_cap + 1)] for mask in rows.values()])
    ax.imshow(grid, cmap=ListedColormap(["#eeeeee", "#2c7fb8"]), vmin=0, vmax=1, aspect="auto")
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.set_xticks(range(last_cap + 1), [f"{i} {n}" for i, n in enumerate(names)], rotation=90, fontsize=7)
    ax.set_xticks(np.arange(-0.5, last_cap + 1), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rows)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
