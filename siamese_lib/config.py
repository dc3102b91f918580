"""Where data and caches live, which device to use, and how to seed a run.

One setting for each place, looked up in the same order everywhere:
an explicit argument, else an environment variable, else a default.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "SIAMESE_LIB_DATA"
CACHE_ENV = "SIAMESE_LIB_CACHE"


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder that holds the data sets.

    Args:
        root: an explicit folder; wins over everything else.

    Returns:
        ``root`` if given, else ``$SIAMESE_LIB_DATA``, else ``./data``.
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path("data")


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


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The device to compute on: the one asked for, else CUDA, else Apple MPS, else CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch, and return a CPU generator seeded the same way.

    Samplers take the returned generator so that the data order does not depend on
    how many random numbers the model's initialisation drew.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
