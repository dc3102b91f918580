"""The standard one-shot tests, by name, so every page and benchmark runs them the same way.

Taught in chapter 5, "One-shot learning on Omniglot" (Lake's runs, the Vinyals split);
chapter 7 and the results page compare every model on them.

Each protocol embeds its images once with the model, draws its episodes with fixed
seeds (the same episodes for every model) and returns an :class:`~siamese_lib.evaluate.Accuracy`
with its 95% confidence interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from . import data as datasets
from .episodes import EpisodeSampler
from .evaluate import (
    Accuracy,
    Similarity,
    Trial,
    embed_images,
    episode_trials,
    lake_runs_accuracy,
    lake_trials,
    one_shot_accuracy,
    pair_distances,
    verification_accuracy,
)
from .nets import input_shape

#: The side of the test images for raw pixels and for nets that do not say theirs.
DEFAULT_SIZE = 28


@dataclass(frozen=True)
class Protocol:
    """A named test: what it measures and how.

    Attributes:
        name: short key, e.g. "lake-runs".
        description: the protocol in words, for tables.
        run: ``(embedded test sets, similarity, n_episodes, seeds) -> Accuracy``;
            one set of episodes (or pairs) per seed, the images embedded once.
    """

    name: str
    description: str
    run: Callable[[EmbeddedTestSets, Similarity | None, int, Sequence[int]], Accuracy]


class EmbeddedTestSets:
    """One model's embeddings of the test sets, each set embedded at most once.

    Protocols on the same images (20- and 5-way, say) share them within one
    :func:`evaluate_protocols` call, which hands one of these to every protocol it runs.
    The images come at the size the net takes (28 x 28 unless it says otherwise, see
    :func:`~siamese_lib.nets.input_shape`), so a net trained on larger images meets the
    same test characters at its own resolution.

    Args:
        net: the embedding net, or None for raw pixels (kept as ``.net``).
    """

    def __init__(self, net: nn.Module | None) -> None:
        self.net = net  # None: raw pixels
        shape = input_shape(net)
        self.size = DEFAULT_SIZE if shape is None else shape[1]
        self._sets: dict[Callable[[int], datasets.ImageSet], tuple[datasets.ImageSet, torch.Tensor]] = {}

    def __call__(self, load: Callable[[int], datasets.ImageSet]) -> tuple[datasets.ImageSet, torch.Tensor]:
        """The images ``load`` returns at the net's size, and their embeddings."""
        if load not in self._sets:
            images = load(self.size)
            self._sets[load] = images, embed_images(self.net, images.images)
        return self._sets[load]


def pool(accuracies: Sequence[Accuracy]) -> Accuracy:
    """One accuracy from independent, equal-sized runs: their mean, and the confidence
    interval of the mean over all their episodes together."""
    k = len(accuracies)
    if k == 0:
        raise ValueError("pool needs at least one accuracy")
    mean = sum(a.mean for a in accuracies) / k
    ci95 = math.sqrt(sum(a.ci95**2 for a in accuracies)) / k
    return Accuracy(mean, ci95, sum(a.n for a in accuracies))


def _episodes(
    load: Callable[[int], datasets.ImageSet], n_way: int, same_group: bool = False
) -> Callable[[EmbeddedTestSets, Similarity | None, int, Sequence[int]], Accuracy]:
    def run(embedded, similarity, n_episodes, seeds):
        images, embeddings = embedded(load)
        return pool([
            one_shot_accuracy(embeddings, EpisodeSampler(
                images.labels, n_way, 1, 1, n_episodes, seed=seed, groups=images.groups,
                same_group=same_group), similarity)
            for seed in seeds
        ])

    return run


def _lake(embedded, similarity, n_episodes, seeds):
    # 400 fixed trials: every seed would draw the same ones
    return lake_runs_accuracy(embedded.net, datasets.load_lake_runs(embedded.size), similarity)


def _mnist_verification(embedded, similarity, n_episodes, seeds, n_pairs: int = 10000):
    """Threshold on pairs of held-out training digits, accuracy on pairs of test digits."""
    if embedded.net is None or similarity is not None:
        raise ValueError("MNIST verification needs a distance model (not pixels or a Koch head)")
    val = _test_set("mnist-validation")(embedded.size)
    val_labels, e_val = val.labels, embed_images(embedded.net, val.images)
    test, e_test = embedded(_mnist_test)  # shared with mnist-10way

    runs = [
        verification_accuracy(pair_distances(e_val, val_labels, n_pairs, seed),
                              pair_distances(e_test, test.labels, n_pairs, seed + 1)).accuracy
        for seed in seeds
    ]
    return pool(runs)


