"""Small helpers the notebooks share: glue numbers into the book, show library code.

``glue`` hands a computed value to myst-nb so the book's prose quotes the number the
build computed; outside a book build (Jupyter, Colab) it just shows the value.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Sequence
from typing import Any


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


def show_source(obj: Any) -> Any:
    """Display the source code of a library function or class, highlighted, in a notebook."""
    from IPython.display import Markdown

    return Markdown(f"```python\n{inspect.getsource(obj).rstrip()}\n```")


# ------------------------------------------------------------------ the repository URL
# _config.yml holds the repository URL; each notebook's Colab cell repeats it, because
# a notebook opened on Colab cannot read _config.yml. `sync-url` rewrites those cells.

_INSTALL_PREFIX = '%pip install -q "siamese_lib @ git+'


def repository_url(config: str = "_config.yml") -> str:
    """The repository URL from the book's ``_config.yml``."""
    import yaml

    with open(config) as f:
        return yaml.safe_load(f)["repository"]["url"].rstrip("/")


def notebook_install_urls(notebook: str) -> list[str]:
    """The repository URLs in a notebook's Colab install lines."""
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
    """Rewrite every notebook's Colab install line to the URL in ``_config.yml``.

    Returns the notebooks that changed.
    """
    import json
    from pathlib import Path

    url, changed = repository_url(config), []
    for path in sorted(Path(notebooks).glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            src = "".join(cell["source"]).splitlines(keepends=True)
            new = [
                line[: line.index(_INSTALL_PREFIX)] + f'{_INSTALL_PREFIX}{url}"\n'
                if line.strip().startswith(_INSTALL_PREFIX) else line
                for line in src
            ]
            if new != src:
                cell["source"] = new
        text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        if text != path.read_text():
            path.write_text(text)
            changed.append(str(path))
    return changed


if __name__ == "__main__":
    if sys.argv[1:] != ["sync-url"]:
        sys.exit("usage: python -m siamese_lib.book sync-url")
    print("\n".join(sync_url()) or "all notebooks already use the URL in _config.yml")
