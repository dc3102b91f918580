"""Fixtures for the browser tests: the built book, a local web server, headless Chromium.

The book is served from ``$BOOK_HTML`` (default ``<repo>/_build/html``) by a
``ThreadingHTTPServer`` on 127.0.0.1 and a free port, in a background thread, and
driven by Playwright with the system's Chromium (``$CHROMIUM``, default
``/usr/bin/chromium``; Playwright's own browser downloads are not used).

If the built book, Playwright or Chromium is missing, every browser test is skipped
with the reason -- unless ``REQUIRE_BOOK=1``, when they fail instead (CI sets it
after building the book).

Where the book's *sources* live (``_toc.yml``, ``_config.yml``, ``notebooks/``) is
``$BOOK_SOURCE`` if set, else the folder that holds ``$BOOK_HTML``'s ``_build`` when
it has a ``_config.yml``, else the repository root. So
``BOOK_HTML=/tmp/copy/_build/html pytest tests/browser`` checks a book built from a
copy of the repository against that copy's sources.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CHROMIUM = "/usr/bin/chromium"

# Pages whose static explorer (a precomputed slider drawn by siamese_lib.widgets) must be
# there; the slider test runs on these and on any other built page that has one.
EXPLORER_PAGES = (
    "notebooks/02_siamese_and_contrastive_loss.html",  # margin explorer
    "notebooks/04_embedding_distances.html",  # threshold explorer
)
EXPLORER_CLASS = "siamese-explorer"


def require_book() -> bool:
    """Whether a missing book or browser is a failure (``REQUIRE_BOOK=1``) or a skip."""
    return os.environ.get("REQUIRE_BOOK", "").strip() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``, or fail it when ``REQUIRE_BOOK=1``."""
    if require_book():
        pytest.fail(f"{reason} (REQUIRE_BOOK=1)", pytrace=False)
    pytest.skip(reason)


def html_dir() -> Path:
    """The built HTML book: ``$BOOK_HTML`` or ``<repo>/_build/html``."""
    env = os.environ.get("BOOK_HTML")
    return Path(env).expanduser().resolve() if env else REPO / "_build" / "html"


def source_dir() -> Path:
    """The book's sources (``_toc.yml``, ``_config.yml``, notebooks)."""
    env = os.environ.get("BOOK_SOURCE")
    if env:
        return Path(env).expanduser().resolve()
    built = html_dir()
    if built.parent.name == "_build" and (built.parent.parent / "_config.yml").is_file():
        return built.parent.parent
    return REPO


def screenshot_dir() -> Path:
    """Where full-page screenshots go: ``$BOOK_SCREENSHOTS`` or ``_build/screenshots``."""
    env = os.environ.get("BOOK_SCREENSHOTS")
    return Path(env).expanduser().resolve() if env else html_dir().parent / "screenshots"


def _load_yaml(path: Path) -> dict:
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf8")) or {}


def _strip_suffix(name: str) -> str:
    return re.sub(r"\.(md|ipynb|rst|py)$", "", str(name))


def toc_docnames(toc: dict) -> list[str]:
    """Every document named in a jb-book/jb-article ``_toc.yml``, in order."""
    names: list[str] = []

    def add(entry) -> None:
        if not isinstance(entry, dict):
            return
        if "file" in entry:
            names.append(_strip_suffix(entry["file"]))
        for key in ("parts", "chapters", "sections"):
            for child in entry.get(key) or []:
                add(child)

    if "root" in toc:
        names.append(_strip_suffix(toc["root"]))
    for key in ("parts", "chapters", "sections"):
        for child in toc.get(key) or []:
            add(child)
    return list(dict.fromkeys(names))


#: The Chinese edition's folder, in the sources and in the built site.
EDITION = "zh"


def book_pages() -> list[str]:
    """The HTML pages of every document in ``_toc.yml``: ``notebooks/01_....html``, then
    those of the Chinese edition's ``zh/_toc.yml``: ``zh/notebooks/01_....html``."""
    english = [f"{doc}.html" for doc in toc_docnames(_load_yaml(source_dir() / "_toc.yml"))]
    chinese = toc_docnames(_load_yaml(source_dir() / EDITION / "_toc.yml"))
    return english + [f"{EDITION}/{doc}.html" for doc in chinese]


