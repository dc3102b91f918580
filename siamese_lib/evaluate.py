"""How good is an embedding? Verification (same or different?) and one-shot accuracy.

Every evaluation embeds each image once and then works on the embeddings: a 20-way
episode compares a query with 20 support images, and re-running the twin network
on every pair would embed the same image hundreds of times.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .config import pick_device
from .distances import pairwise_euclidean, pairwise_squared_euclidean
from .episodes import Episodes, EpisodeSampler
from .imageset import gather as rows
from .pairs import to_float
from .train import autocast, use_channels_last
from .train import embed as _embed_batch

Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# the most (query, support, feature) elements a learned similarity is given at once
_PAIR_ELEMENTS = 2**24


@dataclass
class Accuracy:
    """An accuracy with its 95% confidence interval (normal approximation).

    Attributes:
        mean: the accuracy in [0, 1].
        ci95: half-width of the 95% confidence interval.
        n: how many episodes (or trials) it averages.
    """

    mean: float
    ci95: float
    n: int

    def percent(self, digits: int = 1) -> str:
        """The mean and interval in percent: ``"95.4 ± 0.2"`` (``digits`` decimals)."""
        return f"{100 * self.mean:.{digits}f} ± {100 * self.ci95:.{digits}f}"

    def __str__(self) -> str:
        return f"{self.percent()}% (n={self.n})"


def mean_ci95(values: torch.Tensor) -> Accuracy:
    """Mean of per-episode accuracies (or 0/1 trials) with 1.96 standard errors."""
    values = values.double().flatten()
    n = len(values)
    sd = float(values.std(unbiased=True)) if n > 1 else 0.0
    return Accuracy(float(values.mean()), 1.96 * sd / math.sqrt(n) if n else math.nan, n)


@torch.no_grad()
def embed_images(
    model: nn.Module | None,
    images: torch.Tensor,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """Embed every image once -> (N, d) on the CPU. ``model=None`` returns raw pixels
    (flattened), on the images' device.

    Images may be uint8 (scaled to [0, 1]) or float.
    """
    if model is None:
        return to_float(images).flatten(1)
    device = pick_device(device)
    # leave the model as it came (device, train/eval mode, memory format): fit() calls
    # this between epochs, and a model silently left contiguous made the rest of the
    # training steps 2x slower
    was_training, old_device = model.training, _device_of(model)
    old_format = _memory_format_of(model)
    model.eval().to(device)
    # channels-last, as in training: measured faster for the conv nets on CPU
    memory_format = torch.channels_last if use_channels_last(device) else torch.contiguous_format
    model.to(memory_format=memory_format)
    out = []
    for i in range(0, len(images), batch_size):
        x = to_float(images[i : i + batch_size]).to(device)
        x = x.contiguous(memory_format=memory_format) if x.dim() == 4 else x
        with autocast(device):  # bfloat16 where training uses it (measured 1.7x faster)
            out.append(_embed_batch(model, x).float().cpu())
    model.train(was_training).to(old_device).to(memory_format=old_format)
    return torch.cat(out)


def _device_of(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _memory_format_of(model: nn.Module) -> torch.memory_format:
    for p in model.parameters():
        if p.dim() == 4 and p.shape[1] > 1:  # a conv weight with >1 input channel shows it
            cl = p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            return torch.channels_last if cl else torch.contiguous_format
    return torch.contiguous_format


def _negative_squared_distance(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return -pairwise_squared_euclidean(q, s)


def _head_device(similarity: Similarity) -> torch.device | None:
    """Where a learned similarity's weights are: the device of its module, for a method of
    a module (``KochLoss.similarity``) or a module itself; None for a plain function."""
    owner = getattr(similarity, "__self__", similarity)
    if not isinstance(owner, nn.Module):
        return None
    weight = next(itertools.chain(owner.parameters(), owner.buffers()), None)
    return None if weight is None else weight.device


def _learned_scores(
    similarity: Similarity, query: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    """``similarity(query, support)``, both moved to the head's device; the scores stay there.

    embed_images returns CPU embeddings, while fit() keeps a learned head on the training
    device (the GPU), next to its optimiser state: the embeddings move, not the head.
    """
    device = _head_device(similarity)
    device = query.device if device is None else device
    return similarity(query.to(device), support.to(device))


def classify_queries(
    support: torch.Tensor,
    query: torch.Tensor,
    similarity: Similarity | None = None,
    rule: str = "nearest",
) -> torch.Tensor:
    """Name each query of a batch of episodes from embeddings -> predicted class (E, N*Q).

    Args:
        support: (E, N, K, d) support embeddings.
        query: (E, M, d) query embeddings.
        similarity: ``(query (..., M, 1, d), support (..., 1, S, d)) -> (..., M, S)`` scores,
            higher = more alike; default: negative squared Euclidean distance.
        rule: "nearest" (the class of the most similar support image, the Siamese rule)
            or "prototype" (the class of the nearest mean support embedding).

    Returns:
        The predictions, on the device of the scores: the learned similarity's module's
        device (the embeddings are moved there), else the queries' device.
    """
    e, n, k, d = support.shape
    if rule == "prototype":
        support, k = support.mean(2, keepdim=True), 1
    elif rule != "nearest":
        raise ValueError(f"rule must be 'nearest' or 'prototype', got {rule!r}")
    flat = support.reshape(e, n * k, d).to(query.device)
    if similarity is None:
        scores = _negative_squared_distance(query, flat)
    else:
        scores = _learned_scores(similarity, query[:, :, None, :], flat[:, None, :, :])
    return scores.reshape(e, -1, n, k).amax(-1).argmax(-1)


def one_shot_accuracy(
    embeddings: torch.Tensor,
    episodes: Episodes | EpisodeSampler,
    similarity: Similarity | None = None,
    rule: str = "nearest",
    chunk: int = 256,
) -> Accuracy:
    """Accuracy over N-way K-shot episodes, from embeddings computed once.

    Args:
        embeddings: (N_images, d), e.g. from :func:`embed_images`, on any device: the
            episodes' indices and answers are moved to them.
        episodes: an :class:`~siamese_lib.episodes.EpisodeSampler` or drawn :class:`~siamese_lib.episodes.Episodes`.
        similarity: a learned pair score (e.g. ``KochLoss.similarity``); default -D^2.
        rule: "nearest" or "prototype" (see :func:`classify_queries`).
        chunk: episodes scored at once (bounds memory).

    Returns:
        Mean per-episode accuracy with its 95% confidence interval.
    """
    if isinstance(episodes, EpisodeSampler):
        episodes = episodes.sample()
    per_episode = []
    for start in range(0, episodes.support.shape[0], chunk):
        s = rows(embeddings, episodes.support[start : start + chunk])  # (E, N, K, d)
        q_idx = episodes.query[start : start + chunk]
        q = rows(embeddings, q_idx.flatten(1))  # (E, N*Q, d)
        pred = classify_queries(s, q, similarity, rule)
        # the answers where the predictions are (the GPU, with CUDA embeddings or a GPU head)
        truth = torch.arange(q_idx.shape[1], device=pred.device).repeat_interleave(q_idx.shape[2])
        per_episode.append((pred == truth).double().mean(1))
    return mean_ci95(torch.cat(per_episode))


def lake_runs_accuracy(
    model: nn.Module | None,
    runs: list,
    similarity: Similarity | None = None,
    device: str | torch.device | None = None,
) -> Accuracy:
    """Accuracy on Lake et al.'s 20 official 20-way one-shot runs (400 trials).

    Args:
        model: the embedding model; ``None`` for the pixel 1-nearest-neighbour baseline.
        runs: from :func:`siamese_lib.data.load_lake_runs`.
    """
    trials = []
    for run in runs:
        s = embed_images(model, run.train, device=device)
        q = embed_images(model, run.test, device=device)
        pred = classify_queries(s[None, :, None, :], q[None], similarity)[0]
        trials.append((pred == run.answers.to(pred.device)).double())
    return mean_ci95(torch.cat(trials))


@dataclass
class Predictions:
    """One-shot predictions for query images against a labelled support set.

    Attributes:
        labels: (M,) the predicted class of each query, a label of the support set.
        scores: (M, C) how alike each query is to each class, higher = more alike: with
            the default similarity, minus the distance D to the class's nearest support
            image (``rule="nearest"``) or to its mean embedding (``rule="prototype"``);
            else the learned similarity (e.g. ``KochLoss.similarity``).
    """

    labels: torch.Tensor
    scores: torch.Tensor


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

    Unlike the episodes of :func:`one_shot_accuracy`, the support set may hold a different
    number of images for each class (a folder of your own images, say).

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
            the largest label has no support image.
    """
    if rule not in ("nearest", "prototype"):
        raise ValueError(f"rule must be 'nearest' or 'prototype', got {rule!r}")
    # a tensor keeps its device, a list or an array starts on the CPU (not the default device)
    support_labels = torch.as_tensor(
        support_labels, device=getattr(support_labels, "device", "cpu")).long().flatten()
    if len(support_labels) != len(support_images) or not len(support_labels):
        raise ValueError(f"need one label per support image, got {len(support_labels)} labels "
                         f"for {len(support_images)} images")
    counts = torch.bincount(support_labels.clamp_min(0))
    if support_labels.min() < 0 or not bool((counts > 0).all()):
        raise ValueError("support labels must be 0..C-1 with every class present, got "
                         f"{sorted(set(support_labels.tolist()))}")
    s = embed_images(model, support_images, device=device)
    q = embed_images(model, query_images, device=device)
    n_classes = len(counts)
    support_labels, counts = support_labels.to(s.device), counts.to(s.device)
    if rule == "prototype":
        s = (torch.zeros(n_classes, s.shape[1], device=s.device)
             .index_add_(0, support_labels, s) / counts[:, None])
        support_labels = torch.arange(n_classes, device=s.device)
    if similarity is None:
        per_image = -pairwise_euclidean(q, s)
    else:  # a learned head sees every (query, support) pair: bound its (rows, S, d) input
        rows = max(1, _PAIR_ELEMENTS // (len(s) * s.shape[1]))
        per_image = torch.cat([
            _learned_scores(similarity, q[i : i + rows, None, :], s[None, :, :]).float()
            for i in range(0, len(q), rows)])
    scores = torch.full((len(q), n_classes), -math.inf, device=per_image.device).scatter_reduce(
        1, support_labels.to(per_image.device).expand(len(q), -1), per_image, reduce="amax")
    return Predictions(scores.argmax(1), scores)


# ----------------------------------------------------------------------------- verification
# Positive = similar (Y = 0). A pair is called similar when its distance is <= threshold.


def accuracy_at_threshold(d: torch.Tensor, y: torch.Tensor, threshold: float) -> float:
    """Share of pairs called right when "similar" means ``D <= threshold`` (Y = 0 similar)."""
    return float(((d <= threshold) == (y.to(d.device) == 0)).double().mean())


def best_threshold(d: torch.Tensor, y: torch.Tensor) -> float:
    """The threshold that maximises accuracy on these (validation) pairs.

    Candidates are the midpoints between consecutive sorted distances.
    """
    d_sorted, order = d.double().sort()
    similar = (y.to(d.device)[order] == 0).double()
    zero = torch.zeros(1, dtype=torch.double, device=d.device)
    # calling the first i pairs similar: right on similar ones among them, dissimilar ones after
    correct = torch.cat([zero, similar.cumsum(0)]) + torch.cat(
        [(1 - similar).flip(0).cumsum(0).flip(0), zero]
    )
    # no threshold splits a run of equal distances: only split between different values
    possible = torch.ones_like(correct, dtype=torch.bool)
    possible[1:-1] = d_sorted[1:] > d_sorted[:-1]
    i = int(correct.masked_fill(~possible, -1).argmax())
    if i == 0:
        return _just_below_min(d)
    if i == len(d_sorted):
        return float(d_sorted[-1])
    return float((d_sorted[i - 1] + d_sorted[i]) / 2)


@dataclass
class ROC:
    """A ROC curve for "similar" as the positive class.

    Attributes:
        fpr: false positive rate (dissimilar pairs called similar) per threshold.
        tpr: true positive rate (similar pairs called similar) per threshold.
        thresholds: distance thresholds, increasing.
        auc: area under the curve.
        eer: equal error rate, where the false positive rate = the false negative rate.
        eer_threshold: the threshold at the equal error rate: as many similar pairs are
            rejected as dissimilar pairs accepted, however unbalanced the pairs are.
    """

    fpr: torch.Tensor
    tpr: torch.Tensor
    thresholds: torch.Tensor
    auc: float
    eer: float
    eer_threshold: float


def roc_curve(d: torch.Tensor, y: torch.Tensor) -> ROC:
    """ROC curve, AUC and equal error rate of distances ``d`` for labels ``y`` (Y = 0 similar).

    The curve's tensors are on the device of ``d``.
    """
    y = y.to(d.device)
    if not ((y == 0).any() and (y == 1).any()):
        raise ValueError("a ROC curve needs both similar (Y=0) and dissimilar (Y=1) pairs")
    d_sorted, order = d.double().sort()
    similar = (y[order] == 0).double()
    # one point per distinct distance (the last of each run of ties): "D <= t" cannot split a
    # tie, and a tie between a similar and a dissimilar pair then counts 1/2 in the AUC
    last = torch.ones_like(d_sorted, dtype=torch.bool)
    last[:-1] = d_sorted[1:] > d_sorted[:-1]
    zero = torch.zeros(1, dtype=torch.double, device=d.device)
    tpr = torch.cat([zero, similar.cumsum(0)[last] / similar.sum()])
    fpr = torch.cat([zero, (1 - similar).cumsum(0)[last] / (1 - similar).sum()])
    below = torch.tensor([_just_below_min(d)], dtype=torch.double, device=d.device)
    thresholds = torch.cat([below, d_sorted[last]])
    auc = float(torch.trapezoid(tpr, fpr))
    fnr = 1 - tpr
    k = int((fpr - fnr).abs().argmin())
    return ROC(fpr, tpr, thresholds, auc, float((fpr[k] + fnr[k]) / 2), float(thresholds[k]))


def _just_below_min(d: torch.Tensor) -> float:
    """A threshold below every distance, exact in d's own dtype (``min - 1e-6`` rounds back
    to ``min`` in float32 for distances above about 8)."""
    d = d if d.is_floating_point() else d.double()
    lowest = d.min()
    return float(torch.nextafter(lowest, torch.full_like(lowest, -math.inf)))
