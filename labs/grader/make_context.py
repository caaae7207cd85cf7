#!/usr/bin/env python3
"""Make the build context of the grader image: this machine's Python with what grading needs,
the minidocker package, labs/ and the course notebooks, a static busybox; then build it.

    python labs/grader/make_context.py CONTEXT_DIR      # writes CONTEXT_DIR/{Dockerfile,rootfs/}
    minidocker build -t minidocker-grader CONTEXT_DIR    # (or docker build: the same Dockerfile)

Why not `FROM python` and `pip install`? The lab works offline (no Docker Hub, maybe no PyPI), so
the image is made from what this machine already runs: the interpreter, its standard library,
the distributions grading imports (nbgrader, ipykernel, matplotlib, ipywidgets, pyroute2, tqdm:
each with its requirements), the shared libraries all of these load (found with the dynamic
loader's own answers, /proc/<pid>/maps of a process that imported them) and libnftables, which
minidocker opens with ctypes. `FROM scratch` then holds exactly that: the Dockerfile is 8 lines.

The image runs `python -m minidocker.lab.grade /submissions --out /out`: one container per
submission (a folder with one student's folder), privileged (the labs make namespaces, mounts
and cgroups) with /tmp on a tmpfs (overlay upper directories cannot be on the container's own
overlay root). See labs/README.md.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# programs the notebooks run (beside busybox's applets): util-linux, libcap, iproute2, runc
HOST_PROGRAMS = ["setpriv", "unshare", "nsenter", "capsh", "stat", "ip", "ipcmk", "ipcrm", "ipcs", "runc", "mount"]
NEEDED = ["nbgrader", "ipykernel", "matplotlib", "ipywidgets", "pyroute2", "tqdm", "nbformat"]
# what grading imports in a kernel: importing these in a probe process loads every shared library
PROBE = ("import ctypes, ctypes.util, nbgrader.apps, nbconvert, ipykernel.kernelapp, zmq, matplotlib, "
         "matplotlib.pyplot, numpy, PIL.Image, ipywidgets, pyroute2, sqlalchemy, rapidfuzz, yaml, sqlite3, "
         "ssl, lzma, bz2, ctypes, readline, _decimal, pyexpat, hashlib, uuid, json, zlib, kiwisolver; "
         "ctypes.CDLL(ctypes.util.find_library('nftables') or 'libnftables.so.1'); "
         "print(open('/proc/self/maps').read())")
DOCKERFILE = """\
# The minidocker grader (labs/grader/make_context.py made this context): Python, nbgrader and the
# course, FROM scratch. Run it privileged with /tmp on a tmpfs; see labs/README.md.
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin PYTHONPATH=/grader LANG=C.UTF-8 MPLBACKEND=Agg
WORKDIR /grader
ENTRYPOINT ["/usr/bin/python3", "-m", "minidocker.lab.grade"]
CMD ["/submissions", "--out", "/out"]
"""


def requirement_closure(names: list[str]) -> dict[str, md.Distribution]:
    """The installed distributions `names` need, with the extras asked for on the way
    (nbconvert wants bleach[css], which brings tinycss2)."""
    from packaging.requirements import Requirement
    seen: dict[str, md.Distribution] = {}
    done: set[tuple[str, str]] = set()
    todo = [(name, "") for name in names]
    while todo:
        name, extra = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if (key, extra) in done:
            continue
        done.add((key, extra))
        try:
            dist = seen.get(key) or md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional one this machine does not have
        seen[key] = dist
        for spec in dist.requires or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(req.name, "")] + [(req.name, e) for e in req.extras]
    return seen


def copy(src: str, rootfs: str, dest: str | None = None) -> None:
    """Copy a file (or a symlink, as a symlink) to the same path (or `dest`) in rootfs."""
    target = os.path.join(rootfs, (dest or src).lstrip("/"))
    if os.path.lexists(target):
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if os.path.islink(src):
        os.symlink(os.readlink(src), target)
        real = os.path.join(os.path.dirname(src), os.readlink(src))
        copy(os.path.normpath(real), rootfs)  # and what it points to
    else:
        shutil.copy2(src, target)


def elf_interpreter(path: str) -> str | None:
    """The dynamic loader an ELF program asks for (its PT_INTERP header), e.g. /lib64/ld-linux-x86-64.so.2."""
    import struct
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return None
        e_phoff, = struct.unpack_from("<Q", head, 32)
        e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
        for i in range(e_phnum):
            f.seek(e_phoff + i * e_phentsize)
            p_type, _flags, p_offset, _vaddr, _paddr, p_filesz = struct.unpack("<IIQQQQ", f.read(40))
            if p_type == 3:  # PT_INTERP
                f.seek(p_offset)
                return f.read(p_filesz).rstrip(b"\0").decode()
    return None


def needed_libraries(program: str) -> list[str]:
    """The shared libraries a program links, as the dynamic loader resolves them (ldd)."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True).stdout
    return [m.group(1) for m in re.finditer(r"(/\S+) \(0x", out)]


