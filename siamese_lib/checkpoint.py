"""Checkpoints that are never half-written and never run code when loaded.

Taught in chapter 3, "Training a Siamese network on MNIST" (a model trained once and
loaded back), and the appendix "Engineering notes" (atomic writes, ``weights_only``).

A checkpoint is a plain dict of tensors, numbers, strings and lists:
``{"format": 1, "config": <net config>, "state_dict": ..., "extra": {...}}``.
It is written to a temporary file in the same folder and renamed into place, so a
crash leaves the old file intact, and it is read with ``weights_only=True``, so a
file carrying pickled code is refused instead of executed.

:func:`save_trained` and :func:`load_trained` keep a whole trained model in one: the net,
the loss by name with its arguments and trained parameters (Koch's learned head, so the
similarity comes back), the recipe, the history and any extras.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_write
from .losses import KochLoss, by_name, name_and_kwargs
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


def _check_finite(state: Mapping[str, torch.Tensor], owner: str) -> None:
    """Refuse NaN or infinite weights: a diverged model would replace a good file."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{owner}'s {key} holds NaN or infinite values (training "
                             "diverged?); nothing was saved")


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Save a model's weights and configuration, plus plain-data ``extra`` (history, metrics).

    A :class:`~siamese_lib.nets.SiameseNetwork` is saved as its embedding net (its one set of
    weights), so the file loads with ``model=None`` as well as into either kind of model.

    Raises:
        ValueError: ``extra`` holds something ``torch.load(weights_only=True)`` could not
            read back (a dataclass, a ``Path``, a NumPy scalar...), or a weight is NaN or
            infinite; nothing is written then, so an existing file at ``path`` stays as it
            was.
    """
    if isinstance(model, SiameseNetwork):
        model = model.embedding_net
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} has no .config; use a siamese_lib network")
    _check_plain(extra, "extra")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _check_finite(state, type(model).__name__)
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
    if not isinstance(ckpt.get("config"), dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ValueError(f"{path} is not a siamese_lib checkpoint: no config or no weights")
    if model is None:
        model = _build(ckpt["config"], path)
    elif getattr(model, "config", None) != ckpt["config"]:
        mine, theirs = getattr(model, "config", {}) or {}, ckpt["config"]
        diff = {k: (mine.get(k), theirs.get(k)) for k in set(mine) | set(theirs)
                if mine.get(k) != theirs.get(k)}
        raise ValueError(
            f"{path} was saved from a different architecture; (this model, checkpoint) differ "
            f"in {diff}. Build the model with the checkpoint's config, or load with model=None."
        )
    target = model.embedding_net if isinstance(model, SiameseNetwork) else model
    _load_weights(target, ckpt["state_dict"], path)
    return model, ckpt.get("extra", {})


def _build(config: dict[str, Any], path: str | os.PathLike) -> nn.Module:
    """The net a checkpoint's config describes, or a ValueError saying why it cannot be built."""
    try:
        return build_net(config)
    except (TypeError, ValueError, KeyError) as e:  # an unknown or missing key, a bad value
        raise ValueError(
            f"{path} has a network config that cannot be built ({_first_line(e)}): it was "
            "edited or written by another version; save or train it again"
        ) from None


def _load_weights(target: nn.Module, state: Mapping[str, Any], path: str | os.PathLike) -> None:
    try:
        target.load_state_dict(state)
    except RuntimeError as e:  # missing, unexpected or wrongly shaped weights
        raise ValueError(
            f"{path} holds weights that do not fit its network config ({_first_line(e)}); "
            "the file was edited or damaged: save or train it again"
        ) from None


def _first_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 300 else text[:297] + "..."


