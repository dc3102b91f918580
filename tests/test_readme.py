"""CI runs the README's set-up commands as written: they must be there, whole and runnable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readme_setup():
    spec = importlib.util.spec_from_file_location("readme_setup", ROOT / ".ci" / "readme_setup.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_has_one_build_and_one_test_command():
    commands = readme_setup().setup_commands((ROOT / "README.md").read_text(encoding="utf8"))
    assert "jupyter-book build ." in commands["build"]
    # the Chinese edition after the English one, whose executed notebooks it reuses
    build = commands["build"]
    assert "jupyter-book build zh" in build
    assert build.index("jupyter-book build .") < build.index("jupyter-book build zh")
    assert commands["tests"].rstrip().endswith("pytest")
    for command in commands.values():
        assert "pip install -r requirements.txt" in command and "pip install -e ." in command


def test_a_readme_without_the_commands_is_refused():
    module = readme_setup()
    with pytest.raises(ValueError, match="no '## Set-up on a fresh machine' section"):
        module.setup_commands("# A README\n")
    with pytest.raises(ValueError, match="needs a build and a test command"):
        module.setup_commands("## Set-up on a fresh machine\n\n```bash\npytest\n```\n")
    with pytest.raises(ValueError, match="one line"):
        module.setup_commands("## Set-up on a fresh machine\n\n```bash\npip install .\npytest\n```\n")
