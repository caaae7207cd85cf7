"""minidocker.lab.plots: a CJK font for the notebooks' plots, so Chinese labels are not boxes."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import require, require_tool

from minidocker.lab import plots


def test_pick_font_prefers_simplified_chinese():
    assert plots.pick_font(["DejaVu Sans", "Noto Sans CJK JP", "Noto Sans CJK SC"]) == "Noto Sans CJK SC"
    assert plots.pick_font(["DejaVu Sans", "WenQuanYi Zen Hei"]) == "WenQuanYi Zen Hei"
    assert plots.pick_font(iter(["DejaVu Sans", "Liberation Sans"])) is None
    assert plots.pick_font(["B", "A"], preferred=("A", "B")) == "A"


def test_cjk_font_files_by_name():
    paths = ["/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
             "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
             "/usr/share/fonts/truetype/arphic/uming.ttc"]
    assert plots.cjk_font_files(paths) == [paths[0], paths[1], paths[3]]


def test_use_cjk_font_sets_the_rc_given():
    pytest.importorskip("matplotlib")
    rc = {"font.sans-serif": ["DejaVu Sans", "Arial"], "axes.unicode_minus": True}
    name = plots.use_cjk_font(rc)
    if name is None:
        assert rc == {"font.sans-serif": ["DejaVu Sans", "Arial"], "axes.unicode_minus": True}
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    assert rc["font.sans-serif"] == [name, "DejaVu Sans", "Arial"] and rc["axes.unicode_minus"] is False
    assert plots.use_cjk_font(rc) == name and rc["font.sans-serif"].count(name) == 1   # twice: same


def test_an_installed_cjk_font_draws_chinese():
    """If fontconfig has a CJK font, use_cjk_font finds it and a Chinese title draws without
    'Glyph ... missing' warnings (run in a fresh process: it changes matplotlib's rcParams)."""
    fc_list = require_tool("fc-list")
    have = subprocess.run([fc_list, ":lang=zh", "family"], capture_output=True, text=True).stdout
    require(any(name in have for name in plots.PREFERRED), "no CJK font installed (apt-get install fonts-noto-cjk)")
    pytest.importorskip("matplotlib")
    code = """
import warnings, matplotlib
matplotlib.use("Agg")
from minidocker.lab.plots import use_cjk_font
import matplotlib.pyplot as plt
name = use_cjk_font()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    fig, ax = plt.subplots()
    ax.set_title("CPU 限额"); ax.plot([-1, 1])
    fig.canvas.draw()
print(name, [str(x.message) for x in w if "missing" in str(x.message)], sep="|")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    name, _, missing = out.strip().partition("|")
    assert name != "None", f"fontconfig lists a CJK font but use_cjk_font found none: {have[:200]}"
    assert missing == "[]", missing
