"""Small helpers the notebooks share: glue numbers into the book, show library code.

Not taught: the plumbing of every chapter (each page's numbers come through ``glue``, and
its code listings through ``show_source``).

``glue`` hands a computed value to myst-nb so the book's prose quotes the number the
build computed; outside a book build (Jupyter, Colab) it just shows the value.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

#: Where ``python -m benchmarks ... --save`` keeps the tables a page shows but cannot afford
#: to compute while the book builds, relative to the repository's root.
BENCHMARK_RESULTS = Path("benchmarks") / "results"


def on_colab() -> bool:
    """Whether this code runs in Google Colab."""
    return "google.colab" in sys.modules


def glue(name: str, value: Any, display: bool = False) -> None:
    """Make ``value`` available to the book's prose as ``{glue:text}`name```.

    Uses myst-nb's ``glue`` when it is installed (the book build); elsewhere does nothing.
    Returns None, so a ``glue(...)`` on a cell's last line does not echo the value.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=display)


def markdown_table(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Any:
    """A table as Markdown: it renders in Jupyter, on Colab and, as MyST, in the book.

    Cells are converted with ``str``; a ``|`` inside a cell is escaped.

    Raises:
        ValueError: a row has more or fewer cells than the header.
    """
    from IPython.display import Markdown

    header = [str(h) for h in header]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for i, row in enumerate(rows):
        cells = [str(c).replace("|", "\\|") for c in row]
        if len(cells) != len(header):
            raise ValueError(f"row {i} has {len(cells)} cells but the header has {len(header)}: "
                             f"{cells}")
        lines.append("| " + " | ".join(cells) + " |")
    return Markdown("\n".join(lines))


def benchmark_record(name: str, start: str | Path | None = None) -> dict[str, Any] | None:
    """The table a benchmark saved as ``benchmarks/results/<name>.json``, or None.

    Looks in ``start`` (default: the working folder) and each folder above it, so a
    notebook finds the repository's file from ``notebooks/`` and ``zh/notebooks/``. None
    where there is no repository around (an installed package, Colab): the page then says
    which command measures it.

    Raises:
        ValueError: the file is there but is not JSON (the message names it).
    """
    here = Path.cwd() if start is None else Path(start)
    for folder in (here.resolve(), *here.resolve().parents):
        path = folder / BENCHMARK_RESULTS / f"{name}.json"
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} is not a benchmark record ({err}): run the benchmark "
                                 "again with --save to rewrite it") from err
    return None


def show_source(obj: Any, full: bool = False) -> Any:
    """Display the source code of a library function or class, highlighted, in a notebook.

    The page's prose explains what the code does, so the listing leaves out what would
    only repeat it or guard it: docstrings, and the checks of the input (a statement that
    only raises, or a call of a ``_check...`` helper). A last comment line says so and
    names the file with the whole source. ``full=True`` shows everything.
    """
    from IPython.display import Markdown

    source = inspect.getsource(obj).rstrip()
    if not full:
        kept = source_without_checks(source)
        if kept != source:
            where = inspect.getsourcefile(obj)
            module = obj.__module__.replace(".", "/") + ".py" if where else "the library"
            source = f"{kept}\n# (docstrings and input checks left out: see {module})"
    return Markdown(f"```python\n{source}\n```")


def source_without_checks(source: str) -> str:
    """``source`` less its docstrings and the statements that only check the input."""
    import ast
    import textwrap

    source = textwrap.dedent(source)
    drop: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or not body:
            continue
        for i, statement in enumerate(body):
            if (i == 0 and _is_docstring(statement)) or _only_checks(statement):
                drop.update(range(statement.lineno - 1, statement.end_lineno))
    lines = source.splitlines()
    kept = [line for i, line in enumerate(lines) if i not in drop]
    # no blank line left where a docstring was, right under the def or class line
    return "\n".join(line for i, line in enumerate(kept)
                     if line.strip() or (i and kept[i - 1].strip()
                                         and not kept[i - 1].rstrip().endswith(":")))