def check_writable(path: str | os.PathLike) -> Path:
    """Make ``path``'s folder and check a file can be written there, before hours of training.

    Raises:
        OSError: the folder cannot be made or written to (read-only, no permission); the
            message names the folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint path {path} is a folder; name a file, e.g. {path}/model.pt")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        # one plain sentence, not "[Errno 17] ...": the CLI prints it as it is
        blocker = next((p for p in path.parents if p.exists()), None)
        why = (f"{blocker} is a file, not a folder" if blocker is not None and not blocker.is_dir()
               else e.strerror or str(e))
        raise type(e)(f"cannot write a checkpoint in {path.parent} ({why}); choose a folder "
                      "you can write to") from None
    return path


# ------------------------------------------------------------------------ trained models


class TrainedNet:
    """What every trained model gives, from its ``model`` and ``loss_fn`` attributes: the
    net that embeds images and the pair score (shared by :class:`Trained` and
    :class:`siamese_lib.recipes.TrainedModel`)."""

    model: nn.Module
    loss_fn: nn.Module | None

    @property
    def similarity(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
        """The learned pair score of a Koch model; None means -D^2 (distance models)."""
        return self.loss_fn.similarity if isinstance(self.loss_fn, KochLoss) else None

    @property
    def embedding_net(self) -> nn.Module:
        """The net that embeds images (a classifier's feature extractor)."""
        return getattr(self.model, "embedding_net", self.model)


@dataclass
class Trained(TrainedNet):
    """A trained model as :func:`load_trained` reads it back.

    Attributes:
        model: the net as saved (an embedding net or a classifier), in eval mode.
        loss_fn: the loss, rebuilt by name with its trained parameters; None if the file
            names none (a plain :func:`save_checkpoint` file).
        recipe: the recipe's fields as saved (a dict), or None.
        history: the training history as saved (``History.to_dict()``), or None.
        extra: everything else saved with it.
    """

    model: nn.Module
    loss_fn: nn.Module | None = None
    recipe: dict[str, Any] | None = None
    history: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def loss_record(loss_fn: nn.Module | None) -> dict[str, Any] | None:
    """What :func:`save_trained` stores of a loss: name, arguments and trained state.

    Raises:
        ValueError: a loss of your own with trained parameters, which could not be rebuilt
            when loading (raised before anything is written or trained).
    """
    if loss_fn is None:
        return None
    spec = name_and_kwargs(loss_fn)
    if spec is None:
        if any(True for _ in loss_fn.parameters()):
            raise ValueError(
                f"{type(loss_fn).__name__} has trained parameters but is not one of the "
                "losses of siamese_lib.losses.by_name, so a checkpoint could not rebuild it; "
                "save its state_dict() yourself, or use a named loss"
            )
        return None
    name, kwargs = spec
    state = {k: v.detach().cpu() for k, v in loss_fn.state_dict().items()}
    _check_finite(state, type(loss_fn).__name__)
    return {"name": name, "kwargs": kwargs, "state_dict": state}


def save_trained(
    path: str | os.PathLike,
    model: nn.Module,
    loss_fn: nn.Module | None = None,
    recipe: Mapping[str, Any] | None = None,
    history: Any = None,
    **extra: Any,
) -> Path:
    """Save a trained model whole: net, loss (by name, arguments, trained parameters),
    recipe, history and plain-data ``extra``; :func:`load_trained` reads it back.

    Args:
        path: the file, written atomically.
        model: the trained net (an embedding net, a Siamese network or a classifier).
        loss_fn: the loss it was trained with; its parameters (Koch's head) are kept.
        recipe: the recipe's fields (``dataclasses.asdict(recipe)``).
        history: a ``History`` (its ``to_dict()`` is saved) or its dict.

    Raises:
        ValueError: something that would not load back with ``weights_only=True``, or a
            loss of your own with parameters; nothing is written then.
    """
    if history is not None and hasattr(history, "to_dict"):
        history = history.to_dict()
    record = {"loss": loss_record(loss_fn), "recipe": None if recipe is None else dict(recipe),
              "history": history}
    clash = sorted(set(record) & set(extra))
    if clash:
        raise ValueError(f"extra may not use the names {clash}: save_trained stores them itself")
    return save_checkpoint(path, model, **record, **extra)


def load_trained(path: str | os.PathLike) -> Trained:
    """Read back what :func:`save_trained` (or :func:`save_checkpoint`) wrote.

    The loss is rebuilt with :func:`siamese_lib.losses.by_name` and given its trained
    parameters, so a Koch model scores pairs with its learned head (``.similarity``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a readable checkpoint, its weights do not fit its
            config, or its loss cannot be rebuilt.
    """
    model, extra = load_checkpoint(path)
    extra = dict(extra)
    record = extra.pop("loss", None)
    recipe, history = extra.pop("recipe", None), extra.pop("history", None)
    if record is None and "loss_state" in extra:
        record = _record_of_format_1(extra.pop("loss_state"), recipe, model)
    loss_fn = None if record is None else _rebuild_loss(record, path)
    return Trained(model.eval(), loss_fn, recipe, history, extra)


def _record_of_format_1(state: Any, recipe: Any, model: nn.Module) -> dict[str, Any] | None:
    """The loss record of a file written before save_trained (the recipe cache's and
    ``train --out``'s old layout: the loss's state, its name only in the recipe), so those
    files keep their Koch head instead of falling back to distances."""
    if not isinstance(recipe, dict) or not isinstance(recipe.get("loss"), str):
        return None
    kwargs = dict(recipe.get("loss_kwargs") or {})
    if recipe["loss"] == "koch":
        kwargs["embedding_dim"] = getattr(model, "embedding_net", model).output_dim
    return {"name": recipe["loss"], "kwargs": kwargs, "state_dict": state}


def _rebuild_loss(record: Any, path: str | os.PathLike) -> nn.Module:
    if not isinstance(record, dict) or not isinstance(record.get("kwargs"), dict):
        raise ValueError(f"{path} has a damaged loss record; save or train it again")
    try:
        loss_fn = by_name(record.get("name"), **record["kwargs"])
    except ValueError as e:
        raise ValueError(f"{path}: its loss cannot be rebuilt: {e}") from None
    _load_weights(loss_fn, record.get("state_dict", {}), path)
    return loss_fn.eval()
