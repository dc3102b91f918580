"""Headless-browser checks of the built book, page by page.

Every HTML page listed in ``_toc.yml`` is opened in Chromium (see conftest.py) and
checked: it loads with no error and no request leaving the local server, its formulas
are typeset (MathJax served by the book itself), its images load, a screenshot is taken,
its launch links point at the right notebook, its internal links and anchors resolve,
and its static explorers are sliders that open where the chapter says and redraw.

Run after building the book::

    jupyter-book build . -W -n --keep-going
    pytest -m browser                      # skips if the book or Chromium is missing
    REQUIRE_BOOK=1 pytest -m browser       # ... or fails instead (CI)
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

EDITION = "zh"  # the Chinese edition's folder in the built site (as in conftest.py)

# toc_page / notebook_page / explorer_page are parametrised by conftest.py from
# _toc.yml (and, for explorer_page, the explorer pages plus any built page with one).
EXPLORERS = "div.siamese-explorer"


# --------------------------------------------------------------------------------------
# Helpers


def _open(page, book_url: str, name: str):
    response = page.goto(book_url + name, wait_until="load")
    assert response is not None, f"no response for {name}"
    assert response.status == 200, f"{name}: HTTP {response.status}"
    return response


def _wait_for_images(page) -> None:
    """Make lazy images load now, and wait until every image has loaded or failed."""
    page.evaluate(
        """() => Promise.all(Array.from(document.images).map(img => {
               img.loading = 'eager';
               if (img.complete) return null;
               return new Promise(resolve => {
                   img.addEventListener('load', resolve, {once: true});
                   img.addEventListener('error', resolve, {once: true});
                   setTimeout(resolve, 10000);
               });
           }))"""
    )


class _IdCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if value is not None and (key == "id" or (key == "name" and tag == "a")):
                self.ids.add(value)


_ID_CACHE: dict[Path, set[str]] = {}


def _ids_in(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        parser = _IdCollector()
        parser.feed(path.read_text(encoding="utf8", errors="replace"))
        _ID_CACHE[path] = parser.ids
    return _ID_CACHE[path]


# --------------------------------------------------------------------------------------
# (a) the page loads: HTTP 200, no JavaScript errors, nothing of ours fails to load


@pytest.mark.browser
def test_page_loads_without_errors(page, page_log, book_url: str, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    page.wait_for_load_state("networkidle")
    assert not page_log.external_requests, (
        f"{name}: requests leaving the local server (the book must read offline): "
        f"{page_log.external_requests}")
    assert not page_log.page_errors, f"{name}: uncaught JavaScript errors: {page_log.page_errors}"
    assert not page_log.console_errors, f"{name}: console errors: {page_log.console_errors}"
    assert not page_log.bad_responses, f"{name}: failed loads: {page_log.bad_responses}"
    assert not page_log.failed_requests, f"{name}: failed requests: {page_log.failed_requests}"


# --------------------------------------------------------------------------------------
# (b) every image (figure, plot, logo) has loaded


@pytest.mark.browser
def test_images_load(page, book_url: str, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    _wait_for_images(page)
    images = page.evaluate(
        """() => Array.from(document.images).map(img => ({
               src: img.currentSrc || img.src, width: img.naturalWidth}))"""
    )
    # Images from other hosts (badges, say) cannot load with no network; ours must.
    broken = [
        img["src"][:120]
        for img in images
        if img["width"] == 0 and (img["src"].startswith(book_url) or img["src"].startswith("data:"))
    ]
    assert not broken, f"{name}: images that did not load: {broken}"


# a cell that draws: matplotlib, the library's plots, or an explorer
_DRAWS = re.compile(r"\bplt\.|\bplots\.|\bshow_(?:pairs|images|episode)\(|_explorer\(|\bfig\b")


@pytest.mark.browser
def test_a_notebook_that_draws_shows_its_figures(page, book_url: str, book_source: Path,
                                                 notebook_page: str):
    """A kernel left without matplotlib's inline backend (``MPLBACKEND=Agg`` in the build's
    environment) runs every cell without error and puts no figure on the page."""
    notebook = json.loads((book_source / notebook_page).with_suffix(".ipynb").read_text("utf-8"))
    drawing = [c for c in notebook["cells"]
               if c["cell_type"] == "code" and _DRAWS.search("".join(c["source"]))]
    if not drawing:
        pytest.skip(f"{notebook_page} draws no figure")
    _open(page, book_url, notebook_page)
    _wait_for_images(page)
    shown = page.evaluate(
        "() => Array.from(document.querySelectorAll('.cell_output img'))"
        ".filter(img => img.naturalWidth > 0).length")
    assert shown > 0, (f"{notebook_page}: {len(drawing)} cells draw figures, none is on the page "
                       "(was the kernel's MPLBACKEND set to a non-inline backend?)")


# --------------------------------------------------------------------------------------
# (c) a full-page screenshot, for people (and reviews) to look at


@pytest.mark.browser
def test_screenshot(page, book_url: str, screenshots: Path, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    _wait_for_images(page)
    target = screenshots / Path(name).with_suffix(".png")
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.is_file() and target.stat().st_size > 0


# --------------------------------------------------------------------------------------
# (d) launch links: Colab opens this very notebook from the repository in _config.yml


@pytest.mark.browser
def test_colab_launch_link(page, book_url: str, book_source: Path, repository, notebook_page):
    name = notebook_page
    owner, repo, branch = repository["owner"], repository["repo"], repository["branch"]
    colab = repository["colab_url"]
    assert colab, "_config.yml has no launch_buttons.colab_url"
    notebook = Path(name).with_suffix(".ipynb").as_posix()
    assert (book_source / notebook).is_file(), f"{notebook} is not in the repository"

    _open(page, book_url, name)
    links = page.eval_on_selector_all(
        f'a[href^="{colab}"]', "els => els.map(a => a.getAttribute('href'))"
    )
    assert links, f"{name}: no Colab launch link"
    expected = f"https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/{notebook}"
    assert expected.startswith(colab + "/")
    wrong = [link for link in links if link != expected]
    assert not wrong, f"{name}: Colab links {wrong} != {expected}"


# --------------------------------------------------------------------------------------
# (e) internal links resolve to built files, and their #anchors exist


@pytest.mark.browser
def test_internal_links_resolve(page, book_url: str, book_html: Path, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    hrefs = page.eval_on_selector_all(
        "a[href]", "els => els.map(a => [a.getAttribute('href'), a.href])"
    )
    here = book_html / name
    problems = []
    for raw, absolute in hrefs:
        if not absolute.startswith(book_url) or raw.strip() in ("", "#"):
            continue  # external, mailto:, javascript:, or a bare "#" button
        parts = urlsplit(absolute)
        rel = unquote(parts.path[len(urlsplit(book_url).path) :])
        target = book_html / rel
        if rel == "" or rel.endswith("/"):
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"{raw} -> missing file {target.relative_to(book_html)}")
            continue
        anchor = unquote(parts.fragment)
        if anchor and target.suffix == ".html":
            if anchor not in _ids_in(target):
                where = "this page" if target == here else target.relative_to(book_html)
                problems.append(f"{raw} -> no id {anchor!r} in {where}")
    assert not problems, f"{name}: broken internal links:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------
# (f) formulas are typeset, by the MathJax the book serves itself


@pytest.mark.browser
def test_formulas_are_typeset(page, page_log, book_url: str, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    if page.locator(".math").count() == 0:
        return  # a page without formulas has nothing to typeset
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15_000)
    page.evaluate("() => MathJax.startup.promise")
    raw = page.evaluate(
        """() => Array.from(document.querySelectorAll('.math'))
               .filter(el => !el.querySelector('mjx-container'))
               .map(el => el.textContent.trim().slice(0, 60))""")
    assert not raw, f"{name}: formulas left as raw TeX: {raw[:5]}"
    assert not page_log.external_requests, f"{name}: {page_log.external_requests}"


# --------------------------------------------------------------------------------------
# (g) static explorers: a slider with its value beside it, one frame per position, opening
# at the chapter's value


def _explorer_state(explorer) -> dict:
    return explorer.evaluate(
        """root => { const s = root.querySelector('input[type=range]');
                     const frames = root.explorerFrames || [];
                     return {min: +s.min, max: +s.max, value: +s.value,
                             readout: root.querySelector('output').textContent,
                             image: root.querySelector('img').getAttribute('src') || '',
                             positions: +root.dataset.positions, frames: frames.length,
                             distinct: new Set(frames).size,
                             empty: frames.filter(f => !f).length}; }""")


def _move(explorer, value: int) -> None:
    explorer.locator("input[type=range]").evaluate(
        """(el, v) => { el.value = String(v);
                        el.dispatchEvent(new Event('input', {bubbles: true})); }""", value)


def _expected_start(page, book_source: Path, name: str, readout: str) -> None:
    """Each chapter opens its explorer at its own value: chapter 2 at the parameter MARGIN,
    chapter 4 at the validation threshold its prose quotes just above the explorer."""
    if name.endswith("02_siamese_and_contrastive_loss.html"):
        source = (book_source / Path(name).with_suffix(".ipynb")).read_text(encoding="utf8")
        margin = float(re.search(r"MARGIN = ([0-9.]+)", source).group(1))
        assert readout == f"{margin:.2f}", f"{name}: opens at m = {readout}, not {margin}"
    elif name.endswith("04_embedding_distances.html"):
        # the explorer's own section (found from the explorer: the Chinese edition's
        # section ids are not the English ones)
        section = page.locator(EXPLORERS).first.locator("xpath=ancestor::section[1]")
        prose = section.locator("p").all_inner_texts()
        assert any(readout in p for p in prose), (
            f"{name}: opens at {readout}, a value the section's prose does not quote")


@pytest.mark.browser
def test_explorer_slider(
    page, book_url: str, book_html: Path, book_source: Path, skip_unless_required,
    explorer_page: str,
):
    name = explorer_page
    if not (book_html / name).is_file():
        skip_unless_required(f"{name} is not in the built book")
    _open(page, book_url, name)
    explorers = page.locator(EXPLORERS)
    if explorers.count() == 0:
        skip_unless_required(f"{name} has no static explorer (its explorer cell is missing)")
    assert page.locator("div.animation").count() == 0, f"{name}: an animation, not a slider"
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        explorer.scroll_into_view_if_needed()
        state = _explorer_state(explorer)
        positions = state["max"] - state["min"] + 1
        assert positions == state["positions"] == state["frames"], (
            f"{name}: {positions} slider positions but {state['frames']} frames drawn")
        assert 30 <= positions <= 60, f"{name}: {positions} positions (want 30 to 60)"
        # Two close thresholds may draw the same pixels; most positions must differ.
        assert state["empty"] == 0 and state["distinct"] > positions // 2, (
            f"{name}: only {state['distinct']} distinct frames for {positions} positions")
        assert state["image"].startswith("data:image/png;base64,"), f"{name}: no frame shown"
        _expected_start(page, book_source, name, state["readout"])
        _move(explorer, state["max"] if state["value"] != state["max"] else state["min"])
        moved = _explorer_state(explorer)
        assert moved["image"] != state["image"], f"{name}: explorer {i}: the frame did not change"
        assert moved["readout"] != state["readout"], f"{name}: explorer {i}: value not shown"
        width = explorer.locator("img").evaluate("img => img.getBoundingClientRect().width")
        column = explorer.evaluate("el => el.parentElement.getBoundingClientRect().width")
        assert width <= column + 1, f"{name}: frame {width:.0f}px wide in a {column:.0f}px column"


# --------------------------------------------------------------------------------------
# (h) the two editions: every page links to the same page in the other one, and the
# Chinese edition's search finds Chinese words


def _counterpart(name: str) -> str:
    prefix = f"{EDITION}/"
    return name[len(prefix):] if name.startswith(prefix) else prefix + name


@pytest.mark.browser
def test_edition_switch_opens_the_same_page(page, book_url: str, book_html: Path, toc_page: str):
    name = toc_page
    _open(page, book_url, name)
    links = page.locator("p.edition-switch a")
    other = _counterpart(name)
    if not (book_html / other).is_file():  # a page only one edition has (the glossary)
        assert links.count() <= 1
        return
    assert links.count() == 1, f"{name}: {links.count()} edition links, want 1"
    target = urlsplit(links.first.evaluate("a => a.href")).path
    assert target == urlsplit(book_url + other).path, f"{name}: links to {target}, not {other}"
    lang = "en" if name.startswith(f"{EDITION}/") else "zh-CN"
    assert links.first.get_attribute("hreflang") == lang


@pytest.mark.browser
def test_chinese_search_finds_chinese_words(page, book_url: str, book_html: Path):
    index = book_html / EDITION / "searchindex.js"
    if not index.is_file():
        pytest.fail(f"no {index}: build the Chinese edition (jupyter-book build {EDITION})")
    # Sphinx cut the pages' Chinese into words (with jieba): the index holds them
    terms = json.loads(index.read_text(encoding="utf8")[len("Search.setIndex("):-1])["terms"]
    chinese = [t for t in terms if any("\u4e00" <= ch <= "\u9fff" for ch in t)]
    assert len(chinese) > 500, f"only {len(chinese)} Chinese words in the search index"
    # ... and the search page finds a word of the book on several of its pages
    _open(page, book_url, f"{EDITION}/search.html?q=孪生")
    page.locator("#search-results p.search-summary").wait_for(timeout=30_000)
    found = page.eval_on_selector_all("#search-results li a", "els => els.map(a => a.href)")
    assert len({urlsplit(href).path for href in found}) >= 3, found
