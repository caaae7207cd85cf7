"""Progress bars (minidocker.progress) for pull, push, build, save and load: a text bar on a
terminal, a widget bar in a Jupyter kernel (tqdm.auto), nothing when nobody can see it (a pipe,
a log file)."""
from __future__ import annotations

import io
import os
import sys
import types

import pytest

from minidocker import progress

tqdm = pytest.importorskip("tqdm")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_into_a_pipe(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress.bar("abc", 100) is None


def test_a_text_bar_on_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = progress.bar("8856e5404ad3", 2_000_000)
    assert isinstance(bar, tqdm.std.tqdm)
    bar.update(1_000_000)
    bar.close()
    assert "8856e5404ad3" in term.getvalue() and "2.00M" in term.getvalue()


def test_tqdm_auto_in_a_kernel(monkeypatch):
    """With ipykernel loaded the bar comes from tqdm.auto, which outside a real kernel (here)
    is the text bar again; test_a_widget_bar_in_a_real_kernel checks the widget."""
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(sys, "stderr", io.StringIO())   # a kernel's stderr is no tty
    from tqdm.auto import tqdm as auto
    bar = progress.bar("abc", 10)
    assert isinstance(bar, auto)
    bar.close()


def test_a_widget_bar_in_a_real_kernel():
    pytest.importorskip("ipywidgets")
    pytest.importorskip("ipykernel")
    jc = pytest.importorskip("jupyter_client")
    km, kc = jc.manager.start_new_kernel(kernel_name="python3", startup_timeout=60)
    try:
        seen = []
        kc.execute_interactive(
            "from minidocker.progress import bar as _bar\n"
            "bar = _bar('abc', 10); bar.update(5)\n"
            "import tqdm.notebook\n"
            "print('widget bar:', isinstance(bar, tqdm.notebook.tqdm_notebook)); bar.close()",
            timeout=60,
            output_hook=lambda m: seen.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert "widget bar: True" in "".join(seen), seen
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_the_builder_draws_its_step_bar_only_in_a_kernel(monkeypatch):
    """On a terminal the classic builder's `Step N/M` lines are the progress (a bar redrawn
    between RUN's output lines would garble it); in a kernel there is a bar of steps."""
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress.bar("Build steps", 3, unit="step", kernel_only=True) is None
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    b = progress.bar("Build steps", 3, unit="step", kernel_only=True)
    assert b is not None and b.total == 3
    b.close()


def test_counted_moves_the_bar_and_a_resend_starts_it_again(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", Terminal())
    b = progress.bar("blob", 10)
    stream = progress.Counted(io.BytesIO(b"0123456789"), b)
    assert stream.read(4) == b"0123" and b.n == 4
    stream.seek(0)                      # the registry asked for a token: the PUT goes again
    assert b.n == 0 and stream.read() == b"0123456789" and b.n == 10
    b.close()
    assert progress.Counted(io.BytesIO(b"ab"), None).read() == b"ab"   # no bar: just a stream


def test_stream_size(tmp_path):
    f = tmp_path / "x.tar"
    f.write_bytes(b"x" * 1234)
    assert progress.stream_size(str(f)) == 1234
    with open(f, "rb") as fh:
        assert progress.stream_size(fh) == 1234
    r, w = os.pipe()
    try:
        with open(r, "rb", closefd=False) as fh:
            assert progress.stream_size(fh) is None      # a pipe has no size to show
    finally:
        os.close(r), os.close(w)
    assert progress.stream_size(io.BytesIO(b"abc")) is None


@pytest.mark.root
def test_save_and_load_show_bars_on_a_terminal_and_load_q_does_not(runtime, state_root, tmp_path, monkeypatch):
    from minidocker.images import transfer
    from minidocker.images.store import ImageStore
    from minidocker.paths import StateRoot
    runtime.image("busybox")                      # made from busybox-static on first use
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    drawn = []                                    # every bar made, to read where it got to
    real_bar = progress.bar
    monkeypatch.setattr(progress, "bar", lambda *a, **kw: drawn.append(real_bar(*a, **kw)) or drawn[-1])

    archive = tmp_path / "bb.tar"
    with open(archive, "wb") as out:
        transfer.save(ImageStore(StateRoot(state_root)), ["busybox"], out)
    assert [(b.desc, b.n, b.total) for b in drawn] == [("Saving layers", 1, 1)]
    assert "Saving layers" in term.getvalue()

    drawn.clear()
    other = ImageStore(StateRoot(str(tmp_path / "root")))
    assert transfer.load(other, str(archive)) == ["Loaded image: busybox:latest"]
    size = os.path.getsize(archive)
    assert [(b.desc, b.n, b.total) for b in drawn] == [("Reading archive", size, size), ("Loading layers", 1, 1)]

    drawn.clear(), term.seek(0), term.truncate()
    assert transfer.load(other, str(archive), bars=False) == ["Loaded image: busybox:latest"]
    assert drawn == [] and term.getvalue() == ""


@pytest.mark.root
def test_a_build_in_a_kernel_counts_its_steps(runtime, tmp_path, monkeypatch):
    from minidocker.compat.build.builder import Builder
    runtime.image("busybox")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nCOPY hello /hello\nRUN cat /hello\n")
    (tmp_path / "hello").write_text("hi\n")
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    drawn, streamed = [], []
    real_bar = progress.bar
    monkeypatch.setattr(progress, "bar", lambda *a, **kw: drawn.append(real_bar(*a, **kw)) or drawn[-1])
    Builder(runtime, str(tmp_path), network="none", no_cache=True,
                       on_event=lambda ev: streamed.append(ev.get("stream", ""))).build()
    assert [(b.desc, b.n, b.total) for b in drawn] == [("Build steps", 3, 3)]
    assert "Step 3/3 : RUN cat /hello" in "".join(streamed)
