"""Pull progress (images.registry._progress_bar): a text bar on a terminal, a widget bar in a
Jupyter kernel (tqdm.auto), nothing when nobody can see it (a pipe, a log file)."""
from __future__ import annotations

import io
import sys
import types

import pytest

from minidocker.images import registry

tqdm = pytest.importorskip("tqdm")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_no_bar_into_a_pipe(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert registry._progress_bar("abc", 100) is None


def test_a_text_bar_on_a_terminal(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = registry._progress_bar("8856e5404ad3", 2_000_000)
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
    bar = registry._progress_bar("abc", 10)
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
            "from minidocker.images.registry import _progress_bar\n"
            "bar = _progress_bar('abc', 10); bar.update(5)\n"
            "import tqdm.notebook\n"
            "print('widget bar:', isinstance(bar, tqdm.notebook.tqdm_notebook)); bar.close()",
            timeout=60,
            output_hook=lambda m: seen.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None)
        assert "widget bar: True" in "".join(seen), seen
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
