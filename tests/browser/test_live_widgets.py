"""The live explorers in a real Jupyter: run a chapter, move its slider, see a new figure.

The book shows the explorers' *static* sliders (the build sets
``SIAMESE_LIB_WIDGETS=static``); a reader who runs a chapter in Jupyter gets the *live*
ones, an ipywidgets ``SelectionSlider`` above an ``Output`` that the kernel redraws.
This test checks the live ones end to end: it starts JupyterLab (see lab_server.py)
with a kernel environment without ``SIAMESE_LIB_WIDGETS``, opens chapters 2 and 4 in
headless Chromium, runs each up to its explorer cell, presses the right arrow key on
the slider's handle and waits for the readout and the figure's image to change.

It fails if the widget does not render (a page without the widget frontend shows
only the text ``VBox(...)``), if the slider does not move, or if the kernel does not
redraw the figure.

The committed notebooks are never opened: the server's root is a temporary folder
holding copies of the two chapters (they need no file beside them: they import
``siamese_lib``, put first on the kernel's ``PYTHONPATH``, and read their data from
``SIAMESE_LIB_DATA``), so the server cannot write into the originals; autosave is off
as well.

Run it (it takes one to two minutes on 2 cores, once chapter 4's model is cached)::

    SIAMESE_LIB_DATA=../shared/data pytest tests/browser/test_live_widgets.py -m browser
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab_server import LabServer, running_lab

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]  # this checkout, wherever pytest runs from

OPEN_TIMEOUT_MS = 90_000  # JupyterLab's page and the notebook's kernel are up
RUN_TIMEOUT_MS = 240_000  # the cells up to the explorer have run (chapter 4 may train)
RENDER_TIMEOUT_MS = 20_000  # the explorer's output becomes a slider and a figure
REDRAW_TIMEOUT_MS = 30_000  # after a move, the readout and the figure change


@dataclass(frozen=True)
class Explorer:
    """A chapter, and the source of the code cell that shows its live explorer."""

    notebook: str
    source: str


EXPLORERS = [
    Explorer("02_siamese_and_contrastive_loss.ipynb", "margin_explorer(start=MARGIN)"),
    Explorer("04_embedding_distances.ipynb", "threshold_explorer(d_test, y_test, start=tau)"),
]

# In the explorer cell's output: the slider's parts (ipywidgets 8 draws it with
# noUiSlider, ipywidgets 7 with jQuery UI) and the Output widget's figure.
SLIDER = ".widget-slider"
HANDLE = ".noUi-handle, .ui-slider-handle"
READOUT = ".widget-readout"
FIGURE = ".widget-output img"


# --------------------------------------------------------------------------------------
# The server: a temporary root with copies of the chapters, and a live-widget kernel


def kernel_environment(base: dict[str, str]) -> dict[str, str]:
    """The server's (and its kernels') environment: ``base`` made right for live widgets."""
    env = dict(base)
    # "static" (the book build's setting) would turn the live sliders into HTML ones.
    env.pop("SIAMESE_LIB_WIDGETS", None)
    # CI exports MPLBACKEND=Agg; unset, ipykernel uses the inline backend, which displays
    # the figures the explorers draw.
    env.pop("MPLBACKEND", None)
    # The kernels run in the temporary root, so a relative path would point elsewhere
    # (unset, the library's default, ~/siamese_lib_data, is the same from anywhere).
    for name in ("SIAMESE_LIB_DATA", "SIAMESE_LIB_CACHE"):
        if env.get(name):
            env[name] = str(Path(env[name]).expanduser().resolve())
    # This checkout's siamese_lib, whatever is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def originals() -> dict[str, bytes]:
    """The committed chapters' bytes: the server gets copies of them."""
    return {e.notebook: (REPO / "notebooks" / e.notebook).read_bytes() for e in EXPLORERS}


