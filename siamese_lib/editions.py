"""The book's second edition (中文版): made from the English sources, so it cannot drift.

Not taught: the book's own bookkeeping; the set-up page says how translators use it.

A Chinese page is the English page with its prose translated:

- A notebook's code cells are copied from the English notebook by :func:`sync`, never
  edited by hand. jupyter-cache keys the executed outputs on the code, so the Chinese
  build reuses what the English build ran.
- Each translated piece of prose records a hash of the English text it was translated
  from: a notebook's Markdown cell in its metadata (``"translation": {"en": HASH}``), a
  Markdown page's section in a MyST comment line ``% en: HASH`` above it.
- :func:`status` lists every piece that is untranslated, or stale because the English
  changed since. ``tests/test_editions.py`` fails while any is.

Command line (from the repository's root)::

    python -m siamese_lib.editions status         # what to translate or re-translate
    python -m siamese_lib.editions sync           # regenerate code and structure
    python -m siamese_lib.editions extract PAGE   # the English prose of PAGE, to translate
    python -m siamese_lib.editions apply FILE     # write translations back, with hashes
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: The folder of the Chinese edition, beside the English sources.
EDITION_DIR = "zh"

UNTRANSLATED = "untranslated"
_MARKER = re.compile(r"^% en: (\S+)\s*$")
_HEADING = re.compile(r"^#{1,6} ")
_LABEL = re.compile(r"^\(.+\)=\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,}|:{3,})")
_SEPARATOR = re.compile(r"^@@@ (\S+) (\S+)\s*$")


def english_hash(text: str) -> str:
    """The hash a translation records of the English text it was made from."""
    return hashlib.sha256(text.strip().encode("utf8")).hexdigest()[:12]


@dataclass
class Piece:
    """One translatable piece of prose: a Markdown cell, or a section of a Markdown page.

    Attributes:
        page: the English page's path, relative to the root (``notebooks/01_....ipynb``).
        key: the cell id, or ``§N`` for the N-th section of a Markdown page.
        english: the English text now.
        translation: the translated text, or None if it was never translated.
        recorded: the hash of the English text the translation was made from.
    """

    page: str
    key: str
    english: str
    translation: str | None
    recorded: str | None

    @property
    def state(self) -> str:
        """``"ok"``, ``"stale"`` (the English changed since) or ``"untranslated"``."""
        if self.translation is None or self.recorded in (None, UNTRANSLATED):
            return "untranslated"
        return "ok" if self.recorded == english_hash(self.english) else "stale"


# ------------------------------------------------------------------------ pages


def english_pages(root: str | Path = ".") -> list[str]:
    """The English book's pages (paths relative to ``root``), in ``_toc.yml`` order."""
    import yaml

    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf8"))
    names = [toc["root"], *_toc_files(toc)]
    return [_with_suffix(root, name) for name in dict.fromkeys(names)]


def _toc_files(entry: dict) -> Iterator[str]:
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key) or []:
            if "file" in child:
                yield child["file"]
            yield from _toc_files(child)


def _with_suffix(root: Path, name: str) -> str:
    for suffix in (".ipynb", ".md"):
        if (root / f"{name}{suffix}").is_file():
            return f"{name}{suffix}"
    raise FileNotFoundError(f"_toc.yml names {name}, but neither {name}.ipynb nor {name}.md exists")


def edition_path(root: str | Path, page: str) -> Path:
    """Where the Chinese edition keeps its version of an English page."""
    return Path(root) / EDITION_DIR / page


# ------------------------------------------------------------------------ notebooks


