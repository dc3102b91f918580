"""Importing siamese_lib needs neither Jupyter nor a display."""

from __future__ import annotations

import functools
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import siamese_lib

ROOT = Path(__file__).resolve().parents[1]
LIBRARY_MODULES = sorted(
    p.stem for p in (ROOT / "siamese_lib").glob("*.py") if not p.stem.startswith("__")
)

HEAVY = ("matplotlib", "ipywidgets", "IPython", "jupyter", "ipykernel", "notebook")


def test_import_loads_no_notebook_or_plotting_modules() -> None:
    code = (
        "import json, sys\n"
        "import siamese_lib\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "siamese_lib" in modules and "torch" in modules  # the check itself works
    loaded = [m for m in modules if m.split(".")[0].startswith(HEAVY)]
    assert loaded == []


def test_public_names_exist() -> None:
    missing = [name for name in siamese_lib.__all__ if not hasattr(siamese_lib, name)]
    assert missing == []


@functools.cache
def _chapter_titles() -> dict[int, str]:
    """Chapter number -> title, read from each chapter notebook's first heading."""
    titles = {}
    for path in sorted(ROOT.glob("notebooks/0*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        heading = "".join(cells[0]["source"]).splitlines()[0]
        number, title = re.fullmatch(r"# (\d+)\. (.+)", heading).groups()
        titles[int(number)] = title
    return titles


@pytest.mark.parametrize("module", LIBRARY_MODULES)
def test_module_docstring_opens_with_the_chapter_that_teaches_it(module: str) -> None:
    doc = importlib.import_module(f"siamese_lib.{module}").__doc__ or ""
    paragraphs = doc.strip().split("\n\n")
    assert len(paragraphs) >= 2, f"{module}: a one-line summary, then where it is taught"
    where = paragraphs[1]
    assert where.startswith(("Taught in", "Taught on", "Not taught:")), (module, where)
    titles = _chapter_titles()
    for number, title in re.findall(r'chapter (\d+), "([^"]+)"', where.replace("\n", " ")):
        assert titles.get(int(number)) == title, f"{module} names chapter {number} {title!r}"