def notebook_pages() -> list[str]:
    """The pages made from notebooks (which get launch buttons)."""
    src = source_dir()
    return [
        page
        for page in book_pages()
        if (src / page).with_suffix(".ipynb").is_file()
    ]


def explorer_pages() -> list[str]:
    """The explorer pages, and every built page holding a static explorer."""
    built = html_dir()
    found = set(EXPLORER_PAGES)
    for page in book_pages():
        path = built / page
        if path.is_file() and f'class="{EXPLORER_CLASS}"' in path.read_text(encoding="utf8"):
            found.add(page)
    return sorted(found)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``toc_page``, ``notebook_page`` and ``explorer_page`` arguments."""
    for argname, pages in (
        ("toc_page", book_pages),
        ("notebook_page", notebook_pages),
        ("explorer_page", explorer_pages),
    ):
        if argname in metafunc.fixturenames:
            metafunc.parametrize(argname, pages())


def _repository_parts() -> dict:
    """owner, repo, branch and colab_url from ``_config.yml``: the one place they live."""
    config = _load_yaml(source_dir() / "_config.yml")
    repository = config.get("repository") or {}
    url = repository.get("url", "")
    match = re.match(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?$", url)
    if not match:
        pytest.fail(f"_config.yml repository.url is not a GitHub URL: {url!r}")
    return {
        "owner": match.group(1),
        "repo": match.group(2),
        "branch": repository.get("branch") or "main",
        "colab_url": ((config.get("launch_buttons") or {}).get("colab_url") or "").rstrip("/"),
    }


@pytest.fixture(scope="session")
def repository() -> dict:
    """``{"owner", "repo", "branch", "colab_url"}`` from the book's ``_config.yml``."""
    return _repository_parts()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    return screenshot_dir()


@pytest.fixture(scope="session")
def skip_unless_required():
    """The ``skip_or_fail`` function, for tests: skip, or fail under ``REQUIRE_BOOK=1``."""
    return skip_or_fail


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built book's folder; skips (or fails) if it has not been built."""
    root = html_dir()
    if not (root / "index.html").is_file():
        skip_or_fail(f"no built book at {root} (run `jupyter-book build .` first)")
    return root


@pytest.fixture(scope="session")
def book_source() -> Path:
    return source_dir()


@pytest.fixture(scope="session")
def book_url(book_html: Path) -> Iterator[str]:
    """Base URL (ending in '/') of the book served on 127.0.0.1 and a free port."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's), launched once for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("playwright is not installed (pip install playwright)")
    executable = os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)
    if not (Path(executable).is_file() or shutil.which(executable)):
        skip_or_fail(f"no Chromium at {executable} (apt-get install chromium, or set CHROMIUM)")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(
                executable_path=executable, headless=True, args=["--no-sandbox"]
            )
        except Exception as exc:  # noqa: BLE001 - any launch failure means "no browser"
            skip_or_fail(f"Chromium at {executable} did not start: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class PageLog:
    """What went wrong while a page was open, as seen by the browser."""

    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    bad_responses: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def page(browser, book_url: str, page_log: PageLog):
    """A fresh browser page with every request outside the local server aborted.

    The book must read offline (behind a firewall, as a downloaded copy): every asset a
    page needs, MathJax included, is served by the book itself. So a request for any other
    host is aborted at once and recorded in ``page_log.external_requests``, and every
    console error and uncaught exception is recorded, wherever it comes from.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def abort_external(route):
        page_log.external_requests.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(book_url), abort_external)
    pg = context.new_page()
    pg.set_default_timeout(30_000)

    def on_console(msg):
        if msg.type == "error":
            where = (msg.location or {}).get("url", "") or "?"
            page_log.console_errors.append(f"{msg.text} [at {where}]")

    def on_pageerror(exc):
        page_log.page_errors.append(f"{exc}\n{getattr(exc, 'stack', '') or ''}".strip())

    def on_requestfailed(request):
        if request.url.startswith(book_url):
            page_log.failed_requests.append(f"{request.url}: {request.failure}")

    def on_response(response):
        if response.url.startswith(book_url) and response.status >= 400:
            page_log.bad_responses.append(f"{response.status} {response.url}")

    pg.on("console", on_console)
    pg.on("pageerror", on_pageerror)
    pg.on("requestfailed", on_requestfailed)
    pg.on("response", on_response)
    try:
        yield pg
    finally:
        context.close()