@pytest.fixture(scope="module")
def lab(browser, book_html, skip_unless_required, originals, tmp_path_factory
        ) -> Iterator[LabServer]:
    """JupyterLab serving copies of the chapters, with live-widget kernels.

    Like every browser test it waits for the built book (``book_html`` skips until then):
    the build has trained and cached chapter 4's model, which the kernel then loads.
    """
    if importlib.util.find_spec("jupyterlab") is None:
        skip_unless_required("jupyterlab is not installed (pip install jupyterlab)")
    root = tmp_path_factory.mktemp("lab-root")
    (root / "notebooks").mkdir()
    for name, content in originals.items():
        (root / "notebooks" / name).write_bytes(content)
    with running_lab(root, tmp_path_factory.mktemp("lab-state"),
                     env=kernel_environment(dict(os.environ))) as server:
        yield server


@pytest.fixture
def lab_page(browser, lab: LabServer):
    """A fresh browser page that may reach the Jupyter server and nothing else."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                  service_workers="block")
    context.route(lambda url: not url.startswith(lab.url), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()
        lab.shut_down_kernels()


# --------------------------------------------------------------------------------------
# Steps


def explorer_cell_index(notebook: Path, source: str) -> int:
    """The position of the code cell whose whole source is ``source``."""
    cells = json.loads(notebook.read_text(encoding="utf8"))["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "code" and "".join(cell["source"]).strip() == source:
            return index
    pytest.fail(f"{notebook.name} has no code cell `{source}` (was the explorer renamed?)")


def _timed_out(wait) -> bool:
    """Run ``wait()``; whether it raised Playwright's TimeoutError."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        wait()
    except PlaywrightTimeout:
        return True
    return False


def open_notebook(page, lab: LabServer, path: str) -> str:
    """Open ``path`` in JupyterLab, wait until it is shown and its kernel idle; its panel's id.

    Running cells earlier, while the kernel is still connecting, can silently run
    nothing; and until every cell is in the page, a cell's position there is not its
    position in the notebook.
    """
    page.goto(lab.lab_url(path), wait_until="domcontentloaded", timeout=OPEN_TIMEOUT_MS)
    ready = """(path) => {
        const panel = window.jupyterapp?.shell.currentWidget;
        if (panel?.context?.path !== path || !panel.context.isReady) return false;
        const n = panel.content.widgets.length;
        return n > 0 && panel.node.querySelectorAll(".jp-Cell").length === n
            && panel.sessionContext.kernelDisplayStatus === "idle" && panel.id;
    }"""
    if _timed_out(lambda: page.wait_for_function(ready, arg=path, timeout=OPEN_TIMEOUT_MS)):
        pytest.fail(f"JupyterLab did not show {path} with an idle kernel within "
                    f"{OPEN_TIMEOUT_MS // 1000} s\n--- server log (end):\n{lab.log_tail()}")
    return page.evaluate("() => window.jupyterapp.shell.currentWidget.id")


def cell_source(page, index: int) -> str:
    """The source of cell ``index`` of the current notebook, as JupyterLab holds it."""
    return page.evaluate("""(index) => window.jupyterapp.shell.currentWidget.content
        .widgets[index].model.sharedModel.getSource()""", index)


def run_through(page, index: int) -> None:
    """Start running the cells up to and including cell ``index``; returns at once.

    Runs the commands behind the Run menu's "Run All Above Selected Cell" and "Run
    Selected Cell"; the caller waits for the outputs, with a timeout.
    """
    page.evaluate(
        """(index) => {
            const app = window.jupyterapp, notebook = app.shell.currentWidget.content;
            notebook.activeCellIndex = index;
            app.commands.execute("notebook:run-all-above")
               .then(() => app.commands.execute("notebook:run-cell"));
        }""", index)


def wait_for_explorer(page, cell, lab: LabServer) -> None:
    """Wait until the explorer cell has run and shows a slider above a figure."""
    prompt = cell.locator(".jp-InputPrompt").filter(has_text=re.compile(r"\[\d+\]"))
    if _timed_out(lambda: prompt.wait_for(timeout=RUN_TIMEOUT_MS)):
        pytest.fail(f"the cells up to the explorer did not finish running within "
                    f"{RUN_TIMEOUT_MS // 1000} s{_diagnosis(page, cell, lab)}")
    if _timed_out(lambda: (cell.locator(SLIDER).wait_for(timeout=RENDER_TIMEOUT_MS),
                           cell.locator(FIGURE).wait_for(timeout=RENDER_TIMEOUT_MS))):
        output = cell.locator(".jp-Cell-outputArea").inner_text()
        hint = (" -- only the widget's text repr: the page has no ipywidgets frontend"
                if "VBox(" in output else "")
        pytest.fail(f"the explorer cell ran but shows no live slider above a figure"
                    f"{hint}{_diagnosis(page, cell, lab)}")


