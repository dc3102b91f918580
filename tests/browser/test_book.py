"""Headless-browser checks of the built book, page by page.

Every HTML page listed in ``_toc.yml`` is opened in Chromium (see conftest.py) and
checked: it loads without errors, its images load, a screenshot is taken, its launch
links point at the right notebook, its internal links and anchors resolve, and its
static explorers (matplotlib ``to_jshtml`` animations) respond to their slider.

Run after building the book::

    jupyter-book build . -W -n --keep-going
    pytest -m browser                      # skips if the book or Chromium is missing
    REQUIRE_BOOK=1 pytest -m browser       # ... or fails instead (CI)
"""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytestmark = pytest.mark.browser

# toc_page / notebook_page / animation_page are parametrised by conftest.py from
# _toc.yml (and, for animation_page, the explorer pages plus any built page with an
# animation).
ANIMATION_SLIDERS = "div.animation input[type=range]"


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
    # Console errors located at external hosts (CDN scripts that cannot load offline)
    # were dropped by the fixture; what is left comes from our own origin.
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
# (f) static explorers: moving a to_jshtml animation's slider changes the frame


@pytest.mark.browser
def test_animation_slider_changes_frame(
    page, book_url: str, book_html: Path, skip_unless_required, animation_page: str
):
    name = animation_page
    if not (book_html / name).is_file():
        skip_unless_required(f"{name} is not in the built book")
    _open(page, book_url, name)
    sliders = page.locator(ANIMATION_SLIDERS)
    count = sliders.count()
    if count == 0:
        skip_unless_required(f"{name} has no to_jshtml animation (its explorer is missing)")
    for i in range(count):
        slider = sliders.nth(i)
        slider.scroll_into_view_if_needed()
        image = slider.locator("xpath=ancestor::div[contains(@class,'animation')][1]//img")
        assert image.count() >= 1, f"{name}: animation {i} has no <img> frame"
        # The animation object is created in a setTimeout(0) after load: wait for it
        # to show its first frame.
        page.wait_for_function("img => !!img.getAttribute('src')", arg=image.first.element_handle())
        before = image.first.get_attribute("src")
        lo, hi, value = (
            int(float(slider.get_attribute(a) or d))
            for a, d in (("min", "0"), ("max", "0"), ("value", "0"))
        )
        assert hi > lo, f"{name}: animation {i} has a single frame"
        new = hi if value != hi else lo
        slider.evaluate(
            """(el, v) => { el.value = String(v);
                            el.dispatchEvent(new Event('input', {bubbles: true}));
                            el.dispatchEvent(new Event('change', {bubbles: true})); }""",
            new,
        )
        page.wait_for_function(
            "([img, old]) => img.getAttribute('src') !== old",
            arg=[image.first.element_handle(), before],
            timeout=5_000,
        )
        after = image.first.get_attribute("src")
        assert after and after != before, f"{name}: animation {i} frame did not change"