def loaded_libraries() -> list[str]:
    """The shared objects a process that imports everything grading imports has mapped."""
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    libs = set()
    for line in out.splitlines():
        path = line.split()[-1] if len(line.split()) >= 6 else ""
        if path.startswith("/") and ".so" in path and "site-packages" not in path and "/python3." not in path:
            libs.add(path)
    return sorted(libs)


def make(context: str) -> str:
    rootfs = os.path.join(context, "rootfs")
    if os.path.exists(rootfs):
        shutil.rmtree(rootfs)
    os.makedirs(rootfs)
    # a merged /usr (bin -> usr/bin, lib64 -> usr/lib64...) as on this machine, so paths stay true
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        if os.path.islink("/" + top):
            os.symlink(os.readlink("/" + top), os.path.join(rootfs, top))
            os.makedirs(os.path.join(rootfs, os.readlink("/" + top).lstrip("/")), exist_ok=True)
    # the interpreter and its standard library (as /usr/bin/python3, wherever it lives here)
    exe = os.path.realpath(sys.executable)
    copy(exe, rootfs, "/usr/bin/" + os.path.basename(exe))
    os.symlink(os.path.basename(exe), os.path.join(rootfs, "usr/bin/python3"))
    stdlib = sysconfig.get_paths()["stdlib"]
    shutil.copytree(stdlib, os.path.join(rootfs, "usr/lib", os.path.basename(stdlib)), symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "dist-packages", "test", "idlelib", "__pycache__"))
    site = os.path.join(rootfs, "usr/lib", os.path.basename(stdlib), "site-packages")
    # the distributions grading needs, file by file (their RECORD), into site-packages
    for dist in requirement_closure(NEEDED).values():
        base = str(dist.locate_file(""))
        for f in dist.files or []:
            src = str(dist.locate_file(f))
            rel = os.path.relpath(src, base)
            if "__pycache__" in rel or not os.path.isfile(src):
                continue
            if rel.startswith(".."):  # data files: share/jupyter/nbconvert/templates, etc/jupyter
                rel = os.path.relpath(os.path.realpath(src), sys.prefix)
                if not rel.startswith(("share" + os.sep, "etc" + os.sep)):
                    continue  # console scripts (their #! names this machine's venv)
                dst = os.path.join(rootfs, "usr", rel)  # sys.prefix is /usr in the image
            else:
                dst = os.path.join(site, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
    # nbgrader runs `alembic` by name
    with open(os.path.join(rootfs, "usr/bin/alembic"), "w") as f:
        f.write("#!/usr/bin/python3\nimport sys\nfrom alembic.config import main\nsys.exit(main())\n")
    os.chmod(os.path.join(rootfs, "usr/bin/alembic"), 0o755)
    # the host programs the notebooks call, with their libraries
    libs = loaded_libraries() + [elf_interpreter(exe)]
    for name in HOST_PROGRAMS:
        path = shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        if path is None:
            raise SystemExit(f"make_context: {name} is not installed here (scripts/setup.sh installs it)")
        copy(os.path.realpath(path), rootfs, path)
        libs += needed_libraries(path)
    for lib in sorted(set(filter(None, libs))):
        copy(lib, rootfs)
        # /proc/<pid>/maps names the real file (libz.so.1.2.13); programs ask for its soname
        # (libz.so.1), a symbolic link beside it
        d = os.path.dirname(lib)
        for name in os.listdir(d):
            link = os.path.join(d, name)
            if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(lib):
                copy(link, rootfs)
    # a shell and the offline base image's busybox (minidocker.images.busybox looks in /bin)
    busybox = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p))
    copy(os.path.realpath(busybox), rootfs, "/bin/busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for tool in applets:  # sh, hostname, ps, ...: where the host's own program is not copied
        if tool != "busybox" and not os.path.lexists(os.path.join(rootfs, "bin", tool)):
            os.symlink("busybox", os.path.join(rootfs, "bin", tool))
    # minidocker, the labs and the course (the grader needs the instructor's source)
    app = os.path.join(rootfs, "grader")
    shutil.copytree(os.path.join(REPO, "minidocker"), os.path.join(app, "minidocker"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(REPO, "notebooks"), os.path.join(app, "notebooks"),
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    os.makedirs(os.path.join(app, "labs"))
    shutil.copy2(os.path.join(REPO, "labs", "nbgrader_config.py"), os.path.join(app, "labs"))
    shutil.copytree(os.path.join(REPO, "labs", "source"), os.path.join(app, "labs", "source"), symlinks=True)
    # an /etc a Python program expects
    etc = os.path.join(rootfs, "etc")
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(etc, "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(etc, "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    for d in ("tmp", "root", "proc", "sys", "dev", "run", "var/lib"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    with open(os.path.join(context, "Dockerfile"), "w") as f:
        f.write(DOCKERFILE)
    return context


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    print(make(sys.argv[1]))
