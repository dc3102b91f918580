"""The Chinese edition (zh/) is made from the English sources and cannot drift from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from siamese_lib import editions

REPO = Path(__file__).resolve().parents[1]
PAGES = editions.english_pages(REPO)
NOTEBOOKS = [p for p in PAGES if p.endswith(".ipynb")]


def _code_cells(path: Path) -> list[dict]:
    nb = json.loads(path.read_text(encoding="utf8"))
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_code_cells_are_the_english_ones(page):
    english, chinese = _code_cells(REPO / page), _code_cells(editions.edition_path(REPO, page))
    assert chinese == english, (f"zh/{page}'s code differs from {page}: run "
                                "`python -m siamese_lib.editions sync`")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_is_what_sync_writes(page):
    path = editions.edition_path(REPO, page)
    assert path.is_file(), f"zh/{page} is missing: run `python -m siamese_lib.editions sync`"
    assert path.read_text(encoding="utf8") == editions.synced(REPO, page), (
        f"zh/{page} has code or structure the English page lacks: run "
        "`python -m siamese_lib.editions sync` (it keeps the translations)")


def test_the_translation_is_current():
    behind = editions.status(REPO)
    assert not behind, ("translate these (python -m siamese_lib.editions extract PAGE):\n"
                        + "\n".join(behind))


def _copy(tmp_path: Path) -> Path:
    for name in ("_toc.yml", "book", "notebooks", "zh"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path


def _translate(root: Path, page: str) -> None:
    """Translate every piece of ``page`` (as "译文") through extract's format and apply."""
    editions.apply(root, "".join(f"@@@ {p.page} {p.key}\n译文\n\n"
                                 for p in editions.pieces(root, page)))


def _first_markdown(nb: dict) -> dict:
    return next(c for c in nb["cells"] if c["cell_type"] == "markdown")


def test_a_changed_english_cell_shows_as_stale(tmp_path):
    root = _copy(tmp_path)
    page = NOTEBOOKS[0]
    _translate(root, page)
    nb = json.loads((root / page).read_text(encoding="utf8"))
    cell = _first_markdown(nb)
    cell["source"] = ["A new first sentence. ", *cell["source"]]
    (root / page).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf8")
    stale = [line for line in editions.status(root) if line.endswith(": stale")]
    assert stale == [f"{page} {cell['id']}: stale"]


def test_a_changed_english_section_shows_as_stale(tmp_path):
    root = _copy(tmp_path)
    page = next(p for p in PAGES if p.endswith(".md"))
    _translate(root, page)
    text = (root / page).read_text(encoding="utf8")
    (root / page).write_text(text.replace("\n\n", "\n\nA new sentence.\n\n", 1), encoding="utf8")
    assert [line for line in editions.status(root) if line.endswith(": stale")] == [
        f"{page} §0: stale"]


def test_a_changed_code_cell_is_copied_and_keeps_the_translation(tmp_path):
    root = _copy(tmp_path)
    page = NOTEBOOKS[0]
    nb = json.loads((root / page).read_text(encoding="utf8"))
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["source"] = [*code["source"], "\n# one more line"]
    (root / page).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf8")
    before = editions.status(root)
    assert editions.sync(root) == [page]
    assert _code_cells(root / page) == _code_cells(editions.edition_path(root, page))
    assert editions.status(root) == before


def test_extract_and_apply_record_the_english_they_translate(tmp_path):
    root = _copy(tmp_path)
    for page in (NOTEBOOKS[0], "book/intro.md"):
        text = editions.extract(root, page, everything=True)
        assert text.startswith(f"@@@ {page} ")
        assert text.count("@@@") == len(editions.pieces(root, page))
        _translate(root, page)
        pieces = editions.pieces(root, page)
        assert {p.state for p in pieces} == {"ok"}
        assert {p.translation.strip() for p in pieces} == {"译文"}
        assert editions.synced(root, page) == editions.edition_path(root, page).read_text("utf8")


def test_apply_refuses_a_piece_the_page_does_not_have(tmp_path):
    root = _copy(tmp_path)
    with pytest.raises(KeyError, match="no piece"):
        editions.apply(root, f"@@@ {NOTEBOOKS[0]} no-such-cell\n译文\n")


def _config(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf8"))


def test_the_chinese_config_differs_only_where_an_edition_must():
    english, chinese = _config(REPO / "_config.yml"), _config(REPO / "zh" / "_config.yml")
    assert chinese.pop("title") != english.pop("title")
    assert chinese.pop("bibtex_bibfiles") == [f"../{f}" for f in english.pop("bibtex_bibfiles")]
    assert chinese["repository"].pop("path_to_book") == "zh"
    english["repository"].pop("path_to_book")
    extensions = chinese["sphinx"].pop("local_extensions")
    assert extensions == {k: f"../{v}" for k, v in english["sphinx"].pop("local_extensions").items()}
    config = chinese["sphinx"]["config"]
    assert (config.pop("language"), config.pop("html_search_language"),
            config.pop("siamese_english_root")) == ("zh_CN", "zh", "..")
    english["exclude_patterns"].remove("zh")
    assert chinese == english


def test_the_chinese_toc_has_every_english_page_in_order():
    chinese = [f"{p}" for p in editions.english_pages(REPO / "zh")]
    assert [p for p in chinese if p != "book/glossary.md"] == PAGES
    assert "book/glossary.md" in chinese
