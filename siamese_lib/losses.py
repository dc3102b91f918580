"""Losses that teach an embedding net which images belong together.

Taught in chapter 2, "Siamese networks and the contrastive loss", and chapter 7, "Beyond
the contrastive loss" (Koch's head, triplets and prototypes, compared by name).

Label convention everywhere in this module (the article's, after Hadsell et al. 2006):
**Y = 0 means similar (same class), Y = 1 means dissimilar.** Losses that take class
labels instead of pair labels derive Y from them: Y = 0 exactly when the labels match.

Two kinds of loss:

- pair losses take two embedding batches and a pair label: ``loss(e1, e2, y)``;
- batch losses take one batch and its class labels and use every pair (or triplet)
  inside it: ``loss(embeddings, labels)``. Feed them class-balanced P x K batches.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .distances import euclidean, pairwise_euclidean, pairwise_squared_euclidean, squared_euclidean
from .imageset import indices_by_label
from .pairs import check_integer_labels, check_pair_labels, check_whole


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # "1" or True: a slip
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return value


def _check_embeddings(*embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    """Tensors, floating-point embeddings, and everything on one device."""
    for x in (*embeddings, labels):
        if not torch.is_tensor(x):
            raise TypeError(f"a loss takes tensors, got a {type(x).__name__}: "
                            "use torch.as_tensor(...)")
    for e in embeddings:
        if not e.is_floating_point():
            raise ValueError(f"embeddings must be floating-point, got {e.dtype}: pass the "
                             "net's output, not images or indices")
    devices = {x.device for x in (*embeddings, labels)}
    if len(devices) > 1:
        raise ValueError(f"embeddings and labels are on different devices "
                         f"({', '.join(sorted(map(str, devices)))}): move them to one")


def _check_pairs(e1: torch.Tensor, e2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Check a pair batch: embeddings (N, d) each and pair labels (N,) in {0, 1} -> float labels."""
    _check_embeddings(e1, e2, labels=y)
    if e1.dim() != 2 or e2.dim() != 2:
        raise ValueError(
            f"expected embeddings (N, d) for both sides of the pairs, got {tuple(e1.shape)} and "
            f"{tuple(e2.shape)}: one row per pair (unsqueeze a single embedding to (1, d))"
        )
    return _check_pair_labels(y, e1.shape[0])


def _check_pair_labels(y: torch.Tensor, n: int) -> torch.Tensor:
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(
            f"expected one label per pair, shape ({n},), got {tuple(y.shape)}: the batch "
            "sizes of the embeddings and the labels differ"
        )
    if n == 0:
        raise ValueError("empty batch: a pair loss needs at least one pair (its mean would be NaN)")
    check_pair_labels(y)
    return y.to(torch.float32)


