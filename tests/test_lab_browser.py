"""The course in a real browser (issue 15): JupyterLab serving the learner's copy as `make lab`
does, driven through its menus by Debian's chromium (headless, with Playwright).

What nbval cannot see: that a plot reaches the page as an image, that the layer explorer of
notebook 05 is a live widget (not its "VBox(...)" text) and answers a click, and which errors a
learner meets when running the learner's copy, where every graded exercise is a stub that raises
NotImplementedError.

Jupyter stops Run All at the first error. Going on from the next cell after each exercise's
error is racy with ipykernel 7: it aborts only the requests that reached it before the error,
so cells further down sometimes ran anyway, unseen (found: notebook 04's cell 27 then failed
with "Conflict ... nb04-burner is already in use" when run again). So the learner's copy tags each
exercise cell `raises-exception` (minidocker.lab.course.TagExercises), JupyterLab's own marker for
"an error here is expected": one Run All goes through every cell, an error in any other cell still
stops it, and the test tells the two kinds apart by the cells' nbgrader metadata.

Screenshots land in the test's temporary directory (their paths are printed; `pytest -s` or
`-rA` shows them).
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import REPO, require, require_tool

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # a skip (a failure under MINIDOCKER_STRICT=1) in the fixture, not an error here
    sync_playwright = None

pytestmark = pytest.mark.root  # the notebooks make namespaces, mounts and cgroups

KERNEL_TIMEOUT = 180   # s: a whole pass of run cells (a notebook runs in well under a minute)
UI_TIMEOUT = 60_000    # ms: the page and its widgets


def is_exercise(c: dict) -> bool:
    meta = c.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def assert_exercises_tagged(path: str) -> None:
    """The learner's copy tags its exercise cells `raises-exception`: Run All goes on past them."""
    with open(path) as f:
        nb = json.load(f)
    for c in nb["cells"]:
        if is_exercise(c):
            assert "raises-exception" in c.get("metadata", {}).get("tags", []), (path, c["source"][:1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 and a headless chromium looking at it."""

    def __init__(self, tmp, browser):
        self.tmp, self.browser = tmp, browser
        self.course = os.path.join(tmp, "course")
        self.token = secrets.token_hex(16)
        self.server: subprocess.Popen | None = None

    # -- the server ------------------------------------------------------------------------
    def api(self, path: str, method: str = "GET", body: dict | None = None):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def start(self) -> None:
        # the learner's copy, as `make lab` writes it (into course/ there, into tmp here)
        subprocess.run([sys.executable, "-m", "minidocker.lab.course", "learner",
                        os.path.join(REPO, "notebooks"), self.course], cwd=REPO, check=True,
                       capture_output=True, timeout=120)
        for name in os.listdir(self.course):
            if name.endswith(".ipynb"):
                assert_exercises_tagged(os.path.join(self.course, name))
        jdir = os.path.join(self.tmp, "jupyter")
        os.makedirs(os.path.join(self.tmp, "home"))
        settings = os.path.join(jdir, "settings", "@jupyterlab", "apputils-extension")
        os.makedirs(settings)
        with open(os.path.join(settings, "notification.jupyterlab-settings"), "w") as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)  # nothing beyond loopback
        env = dict(os.environ,
                   PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p),
                   # the learner's own Jupyter settings, kernels and workspaces stay out of it
                   HOME=os.path.join(self.tmp, "home"),   # (the interview quiz keeps its progress there)
                   MPLCONFIGDIR=os.environ.get("MPLCONFIGDIR", os.path.expanduser("~/.config/matplotlib")),
                   JUPYTER_CONFIG_DIR=os.path.join(jdir, "config"),
                   JUPYTER_DATA_DIR=os.path.join(jdir, "data"),
                   JUPYTER_RUNTIME_DIR=os.path.join(jdir, "runtime"))
        for attempt in range(3):  # (the free port may be taken before the server binds it)
            self.port = _free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self.log = open(os.path.join(self.tmp, f"jupyter-lab-{attempt}.log"), "w")
            self.server = subprocess.Popen(
                [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser",
                 "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
                 f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={self.course}",
                 f"--LabApp.user_settings_dir={os.path.join(jdir, 'settings')}",
                 f"--LabApp.workspaces_dir={os.path.join(jdir, 'workspaces')}"],
                cwd=self.tmp, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120
            while self.server.poll() is None:
                try:
                    self.api("/api/status")
                    return
                except OSError:
                    assert time.monotonic() < deadline, f"jupyter lab did not answer /api/status: {self.server_log()}"
                    time.sleep(0.2)
            self.log.close()
            if "already in use" not in self.server_log():
                break
        raise AssertionError(f"jupyter lab exited {self.server.returncode}: {self.server_log()}")

    def server_log(self) -> str:
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def stop(self) -> None:
        if self.server is None:
            return
        try:  # the kernels first (their atexit clean-up runs), then the server: ours, by its PID
            for k in self.api("/api/kernels"):
                self.api(f"/api/kernels/{k['id']}", method="DELETE")
        except OSError:
            pass
        if self.server.poll() is None:
            os.kill(self.server.pid, signal.SIGTERM)
            try:
                self.server.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.server.pid, signal.SIGKILL)
                self.server.wait(10)
        self.log.close()

    # -- the page --------------------------------------------------------------------------
    def open(self, name: str):
        page = self.browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT)
        page.problems, page.console_errors = [], []
        page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.goto(f"{self.base}/lab/tree/{name}?token={self.token}&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell")
        # the kernel is up when the notebook's session has one and it is idle
        deadline = time.monotonic() + KERNEL_TIMEOUT
        while not [s for s in self.api("/api/sessions")
                   if s["path"] == name and s["kernel"]["execution_state"] == "idle"]:
            assert time.monotonic() < deadline, f"no idle kernel for {name}: {self.api('/api/sessions')}"
            time.sleep(0.2)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        return page

    def screenshot(self, page_or_locator, name: str) -> str:
        path = os.path.join(self.tmp, name)
        page_or_locator.screenshot(path=path)
        print("screenshot:", path)
        return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    chromium = require_tool("chromium")
    require(sync_playwright is not None, "playwright not installed (pip install -e '.[test]'; scripts/setup.sh does)")
    tmp = str(tmp_path_factory.mktemp("lab-browser"))
    with sync_playwright() as p:
        # Debian's chromium, not a downloaded one (`playwright install` needs the internet)
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        lab = Lab(tmp, browser)
        try:
            lab.start()
            yield lab
        finally:
            lab.stop()
            browser.close()


# -- running cells through the menus -----------------------------------------------------------

def cell(page, i: int):
    return page.locator(".jp-NotebookPanel .jp-Cell").nth(i)


def menu(page, top: str, command: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=top).first.click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def select(page, first: int, last: int | None = None) -> None:
    """Select code cell `first` (click its prompt), or the cells first..last (shift-click)."""
    cell(page, first).locator(".jp-InputPrompt").click()
    if last is not None and last != first:
        cell(page, last).locator(".jp-InputPrompt").click(modifiers=["Shift"])


def prompt(page, i: int) -> str:
    return (cell(page, i).locator(".jp-InputPrompt").text_content() or "").strip()


def wait_ran(page, first: int) -> None:
    """Wait until code cell `first` (not run before) has run and no cell is queued or running."""
    page.wait_for_function(
        """(i) => {
            const cells = document.querySelectorAll('.jp-NotebookPanel .jp-Cell');
            const p = c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '';
            return /\\[\\d+\\]/.test(p(cells[i])) && ![...cells].some(c => p(c).includes('*'));
        }""", arg=first, timeout=KERNEL_TIMEOUT * 1000, polling=250)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=KERNEL_TIMEOUT * 1000)


def saved(lab: Lab, page, name: str) -> list[dict]:
    """The notebook's cells as the browser has them: File > Save Notebook, then read the file."""
    path = os.path.join(lab.course, name)
    before = os.stat(path).st_mtime_ns
    menu(page, "File", "docmanager:save")
    deadline = time.monotonic() + 60
    while os.stat(path).st_mtime_ns == before:
        assert time.monotonic() < deadline, "File > Save did not write the notebook"
        time.sleep(0.1)
    for _ in range(50):  # (the file may be caught half written)
        try:
            with open(path) as f:
                return json.load(f)["cells"]
        except ValueError:
            time.sleep(0.1)
    raise AssertionError(f"{path} is not JSON after saving")


def errors(c: dict) -> list[dict]:
    return [o for o in c.get("outputs", []) if o.get("output_type") == "error"]


def next_code(cells: list[dict], i: int) -> int | None:
    return next((j for j in range(i, len(cells)) if cells[j]["cell_type"] == "code"), None)


def run(lab: Lab, page, name: str, start, first: int, last: int | None = None) -> tuple[list, list]:
    """Run cells with `start()` (menu commands; code cell `first` is the first it runs), wait for
    the kernel, save. Returns (the saved cells, [(index, "Ename: value")] of the exercises' errors
    among first..last). Fails on an error in any cell that is not an exercise."""
    assert prompt(page, first) == "[ ]:", f"{name}: cell {first} ran before: {prompt(page, first)}"
    start()
    wait_ran(page, first)
    cells = saved(lab, page, name)
    expected = []
    for i in range(first, len(cells) if last is None else last + 1):
        for e in errors(cells[i]):
            assert is_exercise(cells[i]), (
                f"{name}: cell {i} (not an exercise) shows an error:\n{''.join(cells[i]['source'])}\n"
                + "\n".join(e.get("traceback", []))[-3000:])
            expected.append((i, f"{e['ename']}: {e['evalue']}"))
    return cells, expected


def instructor_cells(name: str) -> list[dict]:
    with open(os.path.join(REPO, "notebooks", name)) as f:
        return json.load(f)["cells"]


def cells_with_output(name: str, mime: str) -> list[int]:
    """The cells whose saved (instructor) output has `mime`: where a plot or a widget must appear."""
    return [i for i, c in enumerate(instructor_cells(name))
            if any(mime in o.get("data", {}) for o in c.get("outputs", []))]


def report(lab: Lab, page, name: str, cells: list[dict], expected: list) -> None:
    ran = sum(1 for c in cells if c["cell_type"] == "code" and c.get("execution_count"))
    print(f"{name}: {ran} code cells ran; exercise errors (expected in the learner's copy):")
    for i, what in expected:
        print(f"   cell {i} ({cells[i]['metadata']['nbgrader'].get('grade_id')}): {what.splitlines()[0][:120]}")
    if expected:  # what a learner meets first
        lab.screenshot(cell(page, expected[0][0]).locator(".jp-OutputArea"),
                       f"{name[:-len('.ipynb')]}-first-exercise-error.png")
    for text in page.console_errors:
        print(f"{name}: browser console error: {text[:300]}")


def assert_everything_ran(name: str, cells: list[dict], upto: int | None = None) -> None:
    not_run = [i for i, c in enumerate(cells[:None if upto is None else upto + 1])
               if c["cell_type"] == "code" and not c.get("execution_count")]
    assert not not_run, f"{name}: code cells that did not run: {not_run}"
    counts = [c["execution_count"] for c in cells if c["cell_type"] == "code" and c.get("execution_count")]
    assert counts == sorted(set(counts)), f"{name}: cells ran out of order or twice: {counts}"


def assert_exercise_errors_are_the_stubs(name: str, cells: list[dict], expected: list) -> None:
    """Each exercise error comes from the learner's stub, not from a broken check."""
    assert expected, f"{name}: the learner's copy ran every exercise without an error?"
    for i, what in expected:
        tb = "\n".join(errors(cells[i])[0].get("traceback", []))
        assert what.startswith("NotImplementedError") or "NotImplementedError" in tb, \
            f"{name}: exercise cell {i} fails with {what}, not the stub's NotImplementedError:\n{tb[-3000:]}"


def assert_plot(page, name: str, i: int) -> None:
    """Cell i shows one image, loaded (a broken or empty image has natural width 0)."""
    img = cell(page, i).locator(".jp-OutputArea-output img")
    assert img.count() == 1, f"{name}: cell {i} has {img.count()} images in its output"
    img.scroll_into_view_if_needed()
    page.wait_for_function("(e) => e.complete && e.naturalWidth > 0", arg=img.element_handle())
    w, h = img.evaluate("(e) => [e.naturalWidth, e.naturalHeight]")
    print(f"{name}: the plot of cell {i} is a {w}x{h} image")
    assert w > 100 and h > 50


# -- the tests ---------------------------------------------------------------------------------

def test_cgroups_notebook_runs_and_shows_its_plot(lab):
    name = "04-cgroups.ipynb"
    plots = cells_with_output(name, "image/png")
    assert plots, f"{name} has no plot"
    page = lab.open(name)
    first = next_code(instructor_cells(name), 0)
    cells, expected = run(lab, page, name, lambda: menu(page, "Run", "runmenu:run-all"), first)
    report(lab, page, name, cells, expected)
    assert_everything_ran(name, cells)
    assert_exercise_errors_are_the_stubs(name, cells, expected)
    for i in plots:
        assert_plot(page, name, i)
        lab.screenshot(cell(page, i), "04-cgroups-plot.png")
    lab.screenshot(page, "04-cgroups-page.png")
    assert not page.problems, page.problems
    page.close()


def test_overlay2_layer_explorer_is_a_live_widget(lab):
    name = "05-overlay2.ipynb"
    widgets = cells_with_output(name, "application/vnd.jupyter.widget-view+json")
    assert len(widgets) == 1, widgets
    w = widgets[0]
    page = lab.open(name)
    # up to the explorer's cell only: the notebook's last cell removes the layers it shows
    src = instructor_cells(name)
    first = next_code(src, 0)
    cells, expected = run(lab, page, name, lambda: (select(page, first, w), menu(page, "Run", "runmenu:run")),
                          first, last=w)
    assert_everything_ran(name, cells, upto=w)

    out = cell(page, w).locator(".jp-OutputArea-output")
    box = out.locator(".widget-vbox")
    box.wait_for()
    assert "VBox(" not in out.text_content(), "the widget shows as text: no widget manager in the page"
    dropdown, view = box.locator(".widget-dropdown select"), box.locator(".widget-html-content")
    options = dropdown.locator("option").all_inner_texts()
    print(f"{name}: the explorer offers {options}")
    assert len(options) >= 3 and "container" in options[-1]
    page.wait_for_function("(e) => e.textContent.includes('/bin')", arg=view.element_handle())  # busybox's layer
    lab.screenshot(cell(page, w), "05-overlay2-explorer-layer0.png")

    # pick layer 2 (the RUN that deleted /etc/group and replaced /app/config) as a learner would
    dropdown.select_option(index=2)
    page.wait_for_function("(e) => e.textContent.includes('WHITEOUT  /etc/group') && e.textContent.includes('OPAQUE')",
                           arg=view.element_handle())
    lab.screenshot(cell(page, w), "05-overlay2-explorer-layer2.png")
    dropdown.select_option(index=len(options) - 1)   # the container's writable layer
    page.wait_for_function("(e) => e.textContent.includes('/tmp/new.txt')", arg=view.element_handle())
    lab.screenshot(cell(page, w), "05-overlay2-explorer-container.png")

    # then the rest of the notebook: its cell after the explorer picks layer 2 from Python
    nxt = next_code(src, w + 1)
    cells, more = run(lab, page, name, lambda: (select(page, nxt), menu(page, "Run", "notebook:run-all-below")), nxt)
    expected += more
    report(lab, page, name, cells, expected)
    assert_everything_ran(name, cells)
    assert_exercise_errors_are_the_stubs(name, cells, expected)
    assert dropdown.evaluate("(e) => e.selectedIndex") == 2, "the kernel's pick.value did not reach the page"
    for i in cells_with_output(name, "image/png"):
        assert_plot(page, name, i)
    # after the last cell removed the layers, the explorer still shows what they held (its
    # snapshot, read when the cell ran), not "0 files"
    dropdown.select_option(index=1)
    page.wait_for_function("(e) => e.textContent.includes('/app/hello.txt')", arg=view.element_handle())
    print(f"{name}: after the clean-up, layer 1 in the explorer shows: {view.text_content()[:200]!r}")
    lab.screenshot(cell(page, w), "05-overlay2-explorer-after-cleanup.png")
    lab.screenshot(page, "05-overlay2-page.png")
    assert not page.problems, page.problems
    page.close()


def test_the_chinese_language_pack_switches_the_menus(lab):
    """The `lab` extra installs JupyterLab's zh_CN language pack: Settings > Language lists it, and
    choosing it (the setting the menu writes) puts the menus in Chinese. Set back to English after."""
    langs = lab.api("/lab/api/translations/")["data"]
    print("languages JupyterLab offers:", sorted(langs))
    assert "zh_CN" in langs, langs
    plugin = "/lab/api/settings/@jupyterlab/translation-extension:plugin"
    lab.api(plugin, "PUT", {"raw": json.dumps({"locale": "zh_CN"})})
    try:
        page = lab.open("00-preflight.ipynb")
        page.locator(".lm-MenuBar-item", has_text="文件").first.wait_for()
        bar = page.locator(".lm-MenuBar-content").first.text_content()
        print("the menu bar in zh_CN:", bar)
        assert "文件" in bar and "编辑" in bar
        lab.screenshot(page, "jupyterlab-zh_CN.png")
        page.close()
    finally:
        lab.api(plugin, "PUT", {"raw": json.dumps({"locale": "en"})})


def test_interview_flash_cards_reveal_run_the_evidence_and_keep_progress(lab):
    """The quiz of interview-prep in JupyterLab: the setup cell and the quiz cell run, the first
    card shows its question; Reveal shows both answers, "Run the evidence" runs its cell in the
    kernel (its output appears, no error), "I knew it" lands in the progress file in the home."""
    name = "interview-prep.ipynb"
    src = instructor_cells(name)
    setup = next_code(src, 0)
    code = [(i, "".join(c["source"])) for i, c in enumerate(src) if c["cell_type"] == "code"]
    quiz_cell = next(i for i, text in code if "quiz.FlashCards" in text)
    clean = max(i for i, text in code if "assert_clean" in text)
    page = lab.open(name)
    run(lab, page, name, lambda: (select(page, setup), menu(page, "Run", "runmenu:run")), setup, last=setup)
    run(lab, page, name, lambda: (select(page, quiz_cell), menu(page, "Run", "runmenu:run")), quiz_cell,
        last=quiz_cell)
    box = cell(page, quiz_cell).locator(".jp-OutputArea-output .widget-vbox").first
    box.wait_for()
    title = box.locator(".widget-html-content").first
    page.wait_for_function("(e) => e.textContent.includes('Q1.')", arg=title.element_handle())
    box.locator("button", has_text="Reveal").click()
    page.wait_for_function("(e) => e.textContent.includes('中文') && e.textContent.includes('English')",
                           arg=box.element_handle())
    box.locator("button", has_text="Run the evidence").click()
    page.wait_for_function("(e) => e.textContent.includes('the kernel a container runs on')", arg=box.element_handle(),
                           timeout=KERNEL_TIMEOUT * 1000)
    assert "Traceback" not in box.text_content()
    lab.screenshot(cell(page, quiz_cell), "interview-quiz.png")
    box.locator("button", has_text="I knew it").click()
    progress = os.path.join(lab.tmp, "home", ".minidocker-quiz.json")
    deadline = time.monotonic() + 30
    while not os.path.exists(progress):
        assert time.monotonic() < deadline, "no progress file after 'I knew it'"
        time.sleep(0.2)
    with open(progress) as f:
        assert json.load(f)["known"] == [1]
    page.wait_for_function("(e) => e.textContent.includes('1/') && e.textContent.includes('known')",
                           arg=box.element_handle())
    run(lab, page, name, lambda: (select(page, clean), menu(page, "Run", "runmenu:run")), clean, last=clean)
    assert not page.problems, page.problems
    page.close()