def _diagnosis(page, cell, lab: LabServer) -> str:
    """For a failure message: the cells running or queued, the notebook's error outputs,
    the explorer cell's output and the end of the server's log."""
    running = page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
        .map((c, i) => [i, c.node.querySelector(".jp-InputPrompt")?.textContent ?? "",
                        c.model.sharedModel.getSource().split("\\n")[0]])
        .filter(([, prompt]) => prompt.includes("*"))
        .map(([i, , line]) => `cell ${i}: ${line}`)""")
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    texts = [errors.nth(i).inner_text()[-1500:] for i in range(min(errors.count(), 3))]
    output = cell.locator(".jp-Cell-outputArea").inner_text()[:1500]
    return (f"\n--- cells running or queued ([*]): {', '.join(running[:3]) or '(none)'}"
            f"\n--- explorer cell output:\n{output or '(none)'}"
            f"\n--- error output in the notebook:\n{chr(10).join(texts) or '(none)'}"
            f"\n--- server log (end):\n{lab.log_tail(2000)}")


def figure_src(cell) -> str:
    return cell.locator(FIGURE).first.get_attribute("src") or ""


def move_slider(cell) -> None:
    """Focus the slider's handle and press the right arrow: one position up."""
    handle = cell.locator(HANDLE).first
    handle.focus()
    handle.press("ArrowRight")


def wait_for_change(page, cell, lab: LabServer, selector: str, read: str, before: str,
                    what: str) -> None:
    """Wait until ``element[read]`` of the cell's ``selector`` is no longer ``before``."""
    changed = """([cell, selector, read, before]) => {
        const element = cell.querySelector(selector);
        return element && element[read] && element[read] !== before;
    }"""
    arg = [cell.element_handle(), selector, read, before]
    if _timed_out(lambda: page.wait_for_function(changed, arg=arg, timeout=REDRAW_TIMEOUT_MS,
                                                 polling=200)):
        pytest.fail(f"the {what} did not change within {REDRAW_TIMEOUT_MS // 1000} s of "
                    f"the slider's move{_diagnosis(page, cell, lab)}")


# --------------------------------------------------------------------------------------
# The test


@pytest.mark.parametrize("explorer", EXPLORERS, ids=lambda e: e.notebook.split("_")[0])
def test_live_slider_redraws_the_figure(lab_page, lab, explorer):
    """Run a chapter in JupyterLab up to its explorer; a slider move redraws the figure."""
    path = f"notebooks/{explorer.notebook}"
    index = explorer_cell_index(lab.root_dir / path, explorer.source)
    panel_id = open_notebook(lab_page, lab, path)
    assert cell_source(lab_page, index).strip() == explorer.source
    cell = lab_page.locator(f"#{panel_id} .jp-Cell").nth(index)

    run_through(lab_page, index)
    wait_for_explorer(lab_page, cell, lab)
    readout = cell.locator(READOUT).first.inner_text()
    figure = figure_src(cell)
    assert figure.startswith("data:image/png;base64,"), figure[:80]

    move_slider(cell)
    wait_for_change(lab_page, cell, lab, READOUT, "textContent", readout, "slider's readout")
    wait_for_change(lab_page, cell, lab, FIGURE, "src", figure, "figure")
    assert figure_src(cell).startswith("data:image/png;base64,")


def test_kernel_environment_is_live():
    """The server's environment turns off static explorers and makes paths absolute."""
    env = kernel_environment({"SIAMESE_LIB_WIDGETS": "static", "MPLBACKEND": "Agg",
                              "SIAMESE_LIB_DATA": "../shared/data"})
    assert "SIAMESE_LIB_WIDGETS" not in env and "MPLBACKEND" not in env
    assert Path(env["SIAMESE_LIB_DATA"]).is_absolute()
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
