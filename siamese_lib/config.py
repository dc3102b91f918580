"""Where data and caches live, and how to seed a run.

Taught on the set-up page (the data folder and the model cache); every chapter's
parameter cell seeds its run with :func:`seed_everything`.

One setting for each place, looked up in the same order everywhere:
an explicit argument, else an environment variable, else a default.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from . import precision as _precision

#: :func:`siamese_lib.precision.pick_device`, under the name it had here before.
pick_device = _precision.pick_device

DATA_ENV = "SIAMESE_LIB_DATA"
CACHE_ENV = "SIAMESE_LIB_CACHE"


DEFAULT_DATA = Path("~/siamese_lib_data")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the data sets, as an absolute path.

    One folder for every notebook and script, wherever it runs (the book's kernels run in
    ``book/`` and ``notebooks/``), like scikit-learn's ``~/scikit_learn_data``.

    Args:
        root: an explicit folder; wins over everything else.

    Returns:
        ``root`` if given, else ``$SIAMESE_LIB_DATA``, else ``~/siamese_lib_data``. A
        relative path is taken relative to the current folder; :func:`anchor_environment`
        fixes its meaning for the processes a program starts.
    """
    if root is not None:
        return Path(root).expanduser().absolute()
    env = os.environ.get(DATA_ENV)
    return (Path(env) if env else DEFAULT_DATA).expanduser().absolute()


def relative_root_note() -> str:
    """A sentence for error messages when ``$SIAMESE_LIB_DATA`` is a relative path, else "".

    A relative path means a different folder in each working folder (a kernel in
    ``notebooks/`` is not where the variable was typed), so a missing-data error says so.
    """
    env = os.environ.get(DATA_ENV, "")
    if not _is_relative(env):
        return ""
    return (f" {DATA_ENV}={env} is a relative path, read from the current folder "
            f"{Path.cwd()}; set it to an absolute path")


def anchor_environment(base: str | os.PathLike | None = None) -> dict[str, str]:
    """Make relative ``$SIAMESE_LIB_DATA`` and ``$SIAMESE_LIB_CACHE`` absolute, in place.

    Every process started afterwards (the book build's kernels, which run in
    ``notebooks/`` and ``book/``; test subprocesses) inherits the folder the user meant
    where they typed the command, not one relative to its own working folder.

    Args:
        base: the folder relative paths are taken from; default the current folder.

    Returns:
        The variables that were changed, with their new values.
    """
    base_path = Path(base).expanduser().absolute() if base is not None else Path.cwd()
    changed = {}
    for name in (DATA_ENV, CACHE_ENV):
        value = os.environ.get(name, "")
        if _is_relative(value):
            changed[name] = os.environ[name] = str(base_path / value)
    return changed


def _is_relative(path: str) -> bool:
    """Whether a path from an environment variable is set and relative (``~`` is not)."""
    return bool(path) and not Path(path).expanduser().is_absolute()


def cache_dir(*parts: str) -> Path:
    """A writable folder for caches (resized data sets, trained recipe models).

    ``$SIAMESE_LIB_CACHE`` if set, else ``~/.cache/siamese_lib``. The folder (and
    the sub-folder named by ``parts``) is created if it does not exist.
    """
    env = os.environ.get(CACHE_ENV)
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "siamese_lib"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and return a CPU generator seeded the same way.

    Samplers take the returned generator so that the data order does not depend on
    how many random numbers the model's initialisation drew.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
