"""Protocols: several seeds pool into one accuracy, from one embedding of the test set."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from siamese_lib.config import data_root
from siamese_lib.evaluate import Accuracy
from siamese_lib.protocols import evaluate_protocols, pool


def test_pool_by_hand() -> None:
    runs = [Accuracy(0.5, 0.06, 100), Accuracy(0.7, 0.08, 100)]
    pooled = pool(runs)
    assert pooled.mean == pytest.approx(0.6)
    assert pooled.ci95 == pytest.approx(math.sqrt(0.06**2 + 0.08**2) / 2)
    assert pooled.n == 200
    assert pool(runs[:1]) == runs[0]
    with pytest.raises(ValueError, match="at least one"):
        pool([])


def test_several_seeds_pool_the_runs_of_each_seed() -> None:
    if not (data_root() / "omniglot-py" / "images_evaluation").exists():
        pytest.skip("Omniglot not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    one = [evaluate_protocols(None, ["omniglot-5way"], n_episodes=40, seed=s)["omniglot-5way"]
           for s in (3, 4)]
    both = evaluate_protocols(None, ["omniglot-5way"], n_episodes=40, seed=[3, 4])["omniglot-5way"]
    assert one[0].mean != one[1].mean  # the seeds draw different episodes
    assert both == pool(one) and both.n == 80


def test_bad_seeds_and_names() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        evaluate_protocols(None, ["omniglot-5way"], seed=[])
    with pytest.raises(KeyError, match="lake-runs"):
        evaluate_protocols(None, ["no-such-test"])


def test_protocols_on_one_test_set_embed_it_once() -> None:
    if not (data_root() / "omniglot-py" / "images_evaluation").exists():
        pytest.skip("Omniglot not found; set SIAMESE_LIB_DATA to the folder of shared/data")

    class CountingNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pool = nn.AdaptiveAvgPool2d(4)
            self.images = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.images += len(x)
            return self.pool(x).flatten(1)

    net = CountingNet()
    together = evaluate_protocols(net, ["omniglot-20way", "omniglot-5way"], n_episodes=30)
    n_images = net.images
    apart = {p: evaluate_protocols(net, [p], n_episodes=30)[p]
             for p in ("omniglot-20way", "omniglot-5way")}
    assert net.images == 3 * n_images  # one pass together, one per protocol apart
    assert together == apart


def test_mnist_verification_is_the_threshold_on_held_out_pairs_applied_to_test_pairs() -> None:
    """The protocol as it was written out by hand before evaluate.verification_accuracy:
    the same pairs (seeds s and s + 1) and the same threshold."""
    from siamese_lib.data import load_mnist
    from siamese_lib.evaluate import best_threshold, embed_images, mean_ci95
    from siamese_lib.nets import EmbeddingNet
    from siamese_lib.pairs import PairSampler

    if not (data_root() / "MNIST").exists():
        pytest.skip("MNIST not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    torch.manual_seed(0)
    net = EmbeddingNet(width=8, embedding_dim=4)
    got = evaluate_protocols(net, ["mnist-verification"], seed=[0, 1])["mnist-verification"]
    train, test = load_mnist(train=True), load_mnist(train=False)
    e_val, e_test = embed_images(net, train.images[50000:]), embed_images(net, test.images)

    def distances(e, labels, s):
        i, j, y = PairSampler(labels, seed=s).sample(10000)
        return (e[i] - e[j]).norm(dim=1), y

    runs = []
    for seed in (0, 1):
        threshold = best_threshold(*distances(e_val, train.labels[50000:], seed))
        d, y = distances(e_test, test.labels, seed + 1)
        runs.append(mean_ci95(((d <= threshold) == (y == 0)).double()))
    expected = pool(runs)
    assert got.n == expected.n == 20000
    # the helper measures D with distances.euclidean, the old code with .norm(): they may
    # differ in the last bit, which moves a pair across the threshold almost never
    assert got.mean == pytest.approx(expected.mean, abs=1 / 20000)
    assert got.ci95 == pytest.approx(expected.ci95, rel=1e-3)


def test_one_shot_trials_are_the_protocols_tests_trial_by_trial() -> None:
    from siamese_lib.evaluate import trials_accuracy
    from siamese_lib.protocols import one_shot_trials

    if not (data_root() / "MNIST" / "raw").exists() or not (
            data_root() / "omniglot-official-small").exists():
        pytest.skip("MNIST or Lake's runs not found; set SIAMESE_LIB_DATA to shared/data")
    lake = one_shot_trials("lake-runs", n_episodes=1)  # Lake's 20 runs, whatever the count
    assert len(lake) == 20 and all(len(s) == len(q) == len(a) == 20 for s, q, a in lake)
    # the pixel baseline scored trial by trial is the protocol's, on Lake's fixed trials
    assert trials_accuracy(None, lake).mean == evaluate_protocols(None, ["lake-runs"])["lake-runs"].mean
    mnist = one_shot_trials("mnist-10way", n_episodes=3, seed=1)
    assert len(mnist) == 3 and all(len(s) == len(q) == 10 for s, q, _ in mnist)
    assert all(torch.equal(a, torch.arange(10)) for _, _, a in mnist)
    with pytest.raises(KeyError, match="no trials for 'mnist-verification'"):
        one_shot_trials("mnist-verification", 3)


def test_a_net_of_larger_images_meets_the_tests_at_its_own_size() -> None:
    from siamese_lib.nets import EmbeddingNet
    from siamese_lib.protocols import one_shot_trials

    if not (data_root() / "MNIST" / "raw").exists() or not (
            data_root() / "omniglot-official-small").exists():
        pytest.skip("MNIST or Lake's runs not found; set SIAMESE_LIB_DATA to shared/data")
    net = EmbeddingNet(input_size=56, width=4, embedding_dim=4, stem_stride=2).eval()
    # a 28 x 28 batch would raise in the net: every test must load its images at 56
    results = evaluate_protocols(net, ["lake-runs", "mnist-10way"], n_episodes=5)
    assert results["lake-runs"].n == 400 and results["mnist-10way"].n == 5
    support, query, _ = one_shot_trials("mnist-10way", 2, size=56)[0]
    assert support.shape[-2:] == query.shape[-2:] == (56, 56)
    small = one_shot_trials("mnist-10way", 2)[0][0]
    # enlarged MNIST: the same digits, bilinear, so its mean ink stays about the same
    assert abs(support.float().mean() - small.float().mean()) < 3
