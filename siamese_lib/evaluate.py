"""How good is an embedding? Verification (same or different?) and one-shot accuracy.

Taught in chapter 4, "Embeddings, distances and thresholds" (thresholds, ROC, the
verification accuracy), and chapter 5, "One-shot learning on Omniglot" (episodes);
chapter 6, "Faces: verification of people never seen", verifies faces with it.

Every evaluation embeds each image once and then works on the embeddings: a 20-way
episode compares a query with 20 support images, and re-running the twin network
on every pair would embed the same image hundreds of times.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .distances import euclidean, pairwise_euclidean, pairwise_squared_euclidean
from .episodes import Episodes, EpisodeSampler
from .imageset import gather
from .pairs import PairSampler, all_pairs, check_pair_labels, check_whole, to_float
from .precision import autocast, memory_format, pick_device
from .train import embed as _embed_batch

Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

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

    Images may be uint8 (scaled to [0, 1]) or float. No images give no embeddings, (0, d).

    Raises:
        TypeError: ``images`` is not a tensor.
        ValueError: images of an integer type other than uint8, or a ``batch_size`` that
            is not a whole number >= 1.
    """
    batch_size = check_whole("batch_size", batch_size)
    if model is None:
        return to_float(images).flatten(1)
    device = pick_device(device)
    # leave the model as it came (device, train/eval mode, memory format): fit() calls
    # this between epochs, and a model silently left contiguous made the rest of the
    # training steps 2x slower
    was_training, old_device = model.training, _device_of(model)
    old_format = _memory_format_of(model)
    model.eval().to(device)
    layout = memory_format(device)  # as in training
    model.to(memory_format=layout)
    out = []
    # an empty set runs one empty batch: the model says its embedding size, (0, d)
    for i in range(0, max(len(images), 1), batch_size):
        x = to_float(images[i : i + batch_size]).to(device)
        x = x.contiguous(memory_format=layout) if x.dim() == 4 else x
        with autocast(device):  # bfloat16 where training uses it
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

    Raises:
        TypeError, ValueError: embeddings that are not a finite (N_images, d) float tensor
            with a row for every image the episodes index, episodes of another type or
            none, or a ``chunk`` that is not a whole number >= 1.
    """
    if isinstance(episodes, EpisodeSampler):
        episodes = episodes.sample()
    _check_episodes(embeddings, episodes)
    chunk = check_whole("chunk", chunk)
    per_episode = []
    for start in range(0, episodes.support.shape[0], chunk):
        s = gather(embeddings, episodes.support[start : start + chunk])  # (E, N, K, d)
        q_idx = episodes.query[start : start + chunk]
        q = gather(embeddings, q_idx.flatten(1))  # (E, N*Q, d)
        pred = classify_queries(s, q, similarity, rule)
        # the answers where the predictions are (the GPU, with CUDA embeddings or a GPU head)
        truth = torch.arange(q_idx.shape[1], device=pred.device).repeat_interleave(q_idx.shape[2])
        per_episode.append((pred == truth).double().mean(1))
    return mean_ci95(torch.cat(per_episode))


#: One one-shot trial set, as (support images (N, C, H, W) one per class in class order,
#: query images (M, C, H, W), each query's class (M,) as a position in the support set).
Trial = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
#: ``(model, support images) -> the model to answer that trial's queries with``.
Adapt = Callable[[nn.Module, torch.Tensor], nn.Module]


def trials_accuracy(
    model: nn.Module | None,
    trials: Iterable[Trial],
    similarity: Similarity | None = None,
    adapt: Adapt | None = None,
    device: str | torch.device | None = None,
) -> Accuracy:
    """Share of queries named right over one-shot trial sets, each with its own support set.

    Each query is named after its nearest support image (or the one ``similarity`` scores
    highest). Unlike :func:`one_shot_accuracy`, which indexes one embedding of a whole test
    set, each trial set brings its own images; with ``adapt``, each is embedded by a model
    tuned to its own support set (without, all are embedded together, in large batches).

    Args:
        model: the embedding model; ``None`` for the pixel 1-nearest-neighbour baseline.
        trials: ``(support images, query images, answers)`` for each trial set.
        similarity: a learned similarity (Koch's head); default: Euclidean distance.
        adapt: ``(model, support images) -> model`` called once per trial set, for
            test-time adaptation to its support set (:func:`siamese_lib.adapt.adapt_to_support`).
        device: where to embed.

    Returns:
        The accuracy over all queries, with its 95% confidence interval.
    """
    correct = []
    for s, q, answers in _embedded_trials(model, trials, adapt, device):
        pred = classify_queries(s[None, :, None, :], q[None], similarity)[0]
        correct.append((pred == answers.to(pred.device)).double())
    if not correct:  # else torch.cat's "expected a non-empty list of Tensors"
        raise ValueError("no trials to score: pass at least one (support, queries, answers)")
    return mean_ci95(torch.cat(correct))


def _embedded_trials(
    model: nn.Module | None, trials: Iterable[Trial], adapt: Adapt | None,
    device: str | torch.device | None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(support embeddings, query embeddings, answers) of each trial set."""
    if adapt is not None and model is not None:  # a model of its own for every trial
        for support, queries, answers in trials:
            net = adapt(model, support)
            yield (embed_images(net, support, device=device),
                   embed_images(net, queries, device=device), answers)
        return
    # one model for all: every image in a few large batches, not two small ones per trial
    trials = list(trials)
    parts = [x for support, queries, _ in trials for x in (support, queries)]
    if not parts:
        return
    embeddings = embed_images(model, torch.cat(parts), device=device).split(
        [len(x) for x in parts])
    for k, (_, _, answers) in enumerate(trials):
        yield embeddings[2 * k], embeddings[2 * k + 1], answers


def episode_trials(images: torch.Tensor, episodes: Episodes) -> Iterator[Trial]:
    """The trials of 1-shot episodes over ``images``: each episode's N support images and
    its N * Q queries, for :func:`trials_accuracy`."""
    if episodes.support.shape[2] != 1:
        raise ValueError(f"episode_trials takes 1-shot episodes, got K={episodes.support.shape[2]}")
    for support, query in zip(episodes.support[:, :, 0], episodes.query, strict=True):
        answers = torch.arange(query.shape[0]).repeat_interleave(query.shape[1])
        yield gather(images, support), gather(images, query.flatten()), answers


def lake_trials(runs: list) -> list[Trial]:
    """Lake's runs as trial sets for :func:`trials_accuracy`: each run's 20 drawings to
    learn from, its 20 queries and their answers."""
    return [(run.train, run.test, run.answers) for run in runs]


def lake_runs_accuracy(
    model: nn.Module | None,
    runs: list,
    similarity: Similarity | None = None,
    device: str | torch.device | None = None,
    adapt: Adapt | None = None,
) -> Accuracy:
    """Accuracy on Lake et al.'s 20 official 20-way one-shot runs (400 trials).

    Args:
        model: the embedding model; ``None`` for the pixel 1-nearest-neighbour baseline.
        runs: from :func:`siamese_lib.data.load_lake_runs`.
        similarity: a learned similarity (Koch's head); default: Euclidean distance.
        device: where to embed.
        adapt: test-time adaptation to each run's 20 support drawings (see
            :func:`trials_accuracy`).

    Raises:
        ValueError: no runs (an accuracy of no trials has no value).
    """
    if not len(runs):
        raise ValueError("no runs to score: pass the runs of load_lake_runs()")
    return trials_accuracy(model, lake_trials(runs), similarity, adapt, device)


# ----------------------------------------------------------------------------- verification
# Positive = similar (Y = 0). A pair is called similar when its distance is <= threshold.


def accuracy_at_threshold(d: torch.Tensor, y: torch.Tensor, threshold: float) -> float:
    """Share of pairs called right when "similar" means ``D <= threshold`` (Y = 0 similar).

    Raises:
        TypeError, ValueError: distances and labels that are not one finite distance and
            one 0/1 label per pair, or a threshold that is
            not a finite number.
    """
    _check_verification(d, y)
    _check_threshold(threshold)
    return float(((d <= threshold) == (y.to(d.device) == 0)).double().mean())


def best_threshold(d: torch.Tensor, y: torch.Tensor) -> float:
    """The threshold that maximises accuracy on these (validation) pairs.

    Candidates are the midpoints between consecutive sorted distances.
    """
    _check_verification(d, y)
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
    _check_verification(d, y)
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


def _check_verification(d: torch.Tensor, y: torch.Tensor) -> None:
    """Distances ``d`` (P,), finite, with one pair label each in ``y`` (P,), at least one pair.

    Without it, mismatched lengths either fail deep inside torch or silently pair the
    distances with the wrong labels, no pairs give a NaN accuracy, a NaN distance is
    silently called dissimilar, and a label 2 silently counts as dissimilar.
    """
    if not torch.is_tensor(d) or not torch.is_tensor(y):
        raise TypeError(f"the distances d and labels y must be tensors, got "
                        f"{type(d).__name__} and {type(y).__name__}: use torch.as_tensor(...)")
    if d.dim() != 1 or y.shape != d.shape:
        raise ValueError(f"expected distances d (P,) and pair labels y (P,), one per pair, got "
                         f"{tuple(d.shape)} and {tuple(y.shape)}")
    if not len(d):
        raise ValueError("no pairs: d and y are empty (an accuracy or threshold needs pairs)")
    if not bool(torch.isfinite(d).all()):
        raise ValueError("the distances d must be finite, got NaN or infinite values: check "
                         "the embeddings they were measured on")
    check_pair_labels(y, "pair labels y")


def _check_threshold(threshold: float) -> None:
    """A finite number (or a one-element tensor of one): NaN would call every pair dissimilar."""
    value = threshold.item() if torch.is_tensor(threshold) and threshold.numel() == 1 else threshold
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"the threshold must be a finite number, got {threshold!r}")


