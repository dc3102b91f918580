"""Checkpoints that are never half-written and never run code when loaded.

A checkpoint is a plain dict of tensors, numbers, strings and lists:
``{"format": 1, "config": <net config>, "state_dict": ..., "extra": {...}}``.
It is written to a temporary file in the same folder and renamed into place, so a
crash leaves the old file intact, and it is read with ``weights_only=True``, so a
file carrying pickled code is refused instead of executed.
"""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_write
from .nets import SiameseNetwork, build_net

FORMAT = 1


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temp file beside ``path``, then rename it into place."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def safe_load(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` with errors that say what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path} holds objects other than tensors and plain data (possibly code), and "
            "was refused by torch.load(weights_only=True). Only load checkpoints you trust, "
            f"re-saved with siamese_lib.save_checkpoint. Detail: {str(e).splitlines()[0]}"
        ) from e
    except PermissionError:
        raise
    except Exception as e:  # a damaged file fails in many ways: RuntimeError, OSError, EOFError...
        raise ValueError(
            f"{path} is not a readable checkpoint (truncated or corrupt): {e}. Delete it and "
            "save or train again."
        ) from e


#: The types a checkpoint's ``extra`` may hold, inside dicts, lists and tuples: what
#: ``torch.load(weights_only=True)`` reads back. Exact types: a NumPy float64 is a float
#: subclass that it refuses.
_PLAIN = (str, int, float, bool, type(None), torch.Tensor, nn.Parameter)
_CONTAINERS = (dict, OrderedDict, list, tuple)


def _check_plain(value: Any, where: str) -> None:
    """Raise a ValueError naming the first entry of ``value`` that is not plain data."""
    kind = type(value)
    if kind in _PLAIN:
        return
    if kind not in _CONTAINERS:
        raise ValueError(
            f"{where} is a {kind.__module__}.{kind.__qualname__}, which a checkpoint cannot "
            "hold: it would not load with weights_only=True. Save plain data only (dict, "
            "list, tuple, str, int, float, bool, None, tensors), e.g. History.to_dict(), "
            "str(path), float(x)."
        )
    if kind in (list, tuple):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    for key, item in value.items():
        _check_plain(key, f"a key of {where}")
        _check_plain(item, f"{where}[{key!r}]")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Save a model's weights and configuration, plus plain-data ``extra`` (history, metrics).

    A :class:`~siamese_lib.nets.SiameseNetwork` is saved as its embedding net (its one set of
    weights), so the file loads with ``model=None`` as well as into either kind of model.

    Raises:
        ValueError: ``extra`` holds something ``torch.load(weights_only=True)`` could not
            read back (a dataclass, a ``Path``, a NumPy scalar...); nothing is written then,
            so an existing file at ``path`` stays as it was.
    """
    if isinstance(model, SiameseNetwork):
        model = model.embedding_net
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; use a siamese_lib network")
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return atomic_save({"format": FORMAT, "config": config, "state_dict": state, "extra": extra}, path)


def load_checkpoint(
    path: str | os.PathLike, model: nn.Module | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint -> (model, extra).

    With ``model`` given, its configuration must match the checkpoint's (else a
    ``ValueError`` names the differences) and its weights are replaced; otherwise the
    model is rebuilt from the stored configuration.
    """
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a siamese_lib checkpoint (format {FORMAT})")
    if model is None:
        model = build_net(ckpt["config"])
    elif getattr(model, "config", None) != ckpt["config"]:
        mine, theirs = getattr(model, "config", {}) or {}, ckpt["config"]
        diff = {k: (mine.get(k), theirs.get(k)) for k in set(mine) | set(theirs)
                if mine.get(k) != theirs.get(k)}
        raise ValueError(
            f"{path} was saved from a different architecture; (this model, checkpoint) differ "
            f"in {diff}. Build the model with the checkpoint's config, or load with model=None."
        )
    target = model.embedding_net if isinstance(model, SiameseNetwork) else model
    target.load_state_dict(ckpt["state_dict"])
    return model, ckpt.get("extra", {})
