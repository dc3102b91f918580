"""The book build's own Sphinx extension (named in ``_config.yml``, ``local_extensions``).

It makes the build mean what the README's command says, wherever its kernels run:

- A relative ``SIAMESE_LIB_DATA`` (``../shared/data``) is made absolute against the folder
  the build was started from, before any notebook runs: the kernels run in ``notebooks/``
  and ``book/``, where the same relative path names another folder.
- ``SIAMESE_LIB_WIDGETS=static``: each explorer draws its precomputed slider, which works
  in a static page (in a running notebook the same call shows a live one).
- The kernels draw their figures into the pages whatever ``MPLBACKEND`` the caller set:
  ipykernel chooses matplotlib's inline backend only when the variable is unset, so a
  ``MPLBACKEND=Agg`` (CI exports it for its own tests) would leave every figure out.
- MathJax comes from the ``django-static-mathjax`` package and is served from the built
  book's ``_static/mathjax/`` (``mathjax_path`` in ``_config.yml``), so formulas render
  offline and no page fetches a CDN.
- Pages that are not notebooks (the results page is a MyST text notebook with no install
  cell) get no launch buttons.
- ``SIAMESE_LIB_BUDGET`` (``book``, the default, or ``long``) picks the models every page
  trains (:func:`siamese_lib.recipes.training_budget`). Every page's footer says which
  budget built it, and a long build keeps its executed notebooks in a cache of its own,
  since the notebooks' code, which jupyter-cache keys on, is the same for both.
- Two editions: the English book (the repository's root) and the Chinese one (``zh/``,
  whose ``_config.yml`` sets ``siamese_english_root: ".."``). Every page links to the same
  page in the other edition. The Chinese build reads the English build's executed
  notebooks (its code cells are the English ones, see :mod:`siamese_lib.editions`) and is
  copied into the English site as ``zh/``, so one site holds both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from siamese_lib.config import anchor_environment
from siamese_lib.editions import EDITION_DIR
from siamese_lib.recipes import BUDGET_ENV, LONG_SCALE, training_budget
from siamese_lib.widgets import WIDGETS_ENV

# MathJax's es5 tree, less the combined bundles the book does not load (a third of its size).
_UNUSED_MATHJAX = ("tex-svg*.js", "tex-chtml*.js", "mml-*.js", "tex-mml-svg.js", "node-main.js")


def mathjax_source() -> Path:
    """The folder of MathJax's ``es5`` build inside the installed ``mathjax`` package."""
    import mathjax  # django-static-mathjax's package; it needs no Django to be imported

    folder = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (folder / "tex-mml-chtml.js").is_file():
        raise FileNotFoundError(f"MathJax's tex-mml-chtml.js is not in {folder}; "
                                "pip install -r requirements.txt installs django-static-mathjax")
    return folder


