"""overlay2 on disk and mounted for real: layout, copy-on-write, whiteouts, image immutability."""
import hashlib
import json
import os
import stat

import pytest

from minidocker.images import busybox
from minidocker.images.store import ImageStore, chain_id, chain_ids
from minidocker.paths import StateRoot
from minidocker.core import overlay2

pytestmark = pytest.mark.root


def test_mount_options_pure():
    assert overlay2.mount_options(["/l/A", "/l/B"], "/u", "/w") == \
        "index=off,lowerdir=/l/A:/l/B,upperdir=/u,workdir=/w"
    assert overlay2.mount_options(["/l/A"], "/u", "/w", volatile=True).endswith(",volatile")


def test_only_a_removed_containers_layer_is_volatile(md):
    """`run --rm`: overlayfs need not sync a layer that goes at the exit; any other container's
    layer is mounted as Docker mounts it (it must survive a crash, for the next start)."""
    line = 'grep " / " /proc/self/mountinfo'
    assert "volatile" in md.ok("run", "--rm", "--network", "none", "busybox", "sh", "-c", line)
    cid = md.ok("run", "-d", "--network", "none", "busybox", "sh", "-c", f"{line}; echo kept > /f").strip()
    assert md.ok("wait", cid).strip() == "0"
    assert "volatile" not in md.ok("logs", cid)
    assert md.ok("start", "-a", cid).count("kept") == 0 and "kept" in md.ok("cp", f"{cid}:/f", "-")
    md.ok("rm", cid)


def test_chain_ids_follow_the_oci_formula():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a]) == [a]
    expected = "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_ids([a, b]) == [a, expected] and chain_id(a, b) == expected


def test_layer_layout_like_docker(tmp_path):
    d = overlay2.Overlay2(str(tmp_path / "overlay2"))
    base = d.create()
    mid = d.create(parent=base)
    top = d.create(parent=mid)
    assert sorted(os.listdir(d.dir(base))) == ["committed", "diff", "link"]
    assert sorted(os.listdir(d.dir(top))) == ["diff", "link", "lower", "work"]
    short = d.link(base)
    assert len(short) == 26 and short.isupper()
    assert os.readlink(tmp_path / "overlay2" / "l" / short) == f"../{base}/diff"
    assert open(os.path.join(d.dir(top), "lower")).read() == f"l/{d.link(mid)}:l/{short}"
    d.remove(top)
    assert not os.path.exists(d.dir(top))
    assert sorted(os.listdir(tmp_path / "overlay2" / "l")) == sorted([short, d.link(mid)])


def test_busybox_image_is_deterministic_and_docker_shaped(tmp_path):
    s1 = ImageStore(StateRoot(str(tmp_path / "a")))
    s2 = ImageStore(StateRoot(str(tmp_path / "b")))
    i1, i2 = busybox.ensure_busybox(s1), busybox.ensure_busybox(s2)
    assert i1.id == i2.id  # same binary -> same layer bytes -> same ids
    assert i1.id == "sha256:" + hashlib.sha256(i1.raw).hexdigest()
    cfg = i1.config
    assert cfg["config"]["Cmd"] == ["sh"] and cfg["rootfs"]["type"] == "layers"
    chain = chain_ids(i1.diff_ids)[-1]
    layer = s1.layer_dir(chain)
    assert sorted(os.listdir(layer)) == ["cache-id", "diff", "size", "tar-split.json.gz"]
    diff = s1.driver.diff(s1.layer_cache_id(chain))
    bb = os.stat(os.path.join(diff, "bin", "busybox"))
    assert os.stat(os.path.join(diff, "bin", "sh")).st_ino == bb.st_ino  # hard links
    assert bb.st_nlink > 100
    assert not os.path.exists(os.path.join(diff, "bin", "busybox.busybox"))
    repos = json.load(open(tmp_path / "a" / "image" / "overlay2" / "repositories.json"))
    assert repos == {"Repositories": {"busybox": {"busybox:latest": i1.id}}}


