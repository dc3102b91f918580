"""Layout checks of the built book at a laptop's width: everything fits the text column and
every figure is drawn large enough to read.

A code block, output, table or figure wider than the text column is clipped or hides
behind a scroll bar; a figure drawn much wider than it is shown has its text shrunk with
it. Matplotlib draws 10-pt text at 100 dpi about 14 px tall, so a figure shown at less
than :data:`MIN_FIGURE_SCALE` of its drawn width has text below about 9 px, too small
to read.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

VIEWPORT_WIDTH = 1280  # the page fixture's viewport (conftest.py)
MIN_FIGURE_SCALE = 0.65
SLACK_PX = 2  # sub-pixel rounding


def _open(page, book_url: str, name: str) -> None:
    response = page.goto(book_url + name, wait_until="load")
    assert response is not None and response.status == 200, f"{name}: no page"


_OVERFLOWS = """(slack) => {
  const column = document.querySelector('.bd-article');
  if (!column) return {column: null, wide: []};
  const width = column.clientWidth;
  const wide = [];
  const describe = (el) => {
    const text = (el.innerText || el.getAttribute('alt') || el.getAttribute('src') || '');
    return text.trim().split('\\n')[0].slice(0, 70);
  };
  for (const el of column.querySelectorAll('pre, table, img, .cell_output .output')) {
    if (el.closest('.siamese-explorer') && el.tagName !== 'IMG') continue;
    const shown = el.getBoundingClientRect().width;
    const content = el.scrollWidth;
    if (shown > width + slack || content > el.clientWidth + slack) {
      wide.push(`${el.tagName.toLowerCase()} ${Math.round(Math.max(shown, content))} px: ` +
                describe(el));
    }
  }
  return {column: width, wide: wide};
}"""


def test_nothing_is_wider_than_the_text_column(page, book_url: str, toc_page: str):
    _open(page, book_url, toc_page)
    found = page.evaluate(_OVERFLOWS, SLACK_PX)
    assert found["column"], f"{toc_page}: no .bd-article text column"
    assert not found["wide"], (
        f"{toc_page}: wider than the {found['column']} px text column (or scrolling inside "
        f"it) at a {VIEWPORT_WIDTH} px window:\n  " + "\n  ".join(found["wide"])
    )


_SHRUNK_FIGURES = """(minScale) => {
  const shrunk = [];
  for (const img of document.querySelectorAll('.bd-article img')) {
    if (!img.naturalWidth || !img.src.startsWith('data:') && !img.src.includes('_images/'))
      continue;
    const scale = img.getBoundingClientRect().width / img.naturalWidth;
    if (scale < minScale)
      shrunk.push(`${img.naturalWidth} px drawn, ${Math.round(img.getBoundingClientRect().width)}` +
                  ` px shown (x${scale.toFixed(2)}): ${(img.getAttribute('alt') || img.src).slice(-60)}`);
  }
  return shrunk;
}"""


def test_figures_are_shown_near_the_size_they_were_drawn(page, book_url: str, toc_page: str):
    _open(page, book_url, toc_page)
    page.evaluate("() => document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    page.wait_for_load_state("networkidle")
    shrunk = page.evaluate(_SHRUNK_FIGURES, MIN_FIGURE_SCALE)
    assert not shrunk, (
        f"{toc_page}: figures shrunk below x{MIN_FIGURE_SCALE} of their drawn width, so their "
        "text is too small to read; draw them narrower (figsize) or split them:\n  "
        + "\n  ".join(shrunk)
    )