def _cell_text(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def sync_notebook(english: dict, translated: dict | None) -> dict:
    """The Chinese notebook: the English one, with the translated Markdown cells kept.

    Code cells (source, metadata, id) and notebook metadata come from the English notebook,
    so both hash the same for jupyter-cache. A Markdown cell is matched by its id; one with
    no translation yet keeps the English text, marked untranslated.
    """
    kept = {c.get("id"): c for c in (translated or {}).get("cells", [])
            if c["cell_type"] == "markdown"}
    cells = []
    for cell in english["cells"]:
        if cell["cell_type"] != "markdown":
            cells.append(copy.deepcopy(cell))
        elif cell.get("id") in kept:
            cells.append(kept[cell["id"]])
        else:
            new = copy.deepcopy(cell)
            new["metadata"] = {**new.get("metadata", {}), "translation": {"en": UNTRANSLATED}}
            cells.append(new)
    return {**copy.deepcopy(english), "cells": cells}


def _notebook_pieces(page: str, english: dict, translated: dict) -> list[Piece]:
    ours = {c.get("id"): c for c in translated["cells"] if c["cell_type"] == "markdown"}
    pieces = []
    for cell in english["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        zh = ours.get(cell.get("id"))
        recorded = ((zh or {}).get("metadata", {}).get("translation") or {}).get("en")
        text = None if zh is None or recorded in (None, UNTRANSLATED) else _cell_text(zh)
        pieces.append(Piece(page, cell["id"], _cell_text(cell), text, recorded))
    return pieces


def _set_cell(translated: dict, key: str, text: str, english: str) -> None:
    for cell in translated["cells"]:
        if cell.get("id") == key and cell["cell_type"] == "markdown":
            cell["source"] = text.strip("\n").splitlines(keepends=True)
            cell["metadata"] = {**cell.get("metadata", {}),
                                "translation": {"en": english_hash(english)}}
            return
    raise KeyError(f"no Markdown cell {key!r} in the Chinese notebook")


def _dump_notebook(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------ Markdown pages


def _blocks(text: str) -> list[tuple[str, str]]:
    """A MyST page as ``("keep", text)`` blocks (front matter, code cells, copied as they
    are) and ``("prose", text)`` blocks (everything a reader reads)."""
    lines = text.splitlines(keepends=True)
    blocks: list[tuple[str, list[str]]] = []
    i = 0
    if lines and lines[0].strip() == "---":
        end = next(j for j in range(1, len(lines)) if lines[j].strip() == "---")
        blocks.append(("keep", lines[: end + 1]))
        i = end + 1
    while i < len(lines):
        if lines[i].startswith("```{code-cell}"):
            fence = _FENCE.match(lines[i]).group(1)
            end = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip() == fence)
            blocks.append(("keep", lines[i: end + 1]))
            i = end + 1
            continue
        if not blocks or blocks[-1][0] != "prose":
            blocks.append(("prose", []))
        blocks[-1][1].append(lines[i])
        i += 1
    return [(kind, "".join(body)) for kind, body in blocks]


def _split(prose: str, starts_section) -> list[list[str]]:
    """Prose cut into sections before each line where ``starts_section(lines, i)``, never
    inside a fenced block."""
    lines = prose.splitlines(keepends=True)
    sections: list[list[str]] = [[]]
    fence = None
    for i, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None and starts_section(lines, i) and any(s.strip() for s in sections[-1]):
            sections.append([])
        if match and fence is None:
            fence = match.group(1)
        elif match and line.rstrip() == fence:
            fence = None
        sections[-1].append(line)
    return sections


def _is_heading(lines: list[str], i: int) -> bool:
    """A heading starts a section, and so does a ``(label)=`` line right above one."""
    if _LABEL.match(lines[i]):
        return i + 1 < len(lines) and bool(_HEADING.match(lines[i + 1]))
    return bool(_HEADING.match(lines[i])) and not (i > 0 and _LABEL.match(lines[i - 1]))


def _english_sections(text: str) -> list[str]:
    """The English page's prose, section by section (blank-only runs are not sections)."""
    return ["".join(s) for kind, body in _blocks(text) if kind == "prose"
            for s in _split(body, _is_heading) if "".join(s).strip()]


def _translated_sections(text: str) -> list[tuple[str, str]]:
    """The Chinese page's ``(recorded hash, text)`` sections, in order."""
    sections = []
    for kind, body in _blocks(text):
        if kind != "prose":
            continue
        for s in _split(body, lambda lines, i: bool(_MARKER.match(lines[i]))):
            if s and _MARKER.match(s[0]):
                sections.append((_MARKER.match(s[0]).group(1), "".join(s[1:])))
    return sections


def sync_page(english: str, translated: str | None) -> str:
    """The Chinese Markdown page: the English code cells and front matter, with the
    translated sections kept (matched by position while the number of sections is the
    same, else by the English text they were made from)."""
    ours = _translated_sections(translated or "")
    by_hash = dict(ours)
    same_count = len(ours) == len(_english_sections(english))
    out, k = [], 0
    for kind, body in _blocks(english):
        if kind == "keep" or not body.strip():
            out.append(body)
            continue
        for section in _split(body, _is_heading):
            text = "".join(section)
            if not text.strip():
                out.append(text)
                continue
            if same_count:
                recorded, zh = ours[k]
            elif english_hash(text) in by_hash:
                recorded, zh = english_hash(text), by_hash[english_hash(text)]
            else:
                recorded, zh = UNTRANSLATED, text
            out.append(f"% en: {recorded}\n{zh.strip(chr(10))}\n\n")
            k += 1
    return "".join(out)


def _page_pieces(page: str, english: str, translated: str) -> list[Piece]:
    ours = _translated_sections(translated)
    pieces = []
    for k, text in enumerate(_english_sections(english)):
        recorded, zh = ours[k] if k < len(ours) else (None, None)
        pieces.append(Piece(page, f"§{k}", text, None if recorded == UNTRANSLATED else zh,
                            recorded))
    return pieces


def _set_section(translated: str, key: str, text: str, english: str) -> str:
    k = int(key.lstrip("§"))
    count = -1
    lines = translated.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if _MARKER.match(line):
            count += 1
            if count == k:
                end = next((j for j in range(i + 1, len(lines))
                            if _MARKER.match(lines[j]) or lines[j].startswith("```{code-cell}")),
                           len(lines))
                lines[i:end] = [f"% en: {english_hash(english)}\n", text.strip("\n") + "\n\n"]
                return "".join(lines)
    raise KeyError(f"no section {key} in the Chinese page")


# ------------------------------------------------------------------------ the edition


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf8") if path.is_file() else None


def synced(root: str | Path, page: str) -> str:
    """The text :func:`sync` writes for ``page``'s Chinese version."""
    root = Path(root)
    english = (root / page).read_text(encoding="utf8")
    translated = _read(edition_path(root, page))
    if page.endswith(".ipynb"):
        return _dump_notebook(sync_notebook(json.loads(english),
                                            json.loads(translated) if translated else None))
    return sync_page(english, translated)


def sync(root: str | Path = ".") -> list[str]:
    """Regenerate every Chinese page from its English one; return the pages that changed."""
    changed = []
    for page in english_pages(root):
        path, text = edition_path(root, page), synced(root, page)
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf8")
            changed.append(page)
    return changed


def pieces(root: str | Path = ".", page: str | None = None) -> list[Piece]:
    """Every translatable piece of the edition (or of one page), with its state."""
    root = Path(root)
    out = []
    for name in [page] if page else english_pages(root):
        english = (root / name).read_text(encoding="utf8")
        translated = synced(root, name)
        if name.endswith(".ipynb"):
            out += _notebook_pieces(name, json.loads(english), json.loads(translated))
        else:
            out += _page_pieces(name, english, translated)
    return out


def status(root: str | Path = ".") -> list[str]:
    """One line per piece that is untranslated or stale; empty when the edition is current."""
    return [f"{p.page} {p.key}: {p.state}" for p in pieces(root) if p.state != "ok"]


def extract(root: str | Path, page: str, everything: bool = False) -> str:
    """The English prose of ``page`` that needs translating (all of it if ``everything``),
    in the format :func:`apply` reads: an ``@@@ PAGE KEY`` line above each piece."""
    return "".join(f"@@@ {p.page} {p.key}\n{p.english.strip(chr(10))}\n\n"
                   for p in pieces(root, page) if everything or p.state != "ok")


def apply(root: str | Path, text: str) -> list[str]:
    """Write translations (in :func:`extract`'s format) into the Chinese pages, each with
    the hash of the English text it translates. Returns the pages written."""
    root = Path(root)
    by_page: dict[str, list[tuple[str, str]]] = {}
    page = key = None
    for line in text.splitlines(keepends=True):
        match = _SEPARATOR.match(line)
        if match:
            page, key = match.groups()
            by_page.setdefault(page, []).append((key, ""))
        elif page is None:
            if line.strip():
                raise ValueError(f"text before the first '@@@ PAGE KEY' line: {line.strip()!r}")
        else:
            k, body = by_page[page][-1]
            by_page[page][-1] = (k, body + line)
    for page, translations in by_page.items():
        english = {p.key: p.english for p in pieces(root, page)}
        doc = synced(root, page)
        nb = json.loads(doc) if page.endswith(".ipynb") else None
        for key, body in translations:
            if key not in english:
                raise KeyError(f"{page} has no piece {key}")
            if nb is not None:
                _set_cell(nb, key, body, english[key])
            else:
                doc = _set_section(doc, key, body, english[key])
        edition_path(root, page).write_text(_dump_notebook(nb) if nb else doc, encoding="utf8")
    return list(by_page)


def main(argv: list[str]) -> int:
    """``status`` | ``sync`` | ``extract PAGE [--all]`` | ``apply FILE`` (see the module)."""
    command, *args = argv or ["status"]
    if command == "status":
        lines = status()
        print("\n".join(lines) or "the Chinese edition is up to date with the English")
        return 1 if lines else 0
    if command == "sync":
        print("\n".join(sync()) or "every Chinese page already matches its English one")
        return 0
    if command == "extract" and args:
        print(extract(".", args[0], everything="--all" in args), end="")
        return 0
    if command == "apply" and len(args) == 1:
        print("\n".join(apply(".", Path(args[0]).read_text(encoding="utf8"))))
        return 0
    print(__doc__.split("Command line")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
