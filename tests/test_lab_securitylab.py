"""minidocker.lab.securitylab (notebook 10): the tiny ELF programs (their layout for x86_64 and
aarch64, and, on this machine, what they do), the probe battery's script and verdicts, the
tables and pictures, and the package-record helpers."""
from __future__ import annotations

import os
import struct
import subprocess

import pytest

from conftest import require, require_tool

from minidocker.lab import securitylab as sl


def header(elf: bytes) -> dict:
    """The fields of an ELF64 header and its first program header that the loader uses."""
    machine, _, entry, phoff = struct.unpack_from("<HIQQ", elf, 18)
    p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz = struct.unpack_from("<IIQQQQQ", elf, phoff)
    return {"magic": elf[:4], "class": elf[4], "machine": machine, "entry": entry, "type": p_type,
            "flags": p_flags, "offset": p_offset, "vaddr": p_vaddr, "filesz": p_filesz, "memsz": p_memsz}


def arm_value(words: tuple[int, int, int, int]) -> tuple[int, int]:
    """Decode movz + 3 movk back to (register, value)."""
    value = 0
    for w in words:
        hw, imm, reg = (w >> 21) & 3, (w >> 5) & 0xFFFF, w & 31
        value |= imm << 16 * hw
    return reg, value


# ---------------------------------------------------------------- without root
@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_programs_are_one_loadable_segment_with_the_right_machine(machine):
    for elf in (sl.become_root(["/bin/id", "-u"], machine=machine), sl.probe("reboot", 0, 0, 0, 0, machine=machine),
                sl.chroot_escape(["/bin/sh"], machine=machine), sl.program([], None, machine=machine)):
        h = header(elf)
        assert h["magic"] == b"\x7fELF" and h["class"] == 2 and h["machine"] == sl.EM[machine]
        assert h["type"] == 1 and h["flags"] == 5 and h["offset"] == 0 and h["vaddr"] == sl.BASE
        assert h["filesz"] == h["memsz"] == len(elf)
        assert h["entry"] == sl.BASE + 120 and h["entry"] % 4 == 0


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_argv_is_an_array_of_pointers_to_the_strings(machine):
    elf = sl.program([("chdir", "/somewhere")], ["/bin/echo", "a b", "c"], machine=machine)
    assert sl.strings_of(elf) == ["/somewhere", "/bin/echo", "a b"]      # ("c": too short to be told from code)
    # the pointer array: 3 pointers and NULL, just before the strings, 8-aligned
    text_at = elf.index(b"/somewhere\0")
    array_at = text_at - 8 * 4
    assert array_at % 8 == 0
    pointers = struct.unpack_from("<4Q", elf, array_at)
    assert pointers[3] == 0
    for p, s in zip(pointers, ["/bin/echo", "a b", "c"]):
        assert elf[p - sl.BASE:].split(b"\0")[0] == s.encode()


def test_arm_loads_any_64_bit_value():
    for value in (0, 1, 0xFFFF, 0x10000, 0xDEADBEEFCAFEF00D, -100 & 0xFFFFFFFFFFFFFFFF):
        words = struct.unpack("<4I", sl._arm_load(3, value))
        assert words[0] >> 23 == 0b110100101 and all(w >> 23 == 0b111100101 for w in words[1:])  # movz, movk
        assert arm_value(words) == (3, value)


def test_arm_system_call_puts_the_number_in_x8_and_ends_with_svc():
    code = sl._call("aarch64", 142, [7, 8])
    words = struct.unpack(f"<{len(code) // 4}I", code)
    assert arm_value(words[0:4]) == (8, 142) and arm_value(words[4:8]) == (0, 7) and arm_value(words[8:12]) == (1, 8)
    assert words[-1] == 0xD4000001


def test_x86_system_call_loads_rax_then_the_arguments():
    code = sl._call("x86_64", 169, [1, 2])
    assert code[:2] == b"\x48\xb8" and struct.unpack_from("<Q", code, 2)[0] == 169
    assert code[10:12] == b"\x48\xbf" and code[20:22] == b"\x48\xbe" and code.endswith(b"\x0f\x05")


def test_the_escape_climbs_and_the_helper_becomes_root():
    esc = sl.chroot_escape(["/bin/sh", "-c", "true"], depth=5, machine="x86_64")
    assert sl.strings_of(esc) == ["/.e", "..", "/bin/sh", "-c", "true"]
    chdir = struct.pack("<Q", sl.NR["x86_64"]["chdir"])
    assert esc.count(b"\x48\xb8" + chdir) == 5
    root = sl.become_root(["/bin/id"], machine="aarch64")
    assert struct.pack("<I", 0xD2800000 | sl.NR["aarch64"]["setresuid"] << 5 | 8) in root
    with pytest.raises(ValueError):
        sl.program([("chdir", 1, 2, 3, 4, 5, 6, 7)])


