"""Importing siamese_lib needs neither Jupyter nor a display."""

from __future__ import annotations

import json
import subprocess
import sys

import siamese_lib

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
