"""siamese_lib.book: the Markdown tables the book's pages display."""

from __future__ import annotations

import pytest

from siamese_lib.book import markdown_table


def test_markdown_table_by_hand() -> None:
    table = markdown_table(["name", "value"], [["a", 1], ["b|c", 2.5]])
    assert table.data.splitlines() == [
        "| name | value |",
        "| --- | --- |",
        "| a | 1 |",
        "| b\\|c | 2.5 |",  # a pipe inside a cell must not split it
    ]


def test_markdown_table_row_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="row 1 has 3 cells but the header has 2"):
        markdown_table(["a", "b"], [[1, 2], [1, 2, 3]])


def test_every_published_figure_names_a_citable_source() -> None:
    import re
    from pathlib import Path

    from siamese_lib.published import MEASURES

    bib = Path(__file__).parents[1] / "book" / "references.bib"
    keys = set(re.findall(r"@\w+\{([^,]+),", bib.read_text()))
    sources = {p.source for m in MEASURES for p in m.published}
    assert sources, "MEASURES quotes no published figure"
    unknown = {s for s in sources if s not in keys and not s.startswith("https://")}
    assert not unknown, f"not in book/references.bib and not a URL: {unknown}"


def test_api_page_documents_every_module() -> None:
    import pkgutil
    from pathlib import Path

    import siamese_lib

    api = (Path(__file__).parents[1] / "book" / "api.md").read_text()
    modules = {m.name for m in pkgutil.iter_modules(siamese_lib.__path__)} - {"__main__"}
    missing = sorted(m for m in modules if f".. automodule:: siamese_lib.{m}\n" not in api)
    assert not missing, f"book/api.md has no section for: {missing}"
