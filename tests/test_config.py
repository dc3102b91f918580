"""One data folder for every notebook and script, wherever it runs.

The book's kernels run in ``book/`` and ``notebooks/``; the README's commands give
``SIAMESE_LIB_DATA=../shared/data`` relative to the repository's root.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from siamese_lib import config, data

ROOT = Path(__file__).resolve().parents[1]


def root_seen_from(folder: Path, env: dict[str, str]) -> str:
    """``data_root()`` as a process started in ``folder`` sees it."""
    code = "from siamese_lib.config import data_root; print(data_root())"
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True,
                            capture_output=True, text=True, timeout=120)
    return result.stdout.strip()


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (config.DATA_ENV, config.CACHE_ENV)}
    return env | values


@pytest.mark.parametrize("value", ["../shared/data", "data"])
def test_anchored_relative_root_is_the_same_from_book_and_notebooks(monkeypatch, value):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(config.DATA_ENV, value)
    changed = config.anchor_environment()
    assert changed == {config.DATA_ENV: str(ROOT / value)}
    env = clean_env(**{config.DATA_ENV: os.environ[config.DATA_ENV]})
    seen = {root_seen_from(ROOT / sub, env) for sub in ("book", "notebooks", ".")}
    assert seen == {str(ROOT / value)}


def test_default_root_is_one_folder_whatever_the_working_folder():
    env = clean_env(HOME=str(Path.home()))
    seen = {root_seen_from(ROOT / sub, env) for sub in ("book", "notebooks")}
    assert seen == {str(Path.home() / "siamese_lib_data")}


def test_anchor_leaves_absolute_paths_and_anchors_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(config.CACHE_ENV, "cache")
    assert config.anchor_environment(base=tmp_path) == {config.CACHE_ENV: str(tmp_path / "cache")}
    assert os.environ[config.DATA_ENV] == str(tmp_path / "data")
    assert config.cache_dir() == tmp_path / "cache"


def test_a_missing_relative_root_says_it_was_relative_and_where_it_was_read(
        monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.DATA_ENV, "../nowhere")
    with pytest.raises(FileNotFoundError) as info:
        data.load_lake_runs()
    message = str(info.value)
    assert "SIAMESE_LIB_DATA=../nowhere is a relative path" in message
    assert str(tmp_path) in message and "absolute path" in message
    monkeypatch.setenv(config.DATA_ENV, str(tmp_path / "nowhere"))
    assert config.relative_root_note() == ""


def _book_extension():
    spec = importlib.util.spec_from_file_location("siamese_book",
                                                  ROOT / "book" / "_ext" / "siamese_book.py")
    extension = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extension)
    return extension


class App:
    """A stand-in for Sphinx's application: records the events connected."""

    def __init__(self):
        self.events = []
        self.config_values = {}

    def connect(self, event, handler, priority=500):
        self.events.append(event)

    def add_config_value(self, name, default, rebuild):
        self.config_values[name] = default


def test_the_book_build_anchors_the_data_root_and_draws_static_sliders(monkeypatch):
    extension = _book_extension()

    monkeypatch.chdir(ROOT)
    monkeypatch.setenv(config.DATA_ENV, "../shared/data")
    monkeypatch.delenv("SIAMESE_LIB_WIDGETS", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as CI exports it
    app = App()
    extension.setup(app)
    assert os.environ[config.DATA_ENV] == str(ROOT / "../shared/data")
    assert "MPLBACKEND" not in os.environ  # ipykernel then draws the figures into the page
    assert os.environ["SIAMESE_LIB_WIDGETS"] == "static"
    assert set(app.events) == {"config-inited", "build-finished", "html-page-context"}
    assert app.config_values == {"siamese_english_root": ""}  # the English edition by default
    assert (extension.mathjax_source() / "tex-mml-chtml.js").is_file()


@pytest.mark.parametrize("budget", ["book", "long"])
def test_every_page_says_which_budget_built_it(monkeypatch, tmp_path, budget):
    from types import SimpleNamespace

    extension = _book_extension()
    monkeypatch.setenv("SIAMESE_LIB_BUDGET", budget)
    conf = SimpleNamespace(html_theme_options={"repository_url": "kept"},
                           nb_execution_cache_path="", siamese_english_root="")
    app = SimpleNamespace(outdir=str(tmp_path / "_build" / "html"), srcdir=str(tmp_path),
                          config=conf)
    extension.mark_the_budget(app, conf)
    footer = conf.html_theme_options["extra_footer"]
    assert conf.html_theme_options["repository_url"] == "kept"
    assert ("short training budget" in footer) == (budget == "book")
    assert ("long training budget" in footer) == (budget == "long")
    # the notebooks' code is the same for both budgets: a long build must not reuse the
    # short build's executed notebooks
    expected = "" if budget == "book" else str(tmp_path / "_build" / ".jupyter_cache-long")
    assert conf.nb_execution_cache_path == expected


@pytest.mark.parametrize("budget", ["book", "long"])
def test_the_chinese_edition_reuses_the_english_executed_notebooks(monkeypatch, tmp_path, budget):
    from types import SimpleNamespace

    extension = _book_extension()
    monkeypatch.setenv("SIAMESE_LIB_BUDGET", budget)
    conf = SimpleNamespace(html_theme_options={}, nb_execution_cache_path="",
                           siamese_english_root="..")
    app = SimpleNamespace(outdir=str(tmp_path / "zh" / "_build" / "html"),
                          srcdir=str(tmp_path / "zh"), config=conf)
    extension.mark_the_budget(app, conf)
    suffix = "" if budget == "book" else "-long"
    assert conf.nb_execution_cache_path == str(tmp_path / "_build" / f".jupyter_cache{suffix}")
    assert "训练预算" in conf.html_theme_options["extra_footer"]


def test_a_misspelt_budget_stops_the_book_build(monkeypatch):
    extension = _book_extension()
    monkeypatch.setenv("SIAMESE_LIB_BUDGET", "lng")
    with pytest.raises(ValueError, match="SIAMESE_LIB_BUDGET='lng'"):
        extension.setup(App())
