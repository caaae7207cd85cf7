"""Plots with Chinese labels: matplotlib's default font (DejaVu Sans) has no CJK glyphs, so a
title like "CPU 限额" comes out as boxes. The notebooks that plot call, after `%matplotlib inline`:

    from minidocker.lab.plots import use_cjk_font
    use_cjk_font()      # -> "Noto Sans CJK JP" (the font now used), or None if none is installed

which puts an installed CJK font first in font.sans-serif (DejaVu Sans stays behind it, as a
fallback) and sets axes.unicode_minus False (those fonts lack U+2212, the minus sign matplotlib
draws on axes). Debian: `apt-get install fonts-noto-cjk` (scripts/setup.sh installs it).
"""
from __future__ import annotations

import os

# Simplified Chinese first; the Noto CJK fonts share their glyphs for the course's terms, and
# matplotlib reads only the first face of a .ttc (in Debian's NotoSansCJK-*.ttc: JP).
PREFERRED = (
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans CJK TC", "Noto Sans CJK KR", "Noto Sans CJK HK",
    "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN", "Source Han Sans",
    "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN",
    "Noto Serif CJK SC", "Noto Serif CJK JP",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
)
# file names of fonts that matplotlib's font cache (built once) may not know yet
FILE_HINTS = ("notosanscjk", "notoserifcjk", "notosanssc", "sourcehansans", "wqy", "droidsansfallback",
              "uming", "ukai")


def pick_font(available, preferred=PREFERRED) -> str | None:
    """The first of `preferred` among the `available` font family names, or None."""
    have = set(available)
    return next((name for name in preferred if name in have), None)


def cjk_font_files(paths) -> list[str]:
    """Those of `paths` (font files) whose names look like a CJK font's."""
    return [p for p in paths if any(h in os.path.basename(p).lower().replace("-", "").replace("_", "")
                                    for h in FILE_HINTS)]


def use_cjk_font(rc=None) -> str | None:
    """Make matplotlib draw Chinese: an installed CJK font first in font.sans-serif, and
    axes.unicode_minus False. Returns the font's name, or None (nothing changed) if none is
    installed. `rc` defaults to matplotlib.rcParams."""
    import matplotlib
    from matplotlib import font_manager

    fm = font_manager.fontManager
    name = pick_font(f.name for f in fm.ttflist)
    if name is None:
        # installed after matplotlib cached its font list: add the files (no cache rebuild)
        for path in cjk_font_files(font_manager.findSystemFonts()):
            try:
                fm.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
        name = pick_font(f.name for f in fm.ttflist)
    if name is None:
        return None
    rc = matplotlib.rcParams if rc is None else rc
    rc["font.sans-serif"] = [name] + [f for f in rc["font.sans-serif"] if f != name]
    rc["axes.unicode_minus"] = False
    return name