def _test_set(name: str) -> Callable[[int], datasets.ImageSet]:
    """``size -> images`` of a named data set; MNIST, stored at 28 x 28 only, is enlarged
    (bilinear) for a net that takes larger images."""
    def load(size: int) -> datasets.ImageSet:
        if datasets.DATASETS[name].resizable:
            return datasets.load_dataset(name, size)
        images = datasets.load_dataset(name)
        if images.images.shape[-1] == size:
            return images
        big = nn.functional.interpolate(images.images.float(), size=(size, size),
                                         mode="bilinear", align_corners=False)
        return replace(images, images=big.round().clamp(0, 255).to(torch.uint8))

    return load


_evaluation = _test_set("omniglot-evaluation")
_vinyals_test = _test_set("omniglot-vinyals-test")
_mnist_test = _test_set("mnist-test")


#: The standard one-shot tests, by name; run them with :func:`evaluate_protocols`.
PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol("lake-runs", "Lake's 20 official runs: 20-way 1-shot within an alphabet, "
                 "400 trials", _lake),
        Protocol("omniglot-20way", "20-way 1-shot, Omniglot evaluation alphabets mixed",
                 _episodes(_evaluation, 20)),
        Protocol("omniglot-5way", "5-way 1-shot, Omniglot evaluation alphabets mixed",
                 _episodes(_evaluation, 5)),
        Protocol("omniglot-20way-within", "20-way 1-shot within one evaluation alphabet",
                 _episodes(_evaluation, 20, same_group=True)),
        Protocol("vinyals-20way", "20-way 1-shot, Vinyals test classes (rotations)",
                 _episodes(_vinyals_test, 20)),
        Protocol("vinyals-5way", "5-way 1-shot, Vinyals test classes (rotations)",
                 _episodes(_vinyals_test, 5)),
        Protocol("mnist-10way", "10-way 1-shot on MNIST test digits", _episodes(_mnist_test, 10)),
        Protocol("mnist-verification", "MNIST same/different on test pairs, threshold from "
                 "held-out training digits", _mnist_verification),
    ]
}


#: The episode tests :func:`one_shot_trials` draws trials of: their images and N.
_TRIAL_SETS: dict[str, tuple[Callable[[int], datasets.ImageSet], int]] = {
    "omniglot-20way": (_evaluation, 20), "omniglot-5way": (_evaluation, 5),
    "vinyals-20way": (_vinyals_test, 20), "vinyals-5way": (_vinyals_test, 5),
    "mnist-10way": (_mnist_test, 10),
}


def one_shot_trials(name: str, n_episodes: int, seed: int = 0,
                    size: int = DEFAULT_SIZE) -> list[Trial]:
    """A test's trial sets for :func:`~siamese_lib.evaluate.trials_accuracy`: Lake's 20
    runs, or ``n_episodes`` seeded 1-shot, 1-query episodes of an episode test, with
    images ``size`` x ``size`` (the episodes are the same whatever the size).

    Raises:
        KeyError: a test that is neither Lake's runs nor an episode test of mixed classes.
    """
    if name == "lake-runs":
        return lake_trials(datasets.load_lake_runs(size))
    if name not in _TRIAL_SETS:
        raise KeyError(f"no trials for {name!r}; known: {sorted(['lake-runs', *_TRIAL_SETS])}")
    load, n_way = _TRIAL_SETS[name]
    images = load(size)
    episodes = EpisodeSampler(images.labels, n_way, 1, 1, n_episodes, seed=seed).sample()
    return list(episode_trials(images.images, episodes))


def evaluate_protocols(
    net: nn.Module | None,
    names: Iterable[str],
    similarity: Similarity | None = None,
    n_episodes: int = 1000,
    seed: int | Sequence[int] = 0,
) -> dict[str, Accuracy]:
    """Run the named protocols on one model (``net=None``: the pixel 1-nearest-neighbour baseline).

    Each test set is embedded once, however many of the named protocols use it. ``seed``
    may be several seeds: each draws its own ``n_episodes`` episodes (or pairs) from that one
    embedding, and the results are pooled (see :func:`pool`).
    """
    seeds = (seed,) if isinstance(seed, int) else tuple(seed)
    if not seeds:
        raise ValueError("seed must be an int or a non-empty sequence of ints")
    embedded, results = EmbeddedTestSets(net), {}
    for name in names:
        if name not in PROTOCOLS:
            raise KeyError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}")
        results[name] = PROTOCOLS[name].run(embedded, similarity, n_episodes, seeds)
    return results
