"""The embedded offline image `busybox:latest`, made from the host's static busybox binary.

Docker Hub's busybox image is one statically linked binary plus ~400 hard links to it
(`ls` is busybox, `sh` is busybox, ...) and a few files in /etc. A *static* binary needs
no shared libraries, so one file is a complete root filesystem: that is why we can build
the image offline from Debian/Ubuntu's `busybox-static` package, with no registry.

The layer is built deterministically (fixed mtimes, sorted tar entries), so the same
binary always gives the same DiffID and the same image ID.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import time

from .platform import host_architecture
from ..errors import MinidockerError
from ..paths import StateRoot
from .store import Image, ImageStore

NAME = "busybox:latest"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CANDIDATES = ["/bin/busybox", "/usr/bin/busybox"]

# The same accounts Docker Hub's busybox image ships.
PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:12:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""
FHS_DIRS = {  # directory -> mode
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o755, "root": 0o700,
    "sys": 0o755, "tmp": 0o1777, "usr": 0o755, "usr/sbin": 0o755, "var": 0o755,
    "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
}


def is_static_elf(path: str) -> bool:
    """True if the ELF file has no PT_INTERP program header (no dynamic loader needed)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64, little = head[4] == 2, head[5] == 1
        e = "<" if little else ">"
        if is64:
            phoff, = struct.unpack(e + "Q", head[32:40])
            phentsize, phnum = struct.unpack(e + "HH", head[54:58])
        else:
            phoff, = struct.unpack(e + "I", head[28:32])
            phentsize, phnum = struct.unpack(e + "HH", head[42:46])
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    PT_INTERP = 3
    return all(struct.unpack(e + "I", table[i * phentsize:i * phentsize + 4])[0] != PT_INTERP
               for i in range(phnum))


def find_busybox() -> str:
    for p in [shutil.which("busybox") or ""] + CANDIDATES:
        if p and os.path.isfile(p) and is_static_elf(p):
            return os.path.realpath(p)
    raise MinidockerError(
        "no static busybox found: install it with `apt-get install busybox-static` "
        "(a dynamically linked busybox would need the host's libraries inside the image)",
        exit_code=125)


def applets(busybox: str) -> list[str]:
    """The applet names this busybox provides, minus `busybox` itself."""
    out = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout
    return sorted({a for a in out.split() if a and a != "busybox" and "/" not in a})


def build_rootfs(dest: str, busybox: str, mtime: float) -> None:
    """Lay out a minimal FHS root filesystem in `dest` (an empty directory)."""
    for d, mode in sorted(FHS_DIRS.items()):
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    main = os.path.join(dest, "bin", "busybox")
    shutil.copyfile(busybox, main)
    os.chmod(main, 0o755)
    for name in applets(busybox):
        os.link(main, os.path.join(dest, "bin", name))  # hard links, as in the official image
    for name, text in (("passwd", PASSWD), ("group", GROUP)):
        with open(os.path.join(dest, "etc", name), "w") as f:
            f.write(text)
    # Fixed permissions and times: the same binary must give the same bytes, hence the same ids.
    for d, mode in FHS_DIRS.items():
        os.chmod(os.path.join(dest, d), mode)
    for dirpath, dirnames, filenames in os.walk(dest, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (mtime, mtime), follow_symlinks=False)
    os.utime(dest, (mtime, mtime))


def _rfc3339(ts: float) -> str:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_config(diff_id: str, created: float, version: str) -> dict:
    when = _rfc3339(created)
    return {
        "architecture": host_architecture(),
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "created": when,
        "history": [
            {"created": when, "created_by": f"/bin/sh -c #(nop) ADD busybox-static {version} in / "},
            {"created": when, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
        ],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }


def ensure_busybox(store: ImageStore, name: str = NAME) -> Image:
    """Return busybox:latest, building it from the host binary the first time."""
    try:
        return store.resolve(name)
    except MinidockerError:
        pass
    bb = find_busybox()
    mtime = int(os.stat(bb).st_mtime)
    version = subprocess.run([bb], capture_output=True, text=True).stdout.split("\n", 1)[0]
    version = version.split(" multi-call")[0].replace("BusyBox ", "") or "unknown"
    tmp = tempfile.mkdtemp(prefix="busybox-", dir=store.root.tmp)
    try:
        rootfs = os.path.join(tmp, "rootfs")
        os.mkdir(rootfs)
        build_rootfs(rootfs, bb, mtime)
        tar = os.path.join(tmp, "layer.tar")
        from ..storage import archive
        diff_id, _ = archive.export_layer_with_digest(rootfs, tar)
        store.register_layer(tar, None, diff_id=diff_id)
        image = store.put_image(make_config(diff_id, mtime, version))
        store.tag(name, image.id)
        return image
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_rootfs(store: ImageStore, image: Image, out_path: str) -> None:
    """Write the image's root filesystem as a plain tar (for `docker import`, or a runc bundle).
    busybox has a single layer, so its layer *is* its root filesystem."""
    if len(image.diff_ids) != 1:
        raise MinidockerError("export_rootfs handles single-layer images only")
    from ..storage import archive
    diff = store.driver.diff(store.layer_cache_id(image.top_chain_id))
    with open(out_path, "wb") as f:
        archive.export_dir(diff, f)


DOCKER_IMPORT_CHANGES = ['CMD ["sh"]', f"ENV {PATH_ENV}"]


def is_embedded(name: str) -> bool:
    return name in ("busybox", "busybox:latest", "docker.io/library/busybox:latest",
                    "library/busybox:latest", "docker.io/library/busybox")


if __name__ == "__main__":  # python -m minidocker.images.busybox: build it and print its id
    t = time.monotonic()
    img = ensure_busybox(ImageStore(StateRoot.from_env()))
    print(img.id, f"({time.monotonic() - t:.2f}s)")