def _just_below_min(d: torch.Tensor) -> float:
    """A threshold below every distance, exact in d's own dtype (``min - 1e-6`` rounds back
    to ``min`` in float32 for distances above about 8)."""
    d = d if d.is_floating_point() else d.double()
    lowest = d.min()
    return float(torch.nextafter(lowest, torch.full_like(lowest, -math.inf)))


# ------------------------------------------------------------ threshold choice and its accuracy


@dataclass
class PairDistances:
    """Pairs of embedded images and their distances.

    Attributes:
        i: (P,) the first image of each pair.
        j: (P,) the second image.
        y: (P,) pair labels, Y = 0 similar, on the device of ``d``.
        d: (P,) Euclidean distances of the pairs' embeddings.
    """

    i: torch.Tensor
    j: torch.Tensor
    y: torch.Tensor
    d: torch.Tensor

    def accuracy_at(self, threshold: float) -> Accuracy:
        """Share of pairs called right when "similar" means ``D <= threshold``, with its
        95% confidence interval over the pairs (each pair a 0/1 trial)."""
        _check_threshold(threshold)
        return mean_ci95(((self.d <= threshold) == (self.y == 0)).double())


def pair_distances(
    embeddings: torch.Tensor, labels: torch.Tensor, n_pairs: int, seed: int
) -> PairDistances:
    """Draw ``n_pairs`` seeded pairs, half similar (:class:`~siamese_lib.pairs.PairSampler`),
    and measure their distances in ``embeddings`` (one row per image of ``labels``)."""
    _check_embeddings(embeddings, labels)
    if isinstance(n_pairs, bool) or not isinstance(n_pairs, numbers.Integral) or n_pairs < 1:
        raise ValueError(f"n_pairs must be a whole number >= 1, got {n_pairs!r}")
    i, j, y = PairSampler(labels, seed=seed).sample(n_pairs)
    d = euclidean(gather(embeddings, i), gather(embeddings, j))
    return PairDistances(i, j, y.to(d.device), d)  # the sampler's labels are on the CPU