def _check_class_labels(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    _check_embeddings(embeddings, labels=labels)
    if embeddings.dim() != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(
            f"expected embeddings (N, d) and labels (N,), got {tuple(embeddings.shape)} "
            f"and {tuple(labels.shape)}"
        )
    if len(labels) < 2:
        raise ValueError(
            f"a batch loss needs at least 2 images (one pair), got {len(labels)}: use a "
            "class-balanced P x K batch"
        )
    check_integer_labels(labels)


def contrastive_loss(d2: torch.Tensor, y: torch.Tensor, margin: float) -> torch.Tensor:
    """Per-pair contrastive loss ``(1-Y) * 1/2 * D^2 + Y * 1/2 * max(0, m - D)^2``.

    The one place the formula lives: the losses below and the book's plots call it.

    Args:
        d2: squared distances D^2 of the pairs (any shape).
        y: pair labels of the same shape, 0 for similar and 1 for dissimilar.
        margin: m > 0.
    """
    # 1/2 D^2 from the squared distance directly: no square root, so the gradient of a
    # similar pair at D = 0 is exactly 0 instead of 0 * inf.
    similar = 0.5 * d2
    dissimilar = 0.5 * F.relu(margin - d2.clamp_min(1e-12).sqrt()).pow(2)
    return (1 - y) * similar + y * dissimilar


class ContrastiveLoss(nn.Module):
    """The contrastive loss of Hadsell, Chopra and LeCun (2006), as in the article.

    ``L = (1 - Y) * 1/2 * D^2 + Y * 1/2 * max(0, m - D)^2`` per pair, with D the Euclidean
    distance of the two embeddings, **Y = 0 for a similar pair and Y = 1 for a dissimilar
    pair**, and margin m > 0. Similar pairs are pulled together; dissimilar pairs are
    pushed apart until they are m apart, and then cost nothing. The batch's losses become
    one number by ``reduction``:

    - ``"mean"`` (the default, the article's): the plain average over the batch's pairs.
    - ``"nonzero"``: the mean over similar pairs plus the mean over the dissimilar pairs
      still inside the margin, so the push does not fade as dissimilar pairs get beyond it.
      With half the sampled pairs similar, the plain mean lets the pull win as training
      goes on; chapter 7 trains the article's sampled pairs this way.

    Args:
        margin: m, the distance beyond which dissimilar pairs stop contributing.
        reduction: ``"mean"`` or ``"nonzero"``.
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = _check_positive("margin", margin)
        self.reduction = _check_reduction(reduction)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of a batch of pairs: embeddings (N, d), (N, d) and labels (N,) in {0, 1}."""
        y = _check_pairs(e1, e2, y)
        losses = contrastive_loss(squared_euclidean(e1, e2), y, self.margin)
        return _reduce(losses, y, self.reduction, e1)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class BatchContrastiveLoss(nn.Module):
    """The contrastive loss over every pair of a class-balanced batch.

    A P x K batch of N images holds N(N-1)/2 pairs: far more than N/2 sampled pairs for
    the same forward pass. Labels: class labels; Y = 0 where two labels match. How the
    pairs' losses become one number matters as much as the formula:

    - ``"mean"`` (the default): the plain average over every pair, as the article
      averages over its batch. Dissimilar pairs far outnumber similar ones (in a 64 x 4
      batch, 98.8% of the 32,640 pairs), so they steer the embedding, and each similar
      pair is pulled gently.
    - ``"nonzero"``: the mean over similar pairs plus the mean over the dissimilar pairs
      that still violate the margin (pytorch-metric-learning's "average of non-zero
      terms"). Similar pairs then weigh as much as all dissimilar ones together.

    On unit-length embeddings (``EmbeddingNet(normalize=True)``) with m = 1, the plain
    mean trains the better one-shot embedding; chapter 7 shows the measurement.

    Args:
        margin: m, as in :class:`ContrastiveLoss`.
        reduction: ``"mean"`` or ``"nonzero"``.
    """

    def __init__(self, margin: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = _check_positive("margin", margin)
        self.reduction = _check_reduction(reduction)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: embeddings (N, d) and class labels (N,)."""
        _check_class_labels(embeddings, labels)
        i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
        y = (labels[i] != labels[j]).to(torch.float32)
        losses = contrastive_loss(pairwise_squared_euclidean(embeddings)[i, j], y, self.margin)
        return _reduce(losses, y, self.reduction, embeddings)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, reduction={self.reduction!r}"


class KochLoss(nn.Module):
    """Koch et al. (2015): a learned head on ``|e1 - e2|``, a sigmoid and binary cross-entropy.

    ``p = sigmoid(w . |e1 - e2| + b)`` is the probability that the pair is similar, and
    the loss is ``BCE(p, 1 - Y)``: with the module-wide convention **Y = 0 similar,
    Y = 1 dissimilar**, the target of p is 1 for a similar pair. Unlike the distance
    losses, the head has weights of its own: give ``loss.parameters()`` to the optimiser
    (:func:`siamese_lib.train.fit` does), and score pairs with :meth:`similarity`.

    The head starts as a scaled L1 distance, ``p = sigmoid(HEAD_SCALE * (HEAD_THRESHOLD -
    mean |e1 - e2|))``: the more two embeddings differ, the less likely the pair is similar,
    which is what training teaches the head anyway. From a random start about half of its
    weights would call a larger difference *more* similar, and a short training spends
    most of its steps unlearning that.

    Args:
        embedding_dim: size of the embeddings.
    """

    #: The head's starting slope and the mean absolute difference at which p = 1/2 (chosen
    #: on the validation alphabets of the book's Omniglot recipe).
    HEAD_SCALE = 16.0
    HEAD_THRESHOLD = 0.5

    def __init__(self, embedding_dim: int) -> None:
        super().__init__()
        self.embedding_dim = check_whole("embedding_dim", embedding_dim)
        self.head = nn.Linear(embedding_dim, 1)
        with torch.no_grad():
            self.head.weight.fill_(-self.HEAD_SCALE / embedding_dim)
            self.head.bias.fill_(self.HEAD_SCALE * self.HEAD_THRESHOLD)

    def similarity(self, e1: torch.Tensor, e2: torch.Tensor) -> torch.Tensor:
        """Logit of "same class" for broadcastable embedding batches (..., d) -> (...)."""
        return self.head((e1 - e2).abs()).squeeze(-1)

    def forward(self, e1: torch.Tensor, e2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean BCE of a batch of pairs: embeddings (N, d), (N, d), labels (N,) in {0, 1}."""
        y = _check_pairs(e1, e2, y)
        if e1.shape != e2.shape:
            squared_euclidean(e1, e2)  # raises the shared shape error
        if e1.shape[1] != self.embedding_dim:
            raise ValueError(f"KochLoss(embedding_dim={self.embedding_dim}) got embeddings of "
                             f"size {e1.shape[1]}: build it with the net's output size")
        return F.binary_cross_entropy_with_logits(self.similarity(e1, e2), 1 - y)


class TripletLoss(nn.Module):
    """Triplet loss with batch mining (Schroff et al. 2015; Hermans et al. 2017).

    For an anchor a, a positive p (same class) and a negative n (other class):
    ``L = max(0, D(a, p) - D(a, n) + m)``. ``mining="batch_hard"`` takes, for each
    anchor, its farthest positive and nearest negative in the batch; ``"batch_all"``
    averages every valid triplet that still violates the margin. Needs P x K batches
    with K >= 2.

    Args:
        margin: m > 0.
        mining: "batch_hard" or "batch_all".
    """

    def __init__(self, margin: float = 0.5, mining: str = "batch_hard") -> None:
        super().__init__()
        self.margin = _check_positive("margin", margin)
        if mining not in ("batch_hard", "batch_all"):
            raise ValueError(f"mining must be 'batch_hard' or 'batch_all', got {mining!r}")
        self.mining = mining

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: embeddings (N, d) and class labels (N,)."""
        _check_class_labels(embeddings, labels)
        d = pairwise_euclidean(embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        positive, negative = same & ~eye, ~same
        if not positive.any() or not negative.any():
            raise ValueError(
                "a triplet batch needs at least two classes and two images of some class; "
                "use a class-balanced P x K batch with P >= 2 and K >= 2"
            )
        if self.mining == "batch_hard":
            hardest_pos = d.masked_fill(~positive, float("-inf")).amax(1)
            hardest_neg = d.masked_fill(~negative, float("inf")).amin(1)
            valid = positive.any(1) & negative.any(1)
            return F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()
        # batch_all: (anchor, positive, negative) via broadcasting
        triplet = d[:, :, None] - d[:, None, :] + self.margin
        valid = positive[:, :, None] & negative[:, None, :]
        losses = F.relu(triplet[valid])
        return _mean_or_zero(losses[losses > 0], embeddings)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, mining={self.mining!r}"


class PrototypicalLoss(nn.Module):
    """Softmax over negative squared distances to class prototypes (Snell et al. 2017).

    Within each class of the batch, the first ``n_support`` images form the support set
    and their mean is the prototype c_k; every other image is a query x scored against
    all prototypes at once: ``p(y = k | x) = softmax_k(-||f(x) - c_k||^2 / T)``, and the
    loss is the cross-entropy. Each query meets every other class of the batch as a
    negative in one softmax (the N-pair / InfoNCE family).

    Args:
        n_support: support images per class; the rest of the class are queries.
        temperature: T > 0; divides the negative squared distances.
    """

    def __init__(self, n_support: int = 1, temperature: float = 1.0) -> None:
        super().__init__()
        self.n_support = check_whole("n_support", n_support)
        self.temperature = _check_positive("temperature", temperature)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: embeddings (N, d) and class labels (N,) with K > n_support per class."""
        _check_class_labels(embeddings, labels)
        _, dense = labels.unique(return_inverse=True)
        by_class = indices_by_label(dense)
        if len(by_class) < 2:
            raise ValueError("the prototypical loss needs at least two classes in a batch")
        fewest = min(len(positions) for positions in by_class)
        if fewest <= self.n_support:
            raise ValueError(
                f"every class needs more than n_support={self.n_support} images in a batch, "
                f"got as few as {fewest}"
            )
        is_support = torch.zeros_like(dense, dtype=torch.bool)
        is_support[torch.cat([positions[: self.n_support] for positions in by_class])] = True
        # in the embeddings' dtype: float64 or float16 ones failed inside index_add
        prototypes = embeddings.new_zeros(len(by_class), embeddings.shape[1])
        prototypes = prototypes.index_add(0, dense[is_support], embeddings[is_support])
        prototypes = prototypes / self.n_support
        logits = -pairwise_squared_euclidean(embeddings[~is_support], prototypes)
        return F.cross_entropy(logits / self.temperature, dense[~is_support])

    def extra_repr(self) -> str:
        return f"n_support={self.n_support}, temperature={self.temperature}"


def _check_reduction(reduction: str) -> str:
    if reduction not in ("mean", "nonzero"):
        raise ValueError(f"reduction must be 'mean' or 'nonzero', got {reduction!r}")
    return reduction


def _reduce(losses: torch.Tensor, y: torch.Tensor, reduction: str, like: torch.Tensor) -> torch.Tensor:
    """One number from per-pair contrastive losses (see ``reduction`` of the losses above)."""
    if reduction == "mean":
        return losses.mean()
    similar, dissimilar = losses[y == 0], losses[y == 1]
    return _mean_or_zero(similar, like) + _mean_or_zero(dissimilar[dissimilar > 0], like)


def _mean_or_zero(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    # An empty selection (no violating pair left) must give 0 with a gradient path, not NaN.
    return x.mean() if x.numel() else like.sum() * 0.0


PAIR_LOSSES = (ContrastiveLoss, KochLoss)
BATCH_LOSSES = (BatchContrastiveLoss, TripletLoss, PrototypicalLoss)

#: The losses by the names recipes give them, with the constructor arguments that
#: rebuild one (read back from the module by :func:`name_and_kwargs`).
_BY_NAME: dict[str, tuple[Callable[..., nn.Module], tuple[str, ...]]] = {
    "contrastive": (ContrastiveLoss, ("margin", "reduction")),
    "batch-contrastive": (BatchContrastiveLoss, ("margin", "reduction")),
    "koch": (KochLoss, ("embedding_dim",)),
    "triplet": (TripletLoss, ("margin", "mining")),
    "prototypical": (PrototypicalLoss, ("n_support", "temperature")),
    "cross-entropy": (nn.CrossEntropyLoss, ("ignore_index", "reduction", "label_smoothing")),
}
#: The names :func:`by_name` knows.
LOSS_NAMES = tuple(_BY_NAME)


def by_name(name: str, **kwargs: Any) -> nn.Module:
    """The loss called ``name`` (as a recipe names it), built with ``kwargs``.

    Names: "contrastive" (:class:`ContrastiveLoss`), "batch-contrastive"
    (:class:`BatchContrastiveLoss`), "koch" (:class:`KochLoss`, needs ``embedding_dim``),
    "triplet" (:class:`TripletLoss`), "prototypical" (:class:`PrototypicalLoss`) and
    "cross-entropy" (``torch.nn.CrossEntropyLoss``, for a plain classifier).

    Raises:
        ValueError: an unknown name (the known ones are listed), or arguments the loss
            does not take or rejects.
    """
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSS_NAMES)}")
    cls, _ = _BY_NAME[name]
    try:
        return cls(**kwargs)
    except TypeError as e:  # a misspelt or missing argument: say which loss and what it takes
        raise ValueError(f"loss {name!r} cannot be built with {kwargs}: {e}") from None


def name_and_kwargs(loss_fn: nn.Module) -> tuple[str, dict[str, Any]] | None:
    """The name and arguments that rebuild ``loss_fn`` with :func:`by_name`, or None for a
    loss of another kind (one of your own)."""
    for name, (cls, args) in _BY_NAME.items():
        if type(loss_fn) is cls:
            return name, {arg: getattr(loss_fn, arg) for arg in args}
    return None


__all__ = [
    "ContrastiveLoss", "BatchContrastiveLoss", "KochLoss", "TripletLoss", "PrototypicalLoss",
    "contrastive_loss", "euclidean", "by_name", "name_and_kwargs", "LOSS_NAMES",
]
