"""The notebooks as committed: clean, and installing the library from the book's repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from siamese_lib.book import notebook_install_urls, repository_url, sync_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_cell_installs_from_the_configured_repository(path: Path):
    urls = notebook_install_urls(str(path))
    assert urls == [repository_url(str(ROOT / "_config.yml"))], (
        f"{path.name} installs from {urls}; run `python -m siamese_lib.book sync-url`"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameter_cell_near_the_top(path: Path):
    cells = json.loads(path.read_text())["cells"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0] <= 3, f"{path.name}: parameter cells at {tagged}"


def test_sync_url_rewrites_the_install_cell(tmp_path: Path):
    (tmp_path / "notebooks").mkdir()
    source = NOTEBOOKS[0].read_text()
    (tmp_path / "notebooks" / "a.ipynb").write_text(source)
    config = (ROOT / "_config.yml").read_text().replace(
        repository_url(str(ROOT / "_config.yml")), "https://github.com/someone/fork")
    (tmp_path / "_config.yml").write_text(config)
    changed = sync_url(str(tmp_path / "_config.yml"), str(tmp_path / "notebooks"))
    assert changed == [str(tmp_path / "notebooks" / "a.ipynb")]
    assert notebook_install_urls(changed[0]) == ["https://github.com/someone/fork"]