@dataclass
class Verification:
    """A threshold chosen on validation pairs and the accuracy it gives on test pairs.

    Attributes:
        threshold: the validation pairs' most accurate threshold (:func:`best_threshold`).
        accuracy: the test pairs' accuracy at it, with its 95% confidence interval.
    """

    threshold: float
    accuracy: Accuracy


def verification_accuracy(val: PairDistances, test: PairDistances) -> Verification:
    """Choose the threshold on ``val``'s pairs, measure it on ``test``'s: the honest
    verification accuracy (the test pairs never choose their own threshold)."""
    for pairs in (val, test):
        if not isinstance(pairs, PairDistances):
            raise TypeError(f"expected PairDistances (from pair_distances), got a "
                            f"{type(pairs).__name__}")
    threshold = best_threshold(val.d, val.y)
    return Verification(threshold, test.accuracy_at(threshold))


@dataclass
class Calibration:
    """A verification threshold chosen on every pair of a labelled set.

    Attributes:
        threshold: the equal-error-rate threshold: as many similar pairs rejected as
            dissimilar pairs accepted, however unbalanced the pairs are.
        roc: the ROC curve of the pairs (its ``eer`` and ``auc``).
        n_pairs: how many pairs it was chosen on.
        n_similar: how many of them are similar.
    """

    threshold: float
    roc: ROC
    n_pairs: int
    n_similar: int


