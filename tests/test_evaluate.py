"""Evaluation: one-shot accuracy, confidence intervals, thresholds and ROC against hand results."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from siamese_lib.classifier import predict_classes
from siamese_lib.data import LakeRun
from siamese_lib.distances import pairwise_euclidean
from siamese_lib.episodes import Episodes, EpisodeSampler
from siamese_lib.evaluate import (
    accuracy_at_threshold,
    best_threshold,
    calibrate_threshold,
    classify_queries,
    embed_images,
    lake_runs_accuracy,
    mean_ci95,
    one_shot_accuracy,
    pair_distances,
    roc_curve,
    verification_accuracy,
)
from siamese_lib.losses import KochLoss
from siamese_lib.nets import EmbeddingNet
from siamese_lib.pairs import PairSampler, all_pairs

# ---------------------------------------------------------------------------- one-shot


def test_perfectly_separated_clusters_give_full_accuracy() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(6).repeat(5)
    centres = torch.eye(6) * 10
    embeddings = centres[labels] + 0.1 * torch.randn(len(labels), 6, generator=g)
    sampler = EpisodeSampler(labels, n_way=5, k_shot=1, n_query=3, n_episodes=40, seed=0)
    for rule in ("nearest", "prototype"):
        acc = one_shot_accuracy(embeddings, sampler, rule=rule)
        assert acc.mean == 1.0 and acc.ci95 == 0.0 and acc.n == 40


def confusable_episodes() -> tuple[torch.Tensor, Episodes]:
    # 1-d embeddings; image index -> position
    embeddings = torch.tensor([[0.0], [10.0], [1.0], [6.0], [9.0], [8.0], [4.0], [5.5]])
    support = torch.tensor([[[0], [1]], [[0], [1]]])  # class 0 at 0, class 1 at 10
    query = torch.tensor(
        [
            [[2, 3], [4, 5]],  # class 0: 1 (right), 6 (wrong: nearer 10); class 1: 9, 8 right
            [[2, 6], [7, 4]],  # class 0: 1, 4 right; class 1: 5.5 right (5.5 > 5), 9 right
        ]
    )
    return embeddings, Episodes(support=support, query=query)


def test_one_shot_accuracy_on_confusable_case() -> None:
    embeddings, episodes = confusable_episodes()
    acc = one_shot_accuracy(embeddings, episodes)
    per_episode = [3 / 4, 4 / 4]
    mean = sum(per_episode) / 2
    sd = math.sqrt(sum((a - mean) ** 2 for a in per_episode) / (2 - 1))
    assert acc.mean == pytest.approx(mean)
    assert acc.ci95 == pytest.approx(1.96 * sd / math.sqrt(2))
    assert acc.n == 2
    # scoring in chunks changes nothing
    assert one_shot_accuracy(embeddings, episodes, chunk=1) == acc


def test_mean_ci95_by_hand() -> None:
    acc = mean_ci95(torch.tensor([0.0, 1.0, 1.0, 1.0]))
    # mean 3/4; unbiased sd = sqrt((0.75^2 + 3 * 0.25^2) / 3) = 0.5; 1.96 * 0.5 / sqrt(4)
    assert acc.mean == pytest.approx(0.75)
    assert acc.ci95 == pytest.approx(0.49)
    assert acc.n == 4
    assert str(acc) == "75.0 ± 49.0% (n=4)"
    assert acc.percent(2) == "75.00 ± 49.00"
    single = mean_ci95(torch.tensor([1.0]))
    assert (single.mean, single.ci95, single.n) == (1.0, 0.0, 1)


def test_nearest_and_prototype_rules_differ() -> None:
    # class 0 support at 0 and 10 (mean 5), class 1 at 3 and 4 (mean 3.5); query at 1
    support = torch.tensor([[[[0.0], [10.0]], [[3.0], [4.0]]]])  # (E=1, N=2, K=2, d=1)
    query = torch.tensor([[[1.0]]])  # (E=1, M=1, d=1)
    assert classify_queries(support, query, rule="nearest").tolist() == [[0]]  # 1 from 0
    assert classify_queries(support, query, rule="prototype").tolist() == [[1]]  # 2.5 vs 4
    with pytest.raises(ValueError, match="rule must be 'nearest' or 'prototype'"):
        classify_queries(support, query, rule="vote")


def test_classify_queries_with_learned_similarity_matches_hand_loop() -> None:
    torch.manual_seed(0)
    head = KochLoss(3)
    support = torch.randn(2, 4, 2, 3)  # E=2, N=4, K=2
    query = torch.randn(2, 5, 3)
    with torch.no_grad():
        pred = classify_queries(support, query, head.similarity)
        for e in range(2):
            for m in range(5):
                best = max(
                    (float(head.similarity(query[e, m], support[e, n, k])), n)
                     for n in range(4) for k in range(2)
                )
                assert pred[e, m].item() == best[1]


def test_default_similarity_is_nearest_euclidean() -> None:
    torch.manual_seed(1)
    support, query = torch.randn(3, 5, 1, 4), torch.randn(3, 6, 4)
    pred = classify_queries(support, query)
    d = torch.cdist(query, support[:, :, 0])  # (E, M, N)
    assert torch.equal(pred, d.argmin(-1))


# ------------------------------------------------------------------ predicting new images


def points(*xs: float) -> torch.Tensor:
    """1-d "images" (N, 1, 1, 1): with model=None the embedding is the pixel value."""
    return torch.tensor(xs).reshape(-1, 1, 1, 1)


def test_predict_classes_by_hand_with_uneven_support() -> None:
    # class 0: one image at 0; class 1: images at 3 and 10 (mean 6.5); class 2: one at 20
    support, labels = points(3.0, 0.0, 20.0, 10.0), torch.tensor([1, 0, 2, 1])
    queries = points(1.0, 9.0, 2.0, 14.0)
    nearest = predict_classes(None, support, labels, queries)
    assert nearest.labels.tolist() == [0, 1, 1, 1]
    # scores are -D to each class's nearest support image; 14 is 4 from 10 and 6 from 20
    assert nearest.scores[3].tolist() == pytest.approx([-14.0, -4.0, -6.0])
    prototype = predict_classes(None, support, labels, queries, rule="prototype")
    # 2 is nearer 3 (class 1) but nearer the mean 0 than 6.5; 14 is nearer 20 than 6.5
    assert prototype.labels.tolist() == [0, 1, 0, 2]
    assert prototype.scores[2].tolist() == pytest.approx([-2.0, -4.5, -18.0])


def test_predict_classes_agrees_with_episode_classification() -> None:
    torch.manual_seed(0)
    net = EmbeddingNet(width=8, embedding_dim=6, input_size=16).eval()
    support = torch.rand(5, 2, 1, 16, 16)  # 5 classes, 2 shots
    queries = torch.rand(7, 1, 16, 16)
    labels = torch.arange(5).repeat_interleave(2)
    head = KochLoss(6).eval()
    with torch.no_grad():
        s = embed_images(net, support.flatten(0, 1)).reshape(1, 5, 2, 6)
        q = embed_images(net, queries)[None]
        for similarity in (None, head.similarity):
            for rule in ("nearest", "prototype"):
                if similarity is not None and rule == "prototype":
                    continue
                want = classify_queries(s, q, similarity, rule)[0]
                got = predict_classes(net, support.flatten(0, 1), labels, queries,
                                      similarity, rule)
                assert torch.equal(got.labels, want), (similarity, rule)


def test_predict_classes_says_what_is_wrong() -> None:
    support, queries = points(0.0, 1.0), points(0.5)
    with pytest.raises(ValueError, match="one label per support image, got 3 labels for 2"):
        predict_classes(None, support, torch.tensor([0, 1, 1]), queries)
    with pytest.raises(ValueError, match=r"0..C-1 with every class present, got \[0, 2\]"):
        predict_classes(None, support, torch.tensor([0, 2]), queries)
    with pytest.raises(ValueError, match="rule must be"):
        predict_classes(None, support, torch.tensor([0, 1]), queries, rule="vote")


# ---------------------------------------------------------------------------- Lake runs


def fake_run(g: torch.Generator, swap: bool = False) -> LakeRun:
    train = torch.randint(0, 256, (20, 1, 16, 16), generator=g, dtype=torch.uint8)
    perm = torch.randperm(20, generator=g)
    answers = perm.clone()
    if swap:  # two answers wrong
        answers[[0, 1]] = answers[[1, 0]]
    return LakeRun(train=train, test=train[perm].clone(), answers=answers)


def test_lake_runs_pixel_baseline_on_permuted_copies() -> None:
    g = torch.Generator().manual_seed(0)
    runs = [fake_run(g), fake_run(g)]
    acc = lake_runs_accuracy(None, runs)
    assert acc.mean == 1.0 and acc.n == 40
    # one run with two wrong answers: 38 of 40 trials right
    acc = lake_runs_accuracy(None, [fake_run(g), fake_run(g, swap=True)])
    assert acc.mean == pytest.approx(38 / 40)
    p = 38 / 40
    sd = math.sqrt(40 * p * (1 - p) / 39)  # unbiased sd of 38 ones and 2 zeros
    assert acc.ci95 == pytest.approx(1.96 * sd / math.sqrt(40))


def test_lake_runs_with_a_model() -> None:
    torch.manual_seed(0)
    net = EmbeddingNet(input_size=16, width=8, embedding_dim=4)
    acc = lake_runs_accuracy(net, [fake_run(torch.Generator().manual_seed(1))], device="cpu")
    assert acc.mean == 1.0 and acc.n == 20


def test_embed_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAMESE_LIB_BF16", "0")  # exact float32 comparison below
    torch.manual_seed(0)
    images = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8)
    pixels = embed_images(None, images)
    assert pixels.shape == (5, 256) and pixels.dtype == torch.float32
    torch.testing.assert_close(pixels, images.flatten(1).float() / 255)
    net = EmbeddingNet(input_size=16, width=8, embedding_dim=4).train()
    out = embed_images(net, images, batch_size=2, device="cpu")
    assert net.training  # mode restored
    with torch.no_grad():
        expected = net.eval()(images.float() / 255)
    torch.testing.assert_close(out, expected)


def test_embed_images_in_bfloat16_is_close_to_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    images = torch.rand(8, 1, 16, 16)
    net = EmbeddingNet(input_size=16, width=8, embedding_dim=4)
    monkeypatch.setenv("SIAMESE_LIB_BF16", "0")
    full = embed_images(net, images, device="cpu")
    monkeypatch.setenv("SIAMESE_LIB_BF16", "1")
    half = embed_images(net, images, device="cpu")
    assert half.dtype == torch.float32  # distances are always computed in float32
    assert not torch.equal(half, full)  # it did run in bfloat16 ...
    torch.testing.assert_close(half, full, rtol=0.05, atol=0.02)  # ... to about 2 digits


def test_embed_images_leaves_the_model_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAMESE_LIB_CHANNELS_LAST", "0")  # embed contiguous ...
    net = EmbeddingNet(input_size=16, width=8, embedding_dim=4)
    net.to(memory_format=torch.channels_last)  # ... a model that trains channels-last
    embed_images(net, torch.rand(3, 1, 16, 16), device="cpu")
    convs = [p for p in net.parameters() if p.dim() == 4 and p.shape[1] > 1]
    assert convs and all(
        p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs
    )


# --------------------------------------------------------------------------- thresholds


def test_accuracy_at_threshold_by_hand() -> None:
    d = torch.tensor([1.0, 2.0, 3.0])
    y = torch.tensor([0, 1, 0])
    assert accuracy_at_threshold(d, y, 2.5) == pytest.approx(1 / 3)  # [T, T, F] vs [T, F, T]
    assert accuracy_at_threshold(d, y, 3.0) == pytest.approx(2 / 3)  # D <= t is "similar"
    assert accuracy_at_threshold(d, y, 0.5) == pytest.approx(1 / 3)


def brute_force_best(d: list[float], y: list[int]) -> float:
    values = sorted(set(d))
    candidates = [values[0] - 1, values[-1] + 1, *values]
    candidates += [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)]
    dt, yt = torch.tensor(d, dtype=torch.float64), torch.tensor(y)
    return max(accuracy_at_threshold(dt, yt, t) for t in candidates)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 6), st.integers(0, 1)), min_size=1, max_size=25),
    st.sampled_from([0.5, 1.0, 1.7]),
)
def test_best_threshold_maximises_accuracy(pairs, scale) -> None:
    # integer distances (scaled): ties are common, as with identical images
    d = [a * scale for a, _ in pairs]
    y = [b for _, b in pairs]
    t = best_threshold(torch.tensor(d), torch.tensor(y))
    got = accuracy_at_threshold(torch.tensor(d), torch.tensor(y), t)
    assert got == pytest.approx(brute_force_best(d, y))


def test_best_threshold_on_separable_data_is_between_groups() -> None:
    d = torch.tensor([0.1, 0.3, 0.2, 0.9, 0.7])
    y = torch.tensor([0, 0, 0, 1, 1])
    t = best_threshold(d, y)
    assert 0.3 < t < 0.7
    assert t == pytest.approx(0.5)  # the midpoint of 0.3 and 0.7


@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_best_threshold_all_dissimilar_calls_nothing_similar(scale: float) -> None:
    # float32 distances: the threshold below the smallest must stay below it in float32 too
    d, y = torch.tensor([0.5, 1.0]) * scale, torch.tensor([1, 1])
    t = best_threshold(d, y)
    assert t < 0.5 * scale
    assert accuracy_at_threshold(d, y, t) == 1.0
    assert roc_curve(torch.tensor([0.5, 1.0]) * scale, torch.tensor([0, 1])).thresholds[0] < 0.5 * scale


# ---------------------------------------------------------------------------------- ROC


def mann_whitney(d: list[float], y: list[int]) -> float:
    similar = [a for a, b in zip(d, y, strict=True) if b == 0]
    dissimilar = [a for a, b in zip(d, y, strict=True) if b == 1]
    wins = sum((s < x) + 0.5 * (s == x) for s in similar for x in dissimilar)
    return wins / (len(similar) * len(dissimilar))


def test_roc_perfectly_separated() -> None:
    d = torch.tensor([0.1, 0.5, 0.2, 2.0, 3.0, 1.0])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    roc = roc_curve(d, y)
    assert roc.auc == pytest.approx(1.0)
    assert roc.eer == pytest.approx(0.0)
    assert roc.fpr[0] == 0 and roc.tpr[0] == 0 and roc.fpr[-1] == 1 and roc.tpr[-1] == 1
    assert (roc.fpr.diff() >= 0).all() and (roc.tpr.diff() >= 0).all()
    assert (roc.thresholds.diff() > 0).all()


def test_roc_reversed_is_zero() -> None:
    roc = roc_curve(torch.tensor([5.0, 6.0, 1.0, 2.0]), torch.tensor([0, 0, 1, 1]))
    assert roc.auc == pytest.approx(0.0)


def test_roc_random_is_about_half() -> None:
    g = torch.Generator().manual_seed(0)
    d = torch.rand(20000, generator=g)
    y = torch.randint(0, 2, (20000,), generator=g)
    assert roc_curve(d, y).auc == pytest.approx(0.5, abs=0.02)


def test_roc_auc_equals_mann_whitney_by_hand() -> None:
    d = [0.3, 1.2, 0.8, 2.5, 0.9, 1.7, 0.2]
    y = [0, 1, 0, 1, 1, 0, 1]
    # similar 0.3, 0.8, 1.7 against dissimilar 1.2, 2.5, 0.9, 0.2:
    # 0.3 beats 3, 0.8 beats 3, 1.7 beats 1 -> 7 of 12
    assert mann_whitney(d, y) == pytest.approx(7 / 12)
    assert roc_curve(torch.tensor(d), torch.tensor(y)).auc == pytest.approx(7 / 12)


def test_roc_auc_counts_ties_as_half() -> None:
    d = torch.tensor([1.0, 1.0, 2.0, 2.0])
    y = torch.tensor([0, 1, 0, 1])
    # pairs (similar, dissimilar): (1,1) tie, (1,2) win, (2,1) loss, (2,2) tie -> 2 / 4
    assert roc_curve(d, y).auc == pytest.approx(0.5)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), min_size=2, max_size=30))
def test_roc_auc_equals_mann_whitney(pairs) -> None:
    y = [b for _, b in pairs]
    if len(set(y)) < 2:
        y[0] = 1 - y[0]  # both kinds of pair
    d = [float(a) for a, _ in pairs]
    roc = roc_curve(torch.tensor(d), torch.tensor(y))
    assert roc.auc == pytest.approx(mann_whitney(d, y))
    # every point of the curve is reachable with a threshold "D <= t"
    dt, yt = torch.tensor(d), torch.tensor(y)
    for t, fpr, tpr in zip(roc.thresholds, roc.fpr, roc.tpr, strict=True):
        called = dt <= t
        assert float(called[yt == 0].double().mean()) == pytest.approx(float(tpr))
        assert float(called[yt == 1].double().mean()) == pytest.approx(float(fpr))


def test_equal_error_rate_constructed() -> None:
    # similar 1, 2, 3, 6; dissimilar 4, 5, 7, 8. For 4 <= t < 5: one similar pair (6) missed
    # (FNR 1/4) and one dissimilar pair (4) accepted (FPR 1/4): the two rates meet at 1/4.
    d = torch.tensor([1.0, 2.0, 3.0, 6.0, 4.0, 5.0, 7.0, 8.0])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    roc = roc_curve(d, y)
    assert roc.eer == pytest.approx(0.25)
    assert roc.eer_threshold == 4.0  # D <= 4: accepts 1, 2, 3 and the dissimilar 4
    accepted = d <= roc.eer_threshold
    assert float(accepted[y == 1].double().mean()) == float((~accepted[y == 0]).double().mean())


def test_roc_needs_both_kinds() -> None:
    with pytest.raises(ValueError, match="needs both similar"):
        roc_curve(torch.tensor([1.0, 2.0]), torch.tensor([0, 0]))


def test_predict_classes_with_a_learned_head_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from siamese_lib import classifier

    torch.manual_seed(2)
    head = KochLoss(5).eval()
    support, queries = torch.randn(6, 5), torch.randn(9, 5)  # already embeddings: model=None
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    whole = predict_classes(None, support, labels, queries, head.similarity)
    monkeypatch.setattr(classifier, "_PAIR_ELEMENTS", 1)  # one query per call of the head
    chunked = predict_classes(None, support, labels, queries, head.similarity)
    assert torch.equal(whole.labels, chunked.labels)
    assert torch.allclose(whole.scores, chunked.scores)
    with torch.no_grad():  # and the scores are the head's, best per class
        by_hand = head.similarity(queries[:, None, :], support[None, :, :])
    for c in range(3):
        assert torch.allclose(whole.scores[:, c], by_hand[:, labels == c].amax(1))


# ------------------------------------------------------- threshold choice and its accuracy


def clustered(n_classes: int = 6, per_class: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    centres = 3 * torch.randn(n_classes, 8, generator=g)
    return centres[labels] + torch.randn(len(labels), 8, generator=g), labels


def test_verification_is_what_the_chapters_computed_by_hand() -> None:
    """Chapters 4 and 6 and the MNIST protocol each drew pairs, measured D, chose the
    threshold on validation pairs and scored test pairs; the helpers give the same numbers."""
    (z_val, l_val), (z_test, l_test) = clustered(seed=1), clustered(seed=2)
    val, test = pair_distances(z_val, l_val, 200, seed=1), pair_distances(z_test, l_test, 300, seed=2)
    i, j, y = PairSampler(l_val, seed=1).sample(200)
    assert torch.equal(val.i, i) and torch.equal(val.j, j) and torch.equal(val.y, y)
    torch.testing.assert_close(val.d, (z_val[i] - z_val[j]).norm(dim=1))
    tau = best_threshold(val.d, val.y)
    result = verification_accuracy(val, test)
    assert result.threshold == tau
    by_hand = mean_ci95(((test.d <= tau) == (test.y == 0)).double())
    assert result.accuracy == by_hand == test.accuracy_at(tau)
    assert result.accuracy.mean == accuracy_at_threshold(test.d, test.y, tau)
    assert result.accuracy.n == 300 and 0 < result.accuracy.ci95 < 1


def test_calibrate_threshold_is_the_equal_error_rate_of_every_pair() -> None:
    z, labels = clustered()
    cal = calibrate_threshold(z, labels)
    i, j, y = all_pairs(labels)
    roc = roc_curve(pairwise_euclidean(z)[i, j], y)
    assert cal.threshold == roc.eer_threshold and cal.roc.auc == roc.auc
    assert cal.n_pairs == 30 * 29 // 2 and cal.n_similar == 6 * (5 * 4 // 2)


@pytest.mark.parametrize(
    ("embeddings", "labels", "fragment"),
    [
        (torch.randn(4, 3), torch.zeros(4), "at least 2 classes"),
        (torch.randn(3, 3), torch.arange(3), "a class with at least 2 images"),
        (torch.randn(0, 3), torch.zeros(0), "at least 2 classes"),
        (torch.randn(4), torch.arange(4), "expected embeddings \\(N, d\\)"),
        (torch.randn(4, 3), torch.arange(3), "expected embeddings \\(N, d\\) and labels \\(N,\\)"),
        (torch.tensor([[0.0], [math.nan], [1.0], [2.0]]), torch.tensor([0, 0, 1, 1]), "finite"),
        (torch.ones(4, 3, dtype=torch.long), torch.tensor([0, 0, 1, 1]), "floating-point"),
    ],
)
def test_calibrate_threshold_says_what_is_wrong(embeddings, labels, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        calibrate_threshold(embeddings, labels)


def test_calibrate_threshold_wants_tensors() -> None:
    with pytest.raises(TypeError, match="expected tensors, got list and Tensor"):
        calibrate_threshold([[0.0], [1.0]], torch.tensor([0, 1]))  # type: ignore[arg-type]


def test_pair_helpers_say_what_is_wrong() -> None:
    z, labels = clustered()
    for n_pairs in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_pairs must be a whole number >= 1"):
            pair_distances(z, labels, n_pairs, seed=0)
    with pytest.raises(ValueError, match="finite floating-point"):
        pair_distances(z * math.inf, labels, 10, seed=0)
    pairs = pair_distances(z, labels, 10, seed=0)
    for threshold in (math.nan, math.inf, "1"):
        with pytest.raises(ValueError, match="the threshold must be a finite number"):
            pairs.accuracy_at(threshold)
    with pytest.raises(TypeError, match="expected PairDistances"):
        verification_accuracy(pairs, (pairs.d, pairs.y))


_D, _Y = torch.tensor([0.1, 0.5, 0.9, 1.2]), torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("verify", [
    lambda d, y: accuracy_at_threshold(d, y, 0.5), best_threshold, roc_curve])
@pytest.mark.parametrize(("d", "y", "error", "message"), [
    # before: NaN accuracy / a torch.min error / "needs both similar"
    (torch.empty(0), torch.empty(0), ValueError, "no pairs: d and y are empty"),
    # before: a torch size or index error, or (y longer) a silent answer from the wrong labels
    (_D, _Y[:3], ValueError, r"expected distances d \(P,\) and pair labels y \(P,\), one per "
                             r"pair, got \(4,\) and \(3,\)"),
    (_D[:3], _Y, ValueError, r"pair labels y \(P,\).* got \(3,\) and \(4,\)"),
    (_D[:, None], _Y, ValueError, r"expected distances d \(P,\).* got \(4, 1\) and \(4,\)"),
    # before: a NaN or infinite distance was silently called dissimilar
    (torch.tensor([0.1, math.nan, 0.9, 1.2]), _Y, ValueError, "the distances d must be finite"),
    (torch.tensor([0.1, math.inf, 0.9, 1.2]), _Y, ValueError, "the distances d must be finite"),
    # before: a label 2 or 0.5 silently counted as dissimilar
    (_D, torch.tensor([0, 2, 1, 1]), ValueError,
     r"pair labels y must be 0 \(similar\) or 1 \(dissimilar\), got \[2\]"),
    (_D, torch.tensor([0, 0.5, 1, 1]), ValueError, r"pair labels y must be 0 .* got \[0.5\]"),
    # before: an AttributeError from inside
    ([0.1, 0.9], [0, 1], TypeError, "the distances d and labels y must be tensors, got list and "
                                    r"list: use torch.as_tensor"),
])
def test_verification_functions_say_what_is_wrong(verify, d, y, error, message) -> None:
    with pytest.raises(error, match=message):
        verify(d, y)


@pytest.mark.parametrize("threshold", [math.nan, math.inf, "0.5", None])
def test_accuracy_at_threshold_refuses_a_threshold_that_is_not_a_finite_number(threshold) -> None:
    # before: NaN called every pair dissimilar and gave an accuracy (0.5 here)
    with pytest.raises(ValueError, match="the threshold must be a finite number, got"):
        accuracy_at_threshold(_D, _Y, threshold)
    assert accuracy_at_threshold(_D, _Y, torch.tensor(0.7)) == 1.0  # a 0-d tensor still works


@pytest.mark.parametrize(("embeddings", "episodes", "chunk", "error", "message"), [
    # before: "not enough values to unpack (expected 4, got 3)"
    (lambda z: z[:, 0], lambda e: e, 256, ValueError,
     r"expected embeddings \(N, d\), one row per image, got \(8,\)"),
    # before: "index out of range in self" from inside index_select
    (lambda z: z[:5], lambda e: e, 256, ValueError,
     "the episodes index image 7 but there are 5 embeddings: embed every image"),
    # before: a plausible accuracy from NaN embeddings
    (lambda z: z * math.nan, lambda e: e, 256, ValueError,
     "the embeddings must be finite floating-point numbers"),
    # before: AttributeErrors from inside
    (lambda z: z.tolist(), lambda e: e, 256, TypeError,
     r"expected embeddings as a tensor \(N, d\), e.g. from embed_images, got a list"),
    (lambda z: z, lambda e: [e.support, e.query], 256, TypeError,
     "expected an EpisodeSampler or Episodes, got a list"),
    # before: "torch.cat(): expected a non-empty list of Tensors"
    (lambda z: z, lambda e: Episodes(e.support[:0], e.query[:0]), 256, ValueError,
     "no episodes to score: draw at least one"),
    # before: range()'s "arg 3 must not be zero" and a torch.cat error
    (lambda z: z, lambda e: e, 0, ValueError, "chunk must be a whole number >= 1, got 0"),
    (lambda z: z, lambda e: e, 1.5, ValueError, "chunk must be a whole number >= 1, got 1.5"),
])
def test_one_shot_accuracy_says_what_is_wrong(embeddings, episodes, chunk, error, message) -> None:
    z, e = confusable_episodes()
    with pytest.raises(error, match=message):
        one_shot_accuracy(embeddings(z), episodes(e), chunk=chunk)


@pytest.mark.parametrize(("images", "batch_size", "error", "message"), [
    # before: int64 pixels 0..255 were embedded as floats 255 times too bright
    (torch.randint(0, 256, (2, 1, 16, 16)), 8, ValueError,
     r"images must be uint8 \(0..255\) or floating-point \(0..1\), got torch.int64"),
    # before: AttributeErrors from inside
    (torch.rand(2, 1, 16, 16).numpy(), 8, TypeError,
     r"images must be a tensor \(N, C, H, W\), got a ndarray: use torch.as_tensor"),
    # before: range()'s "arg 3 must not be zero" and a torch.cat error
    (torch.rand(2, 1, 16, 16), 0, ValueError, "batch_size must be a whole number >= 1, got 0"),
    (torch.rand(2, 1, 16, 16), -1, ValueError, "batch_size must be a whole number >= 1, got -1"),
])
@pytest.mark.parametrize("with_net", [False, True])
def test_embed_images_says_what_is_wrong(images, batch_size, error, message, with_net) -> None:
    net = EmbeddingNet(input_size=16, width=4, embedding_dim=3, depth=2) if with_net else None
    with pytest.raises(error, match=message):
        embed_images(net, images, batch_size=batch_size, device="cpu")


def test_embed_images_of_no_images_is_empty() -> None:
    # before: "torch.cat(): expected a non-empty list of Tensors" (the pixels gave (0, 256))
    net = EmbeddingNet(input_size=16, width=4, embedding_dim=3, depth=2)
    assert embed_images(net, torch.empty(0, 1, 16, 16), device="cpu").shape == (0, 3)


def test_lake_runs_accuracy_of_no_runs_says_so() -> None:
    # before: "torch.cat(): expected a non-empty list of Tensors"
    with pytest.raises(ValueError, match=r"no runs to score: pass the runs of load_lake_runs\(\)"):
        lake_runs_accuracy(None, [])
