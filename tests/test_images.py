"""Images for real, as root: tar-split, save/load, commit/diff/export/import, tag/rmi/history/prune."""
import hashlib
import io
import json
import os
import tarfile

import pytest

pytestmark = pytest.mark.root


def inspect(md, ref, kind="container"):
    return json.loads(md.ok("inspect", "--type", kind, ref))[0]


def test_layer_tar_is_byte_identical_after_unpacking(runtime):
    """tar-split: the layer's tar comes back byte for byte, so its DiffID still matches."""
    img = runtime.image("busybox")
    chain = img.top_chain_id
    buf = io.BytesIO()
    runtime.images.layer_tar(chain, buf)
    assert "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest() == img.diff_ids[0]
    assert os.path.exists(os.path.join(runtime.images.layer_dir(chain), "tar-split.json.gz"))


def test_tampered_layer_is_detected(tmp_path, state_root):
    from minidocker.errors import MinidockerError
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    tar = tmp_path / "l.tar"
    with tarfile.open(tar, "w") as tf:
        data = b"hello\n"
        info = tarfile.TarInfo("greeting")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    store = ImageStore(StateRoot(str(tmp_path / "root")))
    with pytest.raises(MinidockerError, match="DiffID mismatch"):
        store.register_layer(str(tar), None, diff_id="sha256:" + "0" * 64)
    assert store.driver.layers() == []  # nothing half-made
    chain = store.register_layer(str(tar), None)
    diff = store.driver.diff(store.layer_cache_id(chain))
    with open(os.path.join(diff, "greeting"), "wb") as f:
        f.write(b"HELLO\n")  # same size, different bytes: caught by the digest on the way out
    buf = io.BytesIO()
    store.layer_tar(chain, buf)
    assert "sha256:" + hashlib.sha256(buf.getvalue()).hexdigest() != chain
    store.driver.remove(store.layer_cache_id(chain))


def test_commit_diff_history_and_run(md):
    md.ok("run", "--name", "changer", "busybox", "sh", "-c",
          "echo new > /newfile; echo x >> /etc/passwd; rm /bin/vi; rm -rf /home; mkdir /home; touch /home/h")
    try:
        assert md.ok("diff", "changer").splitlines() == [
            "C /bin", "D /bin/vi", "C /etc", "C /etc/passwd", "C /home", "A /home/h", "A /newfile"]
        image_id = md.ok("commit", "-m", "note", "changer", "committed:v1").strip()
        assert image_id.startswith("sha256:")
        img = inspect(md, "committed:v1", "image")
        base = inspect(md, "busybox", "image")
        assert img["RootFS"]["Layers"][:1] == base["RootFS"]["Layers"] and len(img["RootFS"]["Layers"]) == 2
        assert img["Config"]["Cmd"] == ["sh", "-c", "echo new > /newfile; echo x >> /etc/passwd; rm /bin/vi; "
                                        "rm -rf /home; mkdir /home; touch /home/h"]
        hist = md.ok("history", "committed:v1").splitlines()
        assert hist[0].split()[:2] == ["IMAGE", "CREATED"] and "note" in hist[1]
        out = md.ok("run", "--rm", "committed:v1", "sh", "-c",
                    "cat /newfile; ls /bin/vi 2>&1; tail -1 /etc/passwd; ls /home")
        assert out.splitlines() == ["new", "ls: /bin/vi: No such file or directory", "x", "h"]
        r = md("rmi", "committed:v1")
        assert r.returncode == 0 and "Untagged: committed:v1" in r.stdout and f"Deleted: {image_id}" in r.stdout
    finally:
        md("rm", "-f", "changer")


def test_export_then_import(md, tmp_path):
    md.ok("run", "--name", "exp", "busybox", "sh", "-c", "echo exported > /marker")
    try:
        tar = tmp_path / "fs.tar"
        md.ok("export", "-o", str(tar), "exp")
        with tarfile.open(tar) as tf:
            names = tf.getnames()
        assert "marker" in names and "bin/busybox" in names and not any(".wh." in n for n in names)
        image_id = md.ok("import", "-c", 'CMD ["cat", "/marker"]', "-c", "ENV MODE=imported", str(tar),
                         "imported:1").strip()
        img = inspect(md, "imported:1", "image")
        assert img["Id"] == image_id and img["Config"]["Cmd"] == ["cat", "/marker"]
        assert "MODE=imported" in img["Config"]["Env"]
        assert md.ok("run", "--rm", "imported:1") == "exported\n"
        assert len(img["RootFS"]["Layers"]) == 1  # flattened: one layer
        md.ok("rmi", "imported:1")
    finally:
        md("rm", "-f", "exp")


def test_save_load_roundtrip(md, tmp_path, state_root):
    md.ok("tag", "busybox", "roundtrip:1")
    path = tmp_path / "img.tar"
    md.ok("save", "-o", str(path), "roundtrip:1")
    with tarfile.open(path) as tf:
        names = set(tf.getnames())
        index = json.load(tf.extractfile("index.json"))
        manifest = json.load(tf.extractfile("manifest.json"))
    assert {"oci-layout", "index.json", "manifest.json", "repositories"} <= names
    assert manifest[0]["RepoTags"] == ["roundtrip:1"]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"
    image_id = inspect(md, "roundtrip:1", "image")["Id"]
    md.ok("rmi", "roundtrip:1")
    other = str(tmp_path / "other-root")
    from conftest import MD
    md2 = MD(other)
    try:
        assert md2.ok("load", "-i", str(path)) == "Loaded image: roundtrip:1\n"
        assert inspect(md2, "roundtrip:1", "image")["Id"] == image_id  # the same config bytes
        assert md2.ok("run", "--rm", "--network", "none", "roundtrip:1", "echo", "ok") == "ok\n"
        r = md2("load", "-i", str(tmp_path / "missing.tar"))
        assert r.returncode == 1 and "no such file" in r.stderr
    finally:
        md2("system", "prune", "-f")


def test_rmi_rules(md):
    # an image of its own: busybox may carry other tests' tags (a registry test's push)
    md.ok("run", "--name", "rmi-src", "--network", "none", "busybox", "touch", "/rmi")
    md.ok("commit", "rmi-src", "keep:a")
    md.ok("rm", "rmi-src")
    md.ok("tag", "keep:a", "keep:b")
    md.ok("tag", "keep:a", "keep:c")
    cid = md.ok("create", "keep:a", "true").strip()
    try:
        assert md.ok("rmi", "keep:b") == "Untagged: keep:b\n"  # other names remain
        kid = inspect(md, "keep:a", "image")["Id"][7:19]
        r = md("rmi", kid)
        assert r.returncode == 1 and "must be forced" in r.stderr and "multiple repositories" in r.stderr
        md.ok("rmi", "keep:c")  # keep:c goes, keep:a still names the image
        r = md("rmi", "keep:a")
        assert r.returncode == 1 and "(must force) - container" in r.stderr
    finally:
        md.ok("rm", cid)
        md.ok("rmi", "keep:a")
    assert md.ok("run", "--rm", "--network", "none", "busybox", "true") == ""


def test_image_prune_dangling(md):
    md.ok("run", "--name", "dang", "busybox", "touch", "/x")
    iid = md.ok("commit", "dang").strip()
    md.ok("rm", "dang")
    assert "<none>" in md.ok("images")
    out = md.ok("image", "prune", "-f")
    assert out.startswith("Deleted Images:\n") and f"deleted: {iid}" in out
    assert "<none>" not in md.ok("images")
