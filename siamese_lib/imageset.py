"""The labelled image set every loader returns, and the two index helpers under it.

Taught in chapter 1 (Standard vs one-shot classification), where MNIST and Omniglot
first arrive as an :class:`ImageSet`. :func:`gather` picks rows of a tensor and
:func:`indices_by_label` groups positions by class; the samplers in
:mod:`siamese_lib.pairs` and :mod:`siamese_lib.episodes` are built on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

#: What :meth:`ImageSet.subset` accepts: a boolean mask, integer positions or a slice.
Index = torch.Tensor | np.ndarray | Sequence[int] | Sequence[bool] | slice


def gather(values: torch.Tensor, index: torch.Tensor | slice) -> torch.Tensor:
    """``values[index]`` for a slice or an integer index tensor of any shape.

    The result has shape ``(*index.shape, *values.shape[1:])``, on ``values``' device (the
    index is moved there). It goes through ``index_select``: plain advanced indexing was
    measured 50-500x slower on a loaded 2-core CPU (its parallel kernel waits on busy
    threads), and up to 100-fold slower for image tensors when other processes compete.

    Raises:
        TypeError: ``index`` is neither a slice nor an integer tensor.
    """
    if isinstance(index, slice):
        return values[index]
    if not isinstance(index, torch.Tensor) or index.is_floating_point() or index.dtype == torch.bool:
        raise TypeError(f"gather needs a slice or an integer index tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    index = index.to(values.device)
    return values.index_select(0, index.reshape(-1)).reshape(*index.shape, *values.shape[1:])


def indices_by_label(labels: torch.Tensor, num_classes: int | None = None) -> list[torch.Tensor]:
    """For each class 0..num_classes-1, the positions of its examples, in their original order.

    Args:
        labels: int64 (N,) class indices, 0 or more.
        num_classes: how many classes to list (classes without an example get an empty
            tensor); by default ``labels.max() + 1``.

    Raises:
        ValueError: ``labels`` is not a 1-D integer tensor of non-negative values, or
            holds a label >= ``num_classes``.
    """
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor, got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0, got {int(labels.min())}")
    counts = torch.bincount(labels, minlength=num_classes or 0)
    if num_classes is not None and len(counts) > num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {len(counts) - 1}")
    order = torch.argsort(labels, stable=True)
    return list(order.split(counts.tolist()))


@dataclass(eq=False, repr=False)
class ImageSet(Dataset):
    """A labelled image set held in memory, usable directly with a ``DataLoader``.

    Attributes:
        images: uint8 (N, C, H, W); ink or foreground bright, background 0 for glyphs.
        labels: int64 (N,), class index into ``classes``.
        classes: class names; ``classes[i]`` names label ``i``.
        groups: int64 (N,) index into ``group_names`` (the alphabet for Omniglot), or None.
        group_names: names of the groups, or None.
        drawers: int64 (N,), Omniglot drawer 1..20, or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    groups: torch.Tensor | None = None
    group_names: list[str] | None = None
    drawers: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.images, torch.Tensor) or self.images.dtype != torch.uint8 \
                or self.images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got "
                             f"{_describe(self.images)}")
        n = len(self.images)
        for name in ("labels", "groups", "drawers"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, torch.Tensor)
                                      or tuple(value.shape) != (n,)):
                raise ValueError(f"{name} must be a tensor of shape ({n},), got {_describe(value)}")
        if (self.groups is None) != (self.group_names is None):
            raise ValueError("groups and group_names must be given together")
        _check_ids("labels", self.labels, self.classes)
        if self.groups is not None:
            _check_ids("groups", self.groups, self.group_names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """One example as (float image in [0, 1] of shape (C, H, W), int label)."""
        return self.images[i].float() / 255, int(self.labels[i])

    def __repr__(self) -> str:
        groups = "" if self.group_names is None else f", groups={len(self.group_names)}"
        return (f"ImageSet(n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
                f"classes={self.num_classes}{groups})")

    @property
    def num_classes(self) -> int:
        """The number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, index: Index) -> ImageSet:
        """The examples picked by ``index``, with labels made dense again.

        Classes are renumbered 0..k-1 in their original order, and classes with no example
        left are dropped from ``classes``. Groups are treated the same way, so
        ``group_names`` only lists groups that still occur.

        Args:
            index: a boolean mask of length N, integer positions, or a slice.

        Returns:
            A new ImageSet in the order of ``index``; its tensors are copies unless
            ``index`` is a slice.
        """
        idx = _as_index(index, len(self))
        labels, classes = _compact(gather(self.labels, idx), self.classes)
        groups, group_names = (None, None)
        if self.groups is not None:
            groups, group_names = _compact(gather(self.groups, idx), self.group_names)
        drawers = None if self.drawers is None else gather(self.drawers, idx)
        return ImageSet(gather(self.images, idx), labels, classes, groups, group_names, drawers)

    def float(self) -> torch.Tensor:
        """All images as float32 in [0, 1], shape (N, C, H, W)."""
        return self.images.float().div_(255)


@dataclass(eq=False)
class LakeRun:
    """One 20-way one-shot trial set of Lake et al. (2015).

    Attributes:
        train: uint8 (20, 1, S, S), one image per class, in class order.
        test: uint8 (20, 1, S, S), the query images.
        answers: int64 (20,); ``answers[i]`` is the class (row of ``train``) of ``test[i]``.
    """

    train: torch.Tensor
    test: torch.Tensor
    answers: torch.Tensor


def _compact(ids: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
    """Renumber ``ids`` densely, keeping their order, and keep only the names still used."""
    used, dense = torch.unique(ids, sorted=True, return_inverse=True)
    return dense.long(), [names[i] for i in used.tolist()]


def _as_index(index: Index, n: int) -> torch.Tensor | slice:
    """A slice, or int64 positions, from a mask, a position list or a slice."""
    if isinstance(index, slice):
        return index
    idx = torch.as_tensor(index)
    if idx.dtype == torch.bool:
        if tuple(idx.shape) != (n,):
            raise ValueError(f"a boolean mask must have shape ({n},), got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.numel() and idx.is_floating_point():
        raise TypeError(f"index must be integers or booleans, got {idx.dtype}")
    idx = idx.long().flatten()
    if idx.numel() and not 0 <= int(idx.min()) <= int(idx.max()) < n:
        raise IndexError(f"positions must lie in 0..{n - 1} (the set has {n} images), got "
                         f"{int(idx.min())}..{int(idx.max())}")
    return idx


def _check_ids(name: str, ids: torch.Tensor, names: Sequence[str]) -> None:
    if ids.dtype != torch.int64:
        raise ValueError(f"{name} must be int64, got {ids.dtype}")
    if ids.numel() and not 0 <= int(ids.min()) <= int(ids.max()) < len(names):
        raise ValueError(f"{name} must lie in 0..{len(names) - 1}")


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} {tuple(value.shape)}"
    return type(value).__name__
