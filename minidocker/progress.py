"""Progress bars for the long steps: pull, build, save, load.

Where the user can see one, a step shows a tqdm bar: a widget in a Jupyter kernel (tqdm.auto
picks ipywidgets' bar), a text bar on a terminal. Into a pipe or a log file nothing is drawn:
a bar there is only noise. Bars go to stderr (tqdm's default) and vanish when done
(leave=False), so what stays on screen is Docker's own status lines.
"""
from __future__ import annotations

import sys


def visible_to_user(kernel_only: bool = False) -> bool:
    """Can someone see a bar? In a kernel yes; on a terminal unless `kernel_only`."""
    if "ipykernel" in sys.modules:
        return True
    return not kernel_only and sys.stderr.isatty()


def bar(desc: str, total: int | None, unit: str = "B", kernel_only: bool = False):
    """A tqdm bar, or None when nobody would see it (or tqdm is missing).

    unit="B" counts bytes (shown as kB/MB); any other unit counts items (steps, layers).
    `kernel_only` is for output that already shows progress on a terminal, e.g. the
    builder's `Step N/M` lines interleaved with RUN's output, which a redrawn bar would garble."""
    if not visible_to_user(kernel_only):
        return None
    try:
        if "ipykernel" in sys.modules:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=(unit == "B"), leave=False)


class Counted:
    """A read-through stream that moves `bar` by the bytes read (bar may be None)."""

    def __init__(self, raw, bar):
        self.raw, self.bar = raw, bar

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if self.bar is not None and data:
            self.bar.update(len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:  # a request re-sent after a 401
        if self.bar is not None:
            self.bar.reset(total=self.bar.total)
        return self.raw.seek(offset, whence)


def stream_size(source) -> int | None:
    """The size of a path or a regular file's stream (stdin redirected from a file); None for a pipe."""
    import os
    import stat
    try:
        st = os.stat(source) if isinstance(source, (str, bytes, os.PathLike)) else os.fstat(source.fileno())
    except (OSError, AttributeError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None