def _is_docstring(statement: Any) -> bool:
    import ast

    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _only_checks(statement: Any) -> bool:
    """``if ...: raise ...`` with no else, or a bare call of a ``_check...`` function."""
    import ast

    if isinstance(statement, ast.If) and not statement.orelse:
        return all(isinstance(s, ast.Raise) for s in statement.body)
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        name = getattr(func, "id", getattr(func, "attr", ""))
        return name.startswith("_check")
    return False


# ------------------------------------------------------------------ the repository URL
# _config.yml holds the repository URL and the branch the launch buttons open; each
# notebook's Colab cell repeats both, because a notebook opened on Colab cannot read
# _config.yml. `sync-url` rewrites those cells.

_INSTALL_PREFIX = '%pip install -q "siamese_lib @ git+'
# a branch or tag name that is safe inside the quoted pip requirement
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def _repository(config: str) -> dict[str, Any]:
    import yaml

    with open(config) as f:
        return yaml.safe_load(f)["repository"]


def repository_url(config: str = "_config.yml") -> str:
    """The repository URL from the book's ``_config.yml``."""
    return _repository(config)["url"].rstrip("/")


def repository_ref(config: str = "_config.yml") -> str:
    """The branch or tag the book's launch buttons open: ``repository.branch`` of
    ``_config.yml`` ("main", jupyter-book's default, when it is not set).

    Raises:
        ValueError: the branch is not a plain branch or tag name.
    """
    ref = str(_repository(config).get("branch", "main"))
    if not _REF.fullmatch(ref):
        raise ValueError(f"repository.branch in {config} must be a git branch or tag name "
                         f"(letters, digits and '._/-'), got {ref!r}")
    return ref


def install_source(config: str = "_config.yml") -> str:
    """What a notebook's Colab cell installs: ``URL@REF``, the repository at the branch or
    tag the launch button opens.

    A book built from a tag (``branch: v1.0``) then installs exactly that tag's library,
    not the newest one on the default branch.
    """
    return f"{repository_url(config)}@{repository_ref(config)}"


def notebook_install_urls(notebook: str) -> list[str]:
    """What a notebook's Colab install lines install: one ``URL@REF`` (as written) per line."""
    import json

    with open(notebook) as f:
        cells = json.load(f)["cells"]
    return [
        line.strip()[len(_INSTALL_PREFIX):].split('"')[0]
        for cell in cells if cell["cell_type"] == "code"
        for line in "".join(cell["source"]).splitlines()
        if line.strip().startswith(_INSTALL_PREFIX)
    ]


def sync_url(config: str = "_config.yml", notebooks: str = "notebooks") -> list[str]:
    """Rewrite every notebook's Colab install line to :func:`install_source`: the URL and
    the branch (or tag) in ``_config.yml``.

    Returns the notebooks that changed.
    """
    import json
    from pathlib import Path

    source, changed = install_source(config), []
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            src = "".join(cell["source"]).splitlines(keepends=True)
            new = [_install_line(line, source, path) if line.strip().startswith(_INSTALL_PREFIX)
                   else line for line in src]
            if new != src:
                cell["source"] = new
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if text != path.read_text():
            path.write_text(text)
            changed.append(str(path))
    return changed


def _install_line(line: str, source: str, notebook: object) -> str:
    """The install line with ``source`` in place of what it installed; its indentation and
    line end kept (the last line of a cell has none, as Jupyter saves it)."""
    head, rest = line.split(_INSTALL_PREFIX, 1)
    if '"' not in rest:
        raise ValueError(f"{notebook}: the install line has no closing quote: {line.strip()}")
    return head + _INSTALL_PREFIX + source + rest[rest.index('"'):]


if __name__ == "__main__":
    if sys.argv[1:] != ["sync-url"]:
        sys.exit("usage: python -m siamese_lib.book sync-url")
    print("\n".join(sync_url())
          or "all notebooks already install the repository and branch in _config.yml")
