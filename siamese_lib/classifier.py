"""One-shot classification: enrol one example per class, then identify.

Taught in chapter 6, "Faces: verification of people never seen" (section 6.6, "Your own
photos"), and on the page "Your own images".

A one-shot classifier in the style of easyfsl: :meth:`OneShotClassifier.enrol` embeds the
labelled support set once, and :meth:`OneShotClassifier.predict` names any number of
queries against it without embedding the support set again. :func:`predict_classes` is
the one-call form (enrol, then predict) that chapter 6 shows; the command line's
``classify`` uses the classifier too.

Several images of one class: with ``rule="nearest"`` (the default, the Siamese rule) each
image is kept and a query takes the class of its most similar support image; with
``rule="prototype"`` they are averaged into one mean embedding per class (Snell et al.'s
prototype) and a query takes the class of the nearest mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .distances import pairwise_euclidean
from .evaluate import Similarity, _learned_scores, embed_images
from .nets import input_shape

# the most (query, support, feature) elements a learned similarity is given at once
_PAIR_ELEMENTS = 2**24

_RULES = ("nearest", "prototype")


@dataclass
class Predictions:
    """One-shot predictions for query images against a labelled support set.

    Attributes:
        labels: (M,) the predicted class of each query, a label of the support set.
        scores: (M, C) how alike each query is to each class, higher = more alike: with
            the default similarity, minus the distance D to the class's nearest support
            image (``rule="nearest"``) or to its mean embedding (``rule="prototype"``);
            else the learned similarity (e.g. ``KochLoss.similarity``).
        classes: the class names given to :meth:`OneShotClassifier.enrol`, or None.
    """

    labels: torch.Tensor
    scores: torch.Tensor
    classes: list[str] | None = None

    def names(self) -> list[str]:
        """The predicted class of each query by name (its label's number without names)."""
        return [self.classes[i] if self.classes else str(i) for i in self.labels.tolist()]


class OneShotClassifier:
    """Name new images from one (or a few) labelled examples per class.

    ::

        classifier = OneShotClassifier(net).enrol(support_images, support_labels)
        pred = classifier.predict(query_images)   # as often as you like

    Args:
        net: the trained embedding net; ``None`` compares raw pixels.
        similarity: a learned pair score, ``similarity(e1, e2)`` with higher = more alike
            (Koch's head: ``KochLoss.similarity``); default: minus the Euclidean distance D.
        device: where to run the net (default: :func:`~siamese_lib.config.pick_device`).
        rule: "nearest" keeps every support image (the class of the most similar one, the
            Siamese rule); "prototype" averages each class's images into one embedding.
    """

    def __init__(
        self,
        net: nn.Module | None,
        # spelled out, not the Similarity alias: autodoc shows a class's hints unevaluated
        similarity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        device: str | torch.device | None = None,
        rule: str = "nearest",
    ) -> None:
        if rule not in _RULES:
            raise ValueError(f"rule must be 'nearest' or 'prototype', got {rule!r}")
        self.net, self.similarity, self.device, self.rule = net, similarity, device, rule
        self.classes: list[str] | None = None
        self._support: torch.Tensor | None = None  # (S, d) embeddings, or (C, d) prototypes
        self._labels: torch.Tensor | None = None  # (S,) or arange(C)
        self._image_shape: tuple[int, ...] = ()

    @property
    def n_classes(self) -> int:
        """How many classes are enrolled (0 before :meth:`enrol`)."""
        return 0 if self._labels is None else int(self._labels.max()) + 1

    @torch.no_grad()
    def enrol(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | Sequence[int],
        classes: Sequence[str] | None = None,
    ) -> OneShotClassifier:
        """Embed the support set once and keep it; returns the classifier itself.

        Enrolling again replaces the support set.

        Args:
            images: (S, C, H, W) labelled examples, uint8 or float, the size the net takes.
            labels: (S,) their classes, whole numbers 0..C-1, each class at least once; a
                class may have any number of images.
            classes: optional names of the classes, ``classes[i]`` for label i (e.g.
                :class:`~siamese_lib.imageset.ImageSet`'s ``classes``); predictions carry them.

        Raises:
            ValueError: no images, not one label per image, labels that are not 0..C-1
                with every class present, names that do not match the classes, or images
                of another shape than the net takes.
        """
        _check_images(images, self.net, "support")
        labels = _as_labels(labels)
        if len(labels) != len(images):
            raise ValueError(f"need one label per support image, got {len(labels)} labels "
                             f"for {len(images)} images")
        counts = torch.bincount(labels.clamp_min(0))
        if labels.min() < 0 or not bool((counts > 0).all()):
            raise ValueError("support labels must be 0..C-1 with every class present, got "
                             f"{sorted(set(labels.tolist()))}")
        if classes is not None and len(classes) != len(counts):
            raise ValueError(f"got {len(classes)} class names for {len(counts)} classes "
                             "(labels 0.." f"{len(counts) - 1}): give one name per class")
        s = embed_images(self.net, images, device=self.device)
        labels, counts = labels.to(s.device), counts.to(s.device)
        if self.rule == "prototype":
            s = (torch.zeros(len(counts), s.shape[1], device=s.device)
                 .index_add_(0, labels, s) / counts[:, None])
            labels = torch.arange(len(counts), device=s.device)
        self._support, self._labels = s, labels
        self._image_shape = tuple(images.shape[1:])
        self.classes = None if classes is None else [str(c) for c in classes]
        return self

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Predictions:
        """Name each query image after the enrolled support set.

        Args:
            images: (M, C, H, W) the images to classify, the shape of the support images.

        Returns:
            The predictions, on the device of the scores: the learned similarity's module's
            device, else that of the embeddings (the CPU; the images' device for pixels).

        Raises:
            RuntimeError: nothing is enrolled yet (call :meth:`enrol` first).
            ValueError: images of another shape than the support images (no images give
                no predictions).
        """
        if self._support is None or self._labels is None:
            raise RuntimeError("nothing is enrolled: call enrol(images, labels) with the "
                               "labelled support set before predict(images)")
        _check_images(images, self.net, "query")
        if tuple(images.shape[1:]) != self._image_shape:
            raise ValueError(f"the query images are {_shape(images.shape[1:])} each but the "
                             f"support images were {_shape(self._image_shape)}: read both "
                             "at the same size and channels")
        if not len(images):  # nothing to embed: no predictions, the scores' shape (0, C)
            empty = torch.empty(0, self.n_classes, device=self._support.device)
            return Predictions(empty.argmax(1), empty, self.classes)
        q = embed_images(self.net, images, device=self.device)
        per_image = self._scores(q, self._support)
        scores = torch.full((len(q), self.n_classes), -math.inf,
                            device=per_image.device).scatter_reduce(
            1, self._labels.to(per_image.device).expand(len(q), -1), per_image, reduce="amax")
        return Predictions(scores.argmax(1), scores, self.classes)

    def _scores(self, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """(M, S) how alike each query is to each support embedding (or prototype)."""
        if self.similarity is None:
            return -pairwise_euclidean(q, s)
        # a learned head sees every (query, support) pair: bound its (rows, S, d) input
        rows = max(1, _PAIR_ELEMENTS // (len(s) * s.shape[1]))
        return torch.cat([
            _learned_scores(self.similarity, q[i : i + rows, None, :], s[None, :, :]).float()
            for i in range(0, len(q), rows)])


def _as_labels(labels: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """(S,) long labels; whole numbers only (truncating 0.5 and 0.7 would merge classes)."""
    # a tensor keeps its device, a list or an array starts on the CPU (not the default device)
    try:
        labels = torch.as_tensor(labels, device=getattr(labels, "device", "cpu")).flatten()
    except (TypeError, ValueError):  # names, say: torch's "too many dimensions 'str'"
        raise TypeError(f"support labels must be whole numbers 0..C-1 (names go in classes=...), "
                        f"got {labels!r:.60}") from None
    # isfinite: inf passed the whole-number test and became a huge negative label
    if labels.is_floating_point() and not bool(
            (torch.isfinite(labels) & (labels == labels.round())).all()):
        raise ValueError("support labels must be whole numbers 0..C-1, got "
                         f"{sorted(set(labels.tolist()))[:5]}")
    return labels.long()


def _check_images(images: torch.Tensor, net: nn.Module | None, what: str) -> None:
    """A clear error for a set that is empty, not a tensor, not finite or not the net's size."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"the {what} images must be a tensor (N, C, H, W), e.g. from "
                        f"load_images or load_image_folder; got {type(images).__name__}")
    if images.dim() < 2:  # else an IndexError from flatten(1) or an empty shape in a message
        raise ValueError(f"the {what} images must be a batch (N, C, H, W), got shape "
                         f"{tuple(images.shape)}")
    if what == "support" and not len(images):
        raise ValueError("the support set is empty: give at least one image per class")
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        raise ValueError(f"the {what} images hold NaN or infinite values")
    expected = input_shape(net)
    if expected is not None and tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"the net takes images of {_shape(expected)} but the {what} images are "
            f"{_shape(images.shape[1:])}: read them at its size, e.g. load_images(paths, "
            f"size={expected[1]}, channels={expected[0]})")


def _shape(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape))


@torch.no_grad()
def predict_classes(
    model: nn.Module | None,
    support_images: torch.Tensor,
    support_labels: torch.Tensor,
    query_images: torch.Tensor,
    similarity: Similarity | None = None,
    rule: str = "nearest",
    device: str | torch.device | None = None,
) -> Predictions:
    """Classify new images from one (or a few) labelled examples per class: one-shot use.

    One call of :class:`OneShotClassifier` (enrol the support set, then predict the
    queries); to ask about many batches of queries, keep the classifier instead. Unlike
    the episodes of :func:`~siamese_lib.evaluate.one_shot_accuracy`, the support set may
    hold a different number of images for each class (a folder of your own images, say).

    Args:
        model: the embedding net; ``None`` compares raw pixels.
        support_images: (S, C, H, W) labelled examples, uint8 or float.
        support_labels: (S,) their classes, 0..C-1, each class at least once.
        query_images: (M, C, H, W) the images to classify.
        similarity: a learned pair score; default: minus the Euclidean distance D.
        rule: "nearest" (the class of the most similar support image, the Siamese rule)
            or "prototype" (the class whose mean support embedding is nearest).
        device: where to run the net (default: :func:`~siamese_lib.config.pick_device`).

    Returns:
        The predictions, on the device of the scores: the learned similarity's module's
        device, else that of the embeddings (the CPU; the images' device for pixels).

    Raises:
        ValueError: the labels do not match the support images, or a class between 0 and
            the largest label has no support image (see :meth:`OneShotClassifier.enrol`).
    """
    classifier = OneShotClassifier(model, similarity, device, rule)
    return classifier.enrol(support_images, support_labels).predict(query_images)