def copy_mathjax(app, exception) -> None:
    """Copy MathJax into ``_static/mathjax`` of the HTML output, where ``mathjax_path`` points."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    shutil.copytree(mathjax_source(), target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*_UNUSED_MATHJAX))


def drop_launch_buttons_off_notebooks(app, pagename, templatename, context, doctree) -> None:
    """Remove the launch buttons from pages that have no ``.ipynb`` of their own."""
    if Path(app.srcdir, pagename).with_suffix(".ipynb").is_file():
        return
    buttons = context.get("header_buttons") or []
    context["header_buttons"] = [b for b in buttons if b.get("label") != "launch-buttons"]


def budget_footer(budget: str, chinese: bool = False) -> str:
    """The footer line that says which training budget built the book."""
    if chinese:
        how = ("本书的短训练预算（在 2 核 CPU 上只需几分钟；"
               f"设 <code>{BUDGET_ENV}=long</code> 则用基准测试的模型构建）" if budget == "book" else
               f"长训练预算（<code>{BUDGET_ENV}=long</code>：步数为本书的 {LONG_SCALE:g} 倍，"
               "每个 Omniglot 模型约 8 个 CPU 分钟）")
        return f'<p class="siamese-budget">本版本的模型是用{how}训练的。</p>'
    if budget == "book":
        how = (f"the book's short training budget, a few minutes on a 2-core CPU "
               f"(<code>{BUDGET_ENV}=long</code> builds it with the benchmark's models)")
    else:
        how = (f"the long training budget (<code>{BUDGET_ENV}=long</code>: {LONG_SCALE:g} "
               "times the book's steps, about 8 CPU-minutes per Omniglot model)")
    return f'<p class="siamese-budget">This build trained its models with {how}.</p>'


def english_build(app) -> Path:
    """The English book's ``_build`` folder (this build's own, for the English edition)."""
    root = app.config.siamese_english_root
    return Path(app.srcdir, root, "_build").resolve() if root else Path(app.outdir).parent


def mark_the_budget(app, config) -> None:
    """Put the budget in every page's footer; give a long build its own execution cache,
    and the Chinese edition the English one's."""
    budget = training_budget()
    config.html_theme_options = {
        **(config.html_theme_options or {}),
        "extra_footer": budget_footer(budget, chinese=bool(config.siamese_english_root)),
    }
    if budget != "book" or config.siamese_english_root:
        suffix = "" if budget == "book" else f"-{budget}"
        config.nb_execution_cache_path = str(english_build(app) / f".jupyter_cache{suffix}")


def share_the_english_static(app, config) -> None:
    """The Chinese edition serves the English book's ``_static`` (its layout CSS) too."""
    if not config.siamese_english_root:
        return
    static = Path(app.srcdir, config.siamese_english_root, "_static").resolve()
    config.html_static_path = [*config.html_static_path, str(static)]
    for css in sorted(static.rglob("*.css")):
        app.add_css_file(css.relative_to(static).as_posix())


def _has_page(folder: Path, pagename: str) -> bool:
    return any(Path(folder, pagename + s).is_file() for s in (".ipynb", ".md"))


def add_edition_switch(app, pagename, templatename, context, doctree) -> None:
    """Open the page with a link to the same page in the other edition."""
    if "body" not in context:
        return
    up = "../" * pagename.count("/")
    english_root = app.config.siamese_english_root
    if english_root:
        english = Path(app.srcdir, english_root)
        target = f"../{pagename}.html" if _has_page(english, pagename) else "../index.html"
        link = f'<a href="{up}{target}" hreflang="en" lang="en">English</a>'
    elif _has_page(Path(app.srcdir, EDITION_DIR), pagename):
        link = (f'<a href="{up}{EDITION_DIR}/{pagename}.html" hreflang="zh-CN" '
                'lang="zh-CN">中文版</a>')
    else:
        return
    context["body"] = f'<p class="edition-switch">{link}</p>\n' + context["body"]


def publish_into_english_site(app, exception) -> None:
    """Copy the Chinese edition's pages into the English site's ``zh/`` folder."""
    if exception is not None or app.builder.format != "html" or not app.config.siamese_english_root:
        return
    target = english_build(app) / "html" / EDITION_DIR
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(app.outdir, target)


def draw_figures_inline() -> None:
    """Leave the kernels' matplotlib backend to ipykernel, which draws into the page."""
    backend = os.environ.get("MPLBACKEND", "")
    if backend and "inline" not in backend:
        del os.environ["MPLBACKEND"]


def setup(app) -> dict:
    anchor_environment()
    draw_figures_inline()
    training_budget()  # a misspelt SIAMESE_LIB_BUDGET stops the build before any notebook
    os.environ[WIDGETS_ENV] = "static"
    mathjax_source()  # fail at the start of the build, not after every notebook ran
    # "": the English edition; "..": the Chinese one (zh/_config.yml), the English one up.
    app.add_config_value("siamese_english_root", "", "env")
    app.connect("config-inited", mark_the_budget)
    app.connect("config-inited", share_the_english_static)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", publish_into_english_site, priority=900)
    app.connect("html-page-context", add_edition_switch)
    # After sphinx-book-theme adds the buttons (priority 501), before the page is written.
    app.connect("html-page-context", drop_launch_buttons_off_notebooks, priority=502)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
