"""siamese_lib.book: the Markdown tables the book's pages display."""

from __future__ import annotations

from pathlib import Path

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


def test_measure_verdicts() -> None:
    from siamese_lib.published import Measure

    lake = Measure("k", "d", "r", "lake-runs", 95.5, floor=92.0)
    assert lake.verdict(95.5) == "yes"
    assert lake.verdict(93.0) == "no (above the 92% floor)"
    assert lake.verdict(91.9) == "no (below the 92% floor)"
    assert lake.target_text() == "≥ 95.5% (never below 92%)"
    plain = Measure("k", "d", "r", "vinyals-5way", 99.0)
    assert plain.verdict(98.9) == "no" and plain.target_text() == "≥ 99%"
    open_ended = Measure("k", "d", "r", "omniglot-20way", None)
    assert open_ended.verdict(30.0, pixels=22.0) == "yes"
    assert open_ended.verdict(20.0, pixels=22.0) == "no"
    assert open_ended.target_text() == "above pixels"
    with pytest.raises(ValueError, match="pixel"):
        open_ended.verdict(30.0)


def _config(tmp_path, repository: str) -> str:
    path = tmp_path / "_config.yml"
    path.write_text(f"title: t\nrepository:\n{repository}")
    return str(path)


def test_install_source_pins_the_launch_buttons_branch(tmp_path) -> None:
    from siamese_lib.book import install_source, repository_ref

    tag = _config(tmp_path, "  url: https://github.com/someone/fork/\n  branch: v1.0\n")
    assert repository_ref(tag) == "v1.0"
    assert install_source(tag) == "https://github.com/someone/fork@v1.0"
    # jupyter-book's launch buttons open "main" when no branch is set
    assert repository_ref(_config(tmp_path, "  url: https://x.org/a/b\n")) == "main"


@pytest.mark.parametrize("branch", ['"a b"', '"v1\\""', '"-x"', '""'])
def test_a_branch_that_cannot_be_installed_is_refused(tmp_path, branch: str) -> None:
    from siamese_lib.book import repository_ref

    config = _config(tmp_path, f"  url: https://x.org/a/b\n  branch: {branch}\n")
    with pytest.raises(ValueError, match="repository.branch .* must be a git branch or tag"):
        repository_ref(config)


def test_notebook_install_urls_reads_url_and_ref(tmp_path) -> None:
    import json

    from siamese_lib.book import install_source, notebook_install_urls

    def notebook(line: str) -> str:
        path = tmp_path / "n.ipynb"
        cells = [{"cell_type": "code", "source": ["if on_colab:\n", line]}]
        path.write_text(json.dumps({"cells": cells}))
        return str(path)

    tag = _config(tmp_path, "  url: https://github.com/someone/fork\n  branch: v1.0\n")
    prefix = '    %pip install -q "siamese_lib @ git+https://github.com/someone/fork'
    assert notebook_install_urls(notebook(prefix + '@v1.0"')) == [install_source(tag)]
    # another ref, or none (the default branch's newest commit), is not what the book opens
    assert notebook_install_urls(notebook(prefix + '@main"')) != [install_source(tag)]
    assert notebook_install_urls(notebook(prefix + '"')) != [install_source(tag)]


_CHECKED = '''
def scaled(x, factor):
    """Scale x.

    A docstring the page's prose would repeat.
    """
    if factor <= 0:
        raise ValueError("factor must be positive")
    _check_finite(x)
    y = x * factor
    if y.sum() > 0:
        y = -y
    return y
'''


def test_listings_leave_out_docstrings_and_input_checks() -> None:
    from siamese_lib.book import source_without_checks

    assert source_without_checks(_CHECKED).splitlines() == [
        "def scaled(x, factor):",
        "    y = x * factor",
        "    if y.sum() > 0:",
        "        y = -y",
        "    return y",
    ]


def test_show_source_says_what_it_left_out() -> None:
    pytest.importorskip("IPython")
    from siamese_lib import ContrastiveLoss
    from siamese_lib.book import show_source

    short, full = show_source(ContrastiveLoss).data, show_source(ContrastiveLoss, full=True).data
    assert '"""' in full and '"""' not in short
    assert short.rstrip("`\n").endswith("left out: see siamese_lib/losses.py)")
    assert len(short.splitlines()) < len(full.splitlines())


def test_benchmark_record_is_found_from_a_folder_below_the_repository(tmp_path) -> None:
    from siamese_lib.book import benchmark_record

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    (results / "levers-long.json").write_text('{"rows": [{"lever": "none"}]}')
    below = tmp_path / "zh" / "notebooks"
    below.mkdir(parents=True)
    assert benchmark_record("levers-long", start=below) == {"rows": [{"lever": "none"}]}
    assert benchmark_record("other", start=below) is None
    (results / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not a benchmark record"):
        benchmark_record("broken", start=below)


def test_the_repository_has_the_levers_record_chapter_8_shows() -> None:
    from siamese_lib.book import benchmark_record

    record = benchmark_record("levers-long", start=Path(__file__).parent)
    assert record is not None, "run python -m benchmarks.levers --save benchmarks/results/levers-long.json"
    levers = {row["lever"] for row in record["rows"]}
    assert {"none", "56 px images, stride-2 stem", "batches of 16 classes per alphabet",
            "ensemble of 3 shorter models, same total steps"} <= levers
    for row in record["rows"]:
        assert 0 < row["tests"]["lake-runs"]["mean"] <= 1 and row["tests"]["lake-runs"]["n"] == 400
    assert record["machine"] and record["command"].startswith("python -m benchmarks.levers")