def _tree(path):
    out = {}
    for dirpath, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def test_copy_on_write_and_whiteouts(tmp_path):
    store = ImageStore(StateRoot(str(tmp_path)))
    image = busybox.ensure_busybox(store)
    image_diff = store.driver.diff(store.layer_cache_id(image.top_chain_id))
    before = _tree(image_diff)
    mount_id, init_id = store.create_container_layers("c" * 64, image)
    merged = store.driver.mount(mount_id)
    try:
        upper = store.driver.diff(mount_id)
        # the init layer holds Docker's per-container files
        init = store.driver.diff(init_id)
        assert os.path.isfile(os.path.join(init, ".dockerenv"))
        assert os.readlink(os.path.join(init, "etc", "mtab")) == "/proc/mounts"
        # write: a new file lands in the upper dir only
        with open(os.path.join(merged, "new.txt"), "w") as f:
            f.write("hello")
        assert open(os.path.join(upper, "new.txt")).read() == "hello"
        # modify: the file is copied up first (copy-on-write)
        with open(os.path.join(merged, "etc", "passwd"), "a") as f:
            f.write("extra:x:9:9::/:/bin/sh\n")
        assert "extra" in open(os.path.join(upper, "etc", "passwd")).read()
        assert "extra" not in open(os.path.join(image_diff, "etc", "passwd")).read()
        # delete: a whiteout (char device 0/0) hides the lower file
        os.unlink(os.path.join(merged, "bin", "vi"))
        st = os.lstat(os.path.join(upper, "bin", "vi"))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        assert not os.path.exists(os.path.join(merged, "bin", "vi"))
        # delete a directory and recreate it: an opaque directory
        os.rmdir(os.path.join(merged, "home"))
        os.mkdir(os.path.join(merged, "home"))
        assert os.getxattr(os.path.join(upper, "home"), "trusted.overlay.opaque") == b"y"
    finally:
        store.driver.unmount(mount_id)
    assert not overlay2.is_mountpoint(store.driver.merged(mount_id))
    assert _tree(image_diff) == before  # the image layer never changed
    store.remove_container_layers("c" * 64)
    assert not os.path.exists(store.driver.dir(mount_id))
    assert not os.path.exists(store.driver.dir(init_id))


def test_long_lower_chain_uses_relative_paths(tmp_path):
    """60 layers: absolute lowerdir paths would exceed a page; moby's l/ trick keeps it short."""
    d = overlay2.Overlay2(str(tmp_path / ("x" * 100) / "overlay2"))
    parent = None
    for i in range(60):
        parent = d.create(parent=parent)
        with open(os.path.join(d.diff(parent), f"f{i}"), "w") as f:
            f.write(str(i))
    merged = d.mount(parent)
    try:
        assert len(os.listdir(merged)) == 60
    finally:
        d.unmount(parent)


def test_visible_in_layers_follows_overlay_rules(tmp_path):
    from minidocker.core.overlay2 import visible_in_layers
    top, mid, base = (tmp_path / n for n in ("top", "mid", "base"))
    for d in (top, mid, base):
        d.mkdir()
    (base / "etc").mkdir()
    (base / "etc" / "hosts").write_text("x")
    (base / "etc" / "gone").write_text("x")
    (base / "opq").mkdir()
    (base / "opq" / "old").write_text("x")
    (mid / "etc").mkdir()
    os.mknod(mid / "etc" / "gone", 0o600 | stat.S_IFCHR, os.makedev(0, 0))  # whiteout
    (top / "opq").mkdir()
    os.setxattr(top / "opq", "trusted.overlay.opaque", b"y")
    (top / "opq" / "new").write_text("x")
    layers = [str(top), str(mid), str(base)]
    assert visible_in_layers(layers, "etc/hosts")
    assert not visible_in_layers(layers, "etc/gone")
    assert not visible_in_layers(layers, "opq/old")
    assert visible_in_layers(layers, "opq/new")
    assert not visible_in_layers(layers, "nothing/here")
    assert not visible_in_layers(layers, "etc/hosts/deeper")
    # ground truth: the kernel agrees
    from minidocker.core.linux import syscalls as sc
    merged, upper, work = tmp_path / "m", tmp_path / "u", tmp_path / "w"
    for d in (merged, upper, work):
        d.mkdir()
    sc.mount("overlay", str(merged), "overlay", 0,
             overlay2.mount_options(layers, str(upper), str(work)))
    try:
        for rel in ("etc/hosts", "etc/gone", "opq/old", "opq/new", "nothing/here"):
            assert os.path.lexists(merged / rel) == visible_in_layers(layers, rel), rel
    finally:
        sc.umount2(str(merged), sc.MNT_DETACH)
