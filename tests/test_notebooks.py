"""The notebooks as committed: clean, installing the library from the book's repository at
the branch its launch buttons open, and with parameter cells that a GPU run enlarges."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import siamese_lib
from siamese_lib.book import install_source, notebook_install_urls, sync_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CONFIG = str(ROOT / "_config.yml")
# notebooks whose parameter cell rightly holds nothing a GPU run should enlarge
FIXED_SIZE = {
    "06_faces.ipynb": "its pairs come from the photos of a few subjects and already repeat: "
                      "drawing more of the same pairs would only narrow the interval falsely",
    "appendix_engineering.ipynb": "it checks that a saved model gives the same distances; more "
                                  "pairs would check nothing more",
}


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    cells = json.loads(path.read_text())["cells"]
    dirty = [i for i, c in enumerate(cells)
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_colab_cell_installs_from_the_configured_repository_and_branch(path: Path):
    urls = notebook_install_urls(str(path))
    assert urls == [install_source(CONFIG)], (
        f"{path.name} installs from {urls}, the launch button opens {install_source(CONFIG)}; "
        "run `python -m siamese_lib.book sync-url`"
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
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["repository"].update(url="https://github.com/someone/fork", branch="v1.0")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    changed = sync_url(str(tmp_path / "_config.yml"), str(tmp_path / "notebooks"))
    assert changed == [str(tmp_path / "notebooks" / "a.ipynb")]
    assert notebook_install_urls(changed[0]) == ["https://github.com/someone/fork@v1.0"]
    # only the install line changed, its line end (none, on a cell's last line) kept
    old, new = (json.loads(text)["cells"] for text in (source, Path(changed[0]).read_text()))
    differ = [(a["source"], b["source"]) for a, b in zip(old, new, strict=True) if a != b]
    assert len(differ) == 1 and len(differ[0][0]) == len(differ[0][1])
    lines = [(a, b) for a, b in zip(*differ[0], strict=True) if a != b]
    assert len(lines) == 1 and lines[0][1].endswith('@v1.0"') and not lines[0][0].endswith("\n")
    assert sync_url(str(tmp_path / "_config.yml"), str(tmp_path / "notebooks")) == []


def parameters(path: Path, device: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The settings of a notebook's parameter cell, run alone as on a machine whose
    :func:`~siamese_lib.config.pick_device` finds ``device`` (no GPU is needed for that)."""
    cells = json.loads(path.read_text())["cells"]
    (cell,) = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    found = torch.device(device)
    monkeypatch.setattr(siamese_lib, "pick_device", lambda device=None: found)
    namespace: dict[str, Any] = {}
    exec(compile("".join(cell["source"]), f"{path.name}, parameter cell", "exec"), namespace)
    return {k: v for k, v in namespace.items() if k.isupper()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_gpu_run_enlarges_the_counts(path: Path, monkeypatch: pytest.MonkeyPatch):
    cpu, gpu = (parameters(path, device, monkeypatch) for device in ("cpu", "cuda"))
    assert cpu["ON_GPU"] is False and gpu["ON_GPU"] is True, path.name
    assert cpu.keys() == gpu.keys()
    enlarged = sorted(k for k in cpu if k not in ("DEVICE", "ON_GPU") and cpu[k] != gpu[k])
    if path.name in FIXED_SIZE:
        assert not enlarged, f"{path.name} now enlarges {enlarged}: drop it from FIXED_SIZE"
        return
    assert enlarged, f"{path.name}: ON_GPU changes none of {sorted(cpu)}"
    for k in enlarged:
        assert type(cpu[k]) is int and type(gpu[k]) is int, (path.name, k, cpu[k], gpu[k])
        assert 0 < cpu[k] < gpu[k], f"{path.name}: {k} is {cpu[k]} on a CPU, {gpu[k]} on a GPU"


def _is_glue_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", None) == "glue")


_BUILTINS = {"len", "float", "int", "round", "sum", "str", "max", "min", "sorted", "list", "abs"}


def _computes_nothing_new(node: ast.AST) -> bool:
    """An expression that calls nothing but builtins: it reshapes results, computes none."""
    return all(getattr(call.func, "id", None) in _BUILTINS
               for call in ast.walk(node) if isinstance(call, ast.Call))


def _plumbing(statements: list[ast.stmt]) -> bool:
    """Statements that only hand values to the prose: glue calls, assignments that call
    nothing but builtins, and loops or branches of them (what a reader need not see)."""
    for node in statements:
        if isinstance(node, (ast.For, ast.If)):
            if not _plumbing(node.body + node.orelse):
                return False
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            if not _computes_nothing_new(node.value):
                return False
        elif not _is_glue_call(node):
            return False
    return True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_that_only_glue_numbers_are_hidden(path: Path):
    """A cell that only hands numbers to the prose is plumbing: its code stays off the page."""
    shown = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or {"hide-input", "remove-input", "remove-cell"} & set(tags):
            continue
        source = "".join(cell["source"])
        if "glue(" not in source or source.lstrip().startswith(("%", "!")):
            continue
        tree = ast.parse(source.rstrip().removesuffix(";"))
        if any(_is_glue_call(n) for n in ast.walk(tree)) and _plumbing(tree.body):
            shown.append(i)
    assert not shown, f"{path.name}: cells {shown} only glue numbers; tag them remove-input"