def calibrate_threshold(embeddings: torch.Tensor, labels: torch.Tensor) -> Calibration:
    """The equal-error-rate threshold over every pair of a labelled set of embeddings.

    Use other images than the ones you will verify: a threshold chosen on its own pairs
    flatters itself.

    Raises:
        ValueError: the embeddings are not (N, d) and finite with one label each, or the set
            has fewer than 2 classes or no class with 2 images (no similar pair).
    """
    _check_embeddings(embeddings, labels)
    labels = labels.long().to(embeddings.device)
    n_classes = int(labels.unique().numel())
    if n_classes < 2 or int(torch.bincount(labels - labels.min()).max()) < 2:
        raise ValueError(
            f"calibrating a threshold needs at least 2 classes and a class with at least 2 "
            f"images; got {n_classes} class(es) and {len(labels)} image(s)"
        )
    i, j, y = all_pairs(labels)
    roc = roc_curve(pairwise_euclidean(embeddings)[i, j], y)
    return Calibration(roc.eer_threshold, roc, len(y), int((y == 0).sum()))


def _check_embeddings(embeddings: torch.Tensor, labels: torch.Tensor) -> None:
    if not torch.is_tensor(embeddings) or not torch.is_tensor(labels):
        raise TypeError(f"expected tensors, got {type(embeddings).__name__} and "
                        f"{type(labels).__name__}")
    if embeddings.dim() != 2 or labels.shape != (embeddings.shape[0],):
        raise ValueError(f"expected embeddings (N, d) and labels (N,), got "
                         f"{tuple(embeddings.shape)} and {tuple(labels.shape)}")
    _check_finite(embeddings)


def _check_episodes(embeddings: torch.Tensor, episodes: Episodes) -> None:
    """Embeddings (N, d) with a row for every image the episodes index: a short tensor
    failed inside index_select, and NaN embeddings gave a plausible accuracy."""
    if not torch.is_tensor(embeddings):
        raise TypeError(f"expected embeddings as a tensor (N, d), e.g. from embed_images, got "
                        f"a {type(embeddings).__name__}")
    if not isinstance(episodes, Episodes):
        raise TypeError(f"expected an EpisodeSampler or Episodes, got a {type(episodes).__name__}")
    if not episodes.support.numel():
        raise ValueError("no episodes to score: draw at least one (EpisodeSampler.sample)")
    if embeddings.dim() != 2:
        raise ValueError(f"expected embeddings (N, d), one row per image, got "
                         f"{tuple(embeddings.shape)}")
    last = int(max(episodes.support.max(), episodes.query.max()))
    if last >= len(embeddings):
        raise ValueError(f"the episodes index image {last} but there are {len(embeddings)} "
                         "embeddings: embed every image of the set the episodes were drawn from")
    _check_finite(embeddings)


def _check_finite(embeddings: torch.Tensor) -> None:
    # a meta tensor (shapes only: the tests' stand-in for a GPU) has no values to check
    readable = embeddings.device.type != "meta"
    if not embeddings.is_floating_point() or (
            readable and not bool(torch.isfinite(embeddings).all())):
        raise ValueError("the embeddings must be finite floating-point numbers (NaN or inf "
                         "found, or an integer tensor): embed the images with embed_images")