def test_probe_script_and_verdicts():
    script = sl.probe_script(major=254, minor=1)
    assert "mknod /tmp/disk b 254 1" in script and "/p/keyctl 2>/dev/null; echo keyctl=$?" in script
    assert [line.rsplit("echo ", 1)[1].split("=")[0] for line in script.splitlines()] == sl.PROBE_KEYS
    out = "\n".join(f"{k}=1" for k in sl.PROBE_KEYS) + "\nreboot=22\nchroot=0\nnoise\n"
    results = sl.parse(out)
    assert results["reboot"] == 22 and results["chroot"] == 0 and "noise" not in results
    v = dict(zip(sl.PROBE_KEYS, sl.verdicts(results)))
    assert v["reboot"] is True        # EINVAL: the kernel looked at it (seccomp and capabilities let it pass)
    assert v["chroot"] is True and v["keyctl"] is False and v["mount"] is False
    assert sl.verdicts(None) == [None] * len(sl.PROBES)
    keyctl = next(p for p in sl.PROBES if p.key == "keyctl")
    assert sl.allowed(keyctl, 13) is False and sl.allowed(keyctl, 0) is True


def test_table_marks_yes_no_and_did_not_start():
    probes = sl.PROBES[:2]
    text = sl.table({"default": [True, False], "--privileged": [None, None]}, probes)
    lines = text.splitlines()
    assert "default" in lines[0] and "--privileged" in lines[0]
    assert lines[1].startswith(probes[0].label) and "yes" in lines[1] and "?" in lines[1]
    assert lines[2].split()[-2:] == ["-", "?"]


def test_pictures_draw(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    cols = {label: sl.verdicts(None) if i else [True] * len(sl.PROBES) for i, (label, _) in enumerate(sl.PROFILES)}
    fig, axes = plt.subplots(1, 2)
    sl.draw(axes, {"a": cols, "b": cols})
    fig.savefig(tmp_path / "m.png")
    fig, ax = plt.subplots()
    sl.draw(ax, {"one runtime": cols})                           # a single Axes too
    sl.draw_caps(ax, {"a": 0xA80425FB, "b": (1 << 41) - 1})
    fig.savefig(tmp_path / "c.png")
    plt.close("all")
    assert (tmp_path / "m.png").stat().st_size > 0


STATUS = """Package: libc6
Status: install ok installed
Version: 2.36-9
Description: GNU C Library
 more text

Package: gone
Status: deinstall ok config-files
Version: 1

Package: docker.io
Status: install ok installed
Version: 20.10.24
"""


def test_dpkg_stanzas_in_the_order_asked_installed_only():
    text = sl.dpkg_stanzas(STATUS, ["docker.io", "gone", "libc6", "missing"])
    assert text.startswith("Package: docker.io\n") and "\n\nPackage: libc6\n" in text and "gone" not in text
    assert " more text\n" in text
    from minidocker.images import scan
    assert [p["name"] for p in scan.parse_dpkg_status(text)] == ["docker.io", "libc6"]


def test_ldd_paths():
    out = ("\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n"
           "\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n\tlibgone.so => not found\n")
    assert sl.ldd_paths(out) == ["/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]


# ---------------------------------------------------------------- running them, on this machine
def test_a_program_runs_and_execs():
    require(sl.supported(), "x86_64 or aarch64")
    d = "/tmp" if os.access("/tmp", os.W_OK) else "."
    path = os.path.join(d, f"sl-test-{os.getpid()}")
    try:
        with open(path, "wb") as f:
            f.write(sl.program([("chdir", "/")], ["/bin/sh", "-c", "echo ran in $(pwd)"]))
        os.chmod(path, 0o755)
        assert subprocess.run([path], capture_output=True, text=True, cwd=d).stdout == "ran in /\n"
        with open(path, "wb") as f:
            f.write(sl.probe("reboot", 0, 0, 0, 0))          # a wrong magic: nothing happens either way
        assert subprocess.run([path]).returncode in (1, 22)   # EPERM (not root) or EINVAL (root)
        with open(path, "wb") as f:
            f.write(sl.program([], ["/no/such/program"]))
        assert subprocess.run([path]).returncode == 127
    finally:
        os.unlink(path)


@pytest.mark.root
def test_the_escape_leaves_a_chroot_but_become_root_needs_its_setuid_bit(tmp_path):
    require(sl.supported() and os.geteuid() == 0, "root on x86_64 or aarch64")
    from minidocker.images import busybox
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    busybox.build_rootfs(str(rootfs), busybox.find_busybox(), 0)
    (rootfs / "escape").write_bytes(sl.chroot_escape(["/bin/sh", "-c", f"cat {secret} || echo inside"]))
    os.chmod(rootfs / "escape", 0o755)
    code = "import os, sys\nos.chroot(sys.argv[1])\nos.chdir('/')\nos.execv('/escape', ['escape'])\n"
    import sys
    out = subprocess.run([sys.executable, "-c", code, str(rootfs)], capture_output=True, text=True).stdout
    assert out == "outside\n"
    helper = tmp_path / "become-root"
    helper.write_bytes(sl.become_root(["/bin/sh", "-c", "id -u"]))
    os.chmod(tmp_path, 0o755)
    os.chmod(helper, 0o755)                                  # not setuid: stays the user
    run = [require_tool("setpriv"), "--reuid", "65534", "--regid", "65534", "--clear-groups", str(helper)]
    assert subprocess.run(run, capture_output=True, text=True).stdout == "65534\n"
    os.chmod(helper, 0o4755)                                 # setuid root: becomes root
    got = subprocess.run(run, capture_output=True, text=True).stdout
    assert got == ("65534\n" if os.statvfs(helper).f_flag & os.ST_NOSUID else "0\n")
    nnp = [require_tool("setpriv"), "--no-new-privs"] + run[1:]
    assert subprocess.run(nnp, capture_output=True, text=True).stdout == "65534\n"   # no_new_privs: ignored
