"""Losses against values computed by hand (loops, plain formulas), their errors and gradients."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F

from siamese_lib.losses import (
    LOSS_NAMES,
    BatchContrastiveLoss,
    ContrastiveLoss,
    KochLoss,
    PrototypicalLoss,
    TripletLoss,
    by_name,
    name_and_kwargs,
)


def rows(*values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def dist(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.sqrt(sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True)))


# ----------------------------------------------------------------------------- contrastive


@pytest.mark.parametrize(
    ("label", "margin", "expected"),
    [
        (0, 1.0, 12.5),  # 1/2 * 5^2
        (0, 6.0, 12.5),  # the margin does not matter for a similar pair
        (1, 6.0, 0.5),  # 1/2 * (6 - 5)^2
        (1, 2.0, 0.0),  # beyond the margin: free
        (1, 5.0, 0.0),  # exactly at the margin
    ],
)
def test_contrastive_hand_values(label: int, margin: float, expected: float) -> None:
    e1, e2 = rows([0.0, 0.0]), rows([3.0, 4.0])  # D = 5
    loss = ContrastiveLoss(margin=margin)(e1, e2, torch.tensor([label]))
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_contrastive_is_mean_over_batch() -> None:
    e1 = rows([0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [2.0, 0.0])
    e2 = rows([3.0, 4.0], [0.0, 1.0], [1.0, 1.0], [2.0, 3.0])
    y = torch.tensor([0, 1, 1, 1])
    # D = 5, 1, 0, 3 with m = 2: 12.5, 1/2 (2-1)^2, 1/2 (2-0)^2, 0
    expected = (12.5 + 0.5 + 2.0 + 0.0) / 4
    assert ContrastiveLoss(2.0)(e1, e2, y).item() == pytest.approx(expected, abs=1e-5)


def test_contrastive_accepts_float_and_bool_labels() -> None:
    e1, e2 = rows([0.0, 0.0], [0.0, 0.0]), rows([3.0, 4.0], [0.0, 1.0])
    loss_fn = ContrastiveLoss(2.0)
    expected = (12.5 + 0.5) / 2
    for y in (torch.tensor([0, 1]), torch.tensor([0.0, 1.0]), torch.tensor([False, True])):
        assert loss_fn(e1, e2, y).item() == pytest.approx(expected, abs=1e-5)


def test_contrastive_gradient_matches_hand_derivative() -> None:
    torch.manual_seed(0)
    e1 = torch.randn(6, 3, requires_grad=True)
    e2 = torch.randn(6, 3)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    margin = 10.0  # every dissimilar pair is inside the margin
    ContrastiveLoss(margin)(e1, e2, y).backward()
    diff = (e1 - e2).detach()
    d = diff.norm(dim=1, keepdim=True)
    # d/de1 of 1/2 D^2 is diff; of 1/2 (m - D)^2 is -(m - D) diff / D; then / N for the mean
    expected = torch.where(y[:, None] == 0, diff, -(margin - d) * diff / d) / len(y)
    torch.testing.assert_close(e1.grad, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("label", [0, 1])
def test_contrastive_gradient_finite_when_embeddings_equal(label: int) -> None:
    e1 = torch.tensor([[0.5, -1.0, 2.0]], requires_grad=True)
    e2 = e1.detach().clone().requires_grad_(True)
    loss = ContrastiveLoss(1.0)(e1, e2, torch.tensor([label]))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(e1.grad).all() and torch.isfinite(e2.grad).all()
    if label == 0:  # D = 0 is the minimum of 1/2 D^2: the gradient is exactly 0
        assert torch.equal(e1.grad, torch.zeros_like(e1))
    else:  # a dissimilar pair at D = 0 costs 1/2 m^2
        assert loss.item() == pytest.approx(0.5, abs=1e-5)


@pytest.mark.parametrize("margin", [0, 0.0, -1.0, math.nan, math.inf, -math.inf])
def test_contrastive_rejects_bad_margin(margin: float) -> None:
    with pytest.raises(ValueError, match="margin must be a positive finite number"):
        ContrastiveLoss(margin=margin)


@pytest.mark.parametrize("bad", [2, -1, 0.5, math.nan])
def test_contrastive_rejects_labels_outside_0_1(bad: float) -> None:
    e1, e2 = torch.zeros(3, 2), torch.ones(3, 2)
    y = torch.tensor([0.0, 1.0, bad])
    with pytest.raises(ValueError, match=r"pair labels must be 0 \(similar\) or 1 \(dissimilar\)"):
        ContrastiveLoss()(e1, e2, y)


def test_contrastive_rejects_batch_size_mismatch() -> None:
    with pytest.raises(ValueError, match="batch sizes of the embeddings and the labels differ"):
        ContrastiveLoss()(torch.zeros(3, 2), torch.zeros(3, 2), torch.tensor([0, 1]))


def test_contrastive_rejects_2d_labels() -> None:
    with pytest.raises(ValueError, match="one label per pair"):
        ContrastiveLoss()(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([[0], [1]]))


@pytest.mark.parametrize(("shape1", "shape2"), [((2, 3), (2, 4)), ((2, 3), (3, 3))])
def test_contrastive_rejects_different_embedding_shapes(shape1, shape2) -> None:
    with pytest.raises(ValueError, match="must have the same shape"):
        ContrastiveLoss()(torch.zeros(shape1), torch.zeros(shape2), torch.tensor([0, 1]))


# ----------------------------------------------------------------------- batch contrastive


def batch_contrastive_by_hand(
    e: torch.Tensor, labels: list[int], margin: float, reduction: str
) -> float:
    similar, dissimilar, every = [], [], []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            d = dist(e[i], e[j])
            if labels[i] == labels[j]:
                similar.append(0.5 * d**2)
                every.append(similar[-1])
            else:
                term = 0.5 * max(0.0, margin - d) ** 2
                every.append(term)
                if term > 0:
                    dissimilar.append(term)
    if reduction == "mean":
        return mean_or_zero(every)
    return mean_or_zero(similar) + mean_or_zero(dissimilar)


def mean_or_zero(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


@pytest.mark.parametrize("reduction", ["mean", "nonzero"])
def test_batch_contrastive_matches_hand_loop(reduction: str) -> None:
    torch.manual_seed(1)
    e = torch.randn(8, 3) * 0.8
    labels = [0, 0, 1, 1, 2, 2, 3, 3]
    margin = 1.5
    # the case is only meaningful if some dissimilar pairs are inside and some beyond the margin
    d = torch.cdist(e, e)
    different = torch.tensor(labels)[:, None] != torch.tensor(labels)[None, :]
    assert (d[different] < margin).any() and (d[different] > margin).any()
    got = BatchContrastiveLoss(margin, reduction)(e, torch.tensor(labels))
    want = batch_contrastive_by_hand(e, labels, margin, reduction)
    assert got.item() == pytest.approx(want, rel=1e-4)


def test_batch_contrastive_mean_is_the_pair_loss_over_every_pair() -> None:
    torch.manual_seed(2)
    e, labels = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    i, j = torch.triu_indices(6, 6, offset=1)
    y = (labels[i] != labels[j]).long()
    every_pair = ContrastiveLoss(1.0)(e[i], e[j], y)
    torch.testing.assert_close(BatchContrastiveLoss(1.0, "mean")(e, labels), every_pair)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'nonzero'"):
        BatchContrastiveLoss(1.0, "sum")


def test_batch_contrastive_without_violations_is_similar_mean_and_differentiable() -> None:
    e = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 2.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss = BatchContrastiveLoss(margin=1.0, reduction="nonzero")(e, labels)
    # similar pairs: D = 1 and D = 2; all dissimilar pairs are ~10 apart, beyond the margin
    assert loss.item() == pytest.approx((0.5 * 1 + 0.5 * 4) / 2, rel=1e-5)
    loss.backward()
    assert torch.isfinite(e.grad).all()


def test_batch_contrastive_only_dissimilar_pairs() -> None:
    e = rows([0.0], [0.5], [3.0])
    labels = torch.tensor([0, 1, 2])
    # no similar pair; one of the three dissimilar pairs inside the margin: 1/2 (1 - 0.5)^2
    nonzero = BatchContrastiveLoss(margin=1.0, reduction="nonzero")(e, labels)
    assert nonzero.item() == pytest.approx(0.125, rel=1e-4)
    assert BatchContrastiveLoss(margin=1.0)(e, labels).item() == pytest.approx(0.125 / 3, rel=1e-4)


def test_batch_contrastive_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError, match=r"expected embeddings \(N, d\) and labels \(N,\)"):
        BatchContrastiveLoss()(torch.zeros(4, 2), torch.tensor([0, 1, 1]))


# ---------------------------------------------------------------------------------- triplet


def triplets(labels: list[int]):
    n = len(labels)
    for a in range(n):
        for p in range(n):
            for q in range(n):
                if p != a and labels[p] == labels[a] and labels[q] != labels[a]:
                    yield a, p, q


def test_triplet_batch_hard_matches_hand_loop() -> None:
    torch.manual_seed(2)
    e = torch.randn(7, 3)
    labels = [0, 0, 0, 1, 1, 2, 1]  # the anchor of class 2 has no positive: left out
    margin = 0.7
    losses = []
    for a in range(len(labels)):
        pos = [dist(e[a], e[p]) for p in range(len(labels)) if p != a and labels[p] == labels[a]]
        neg = [dist(e[a], e[q]) for q in range(len(labels)) if labels[q] != labels[a]]
        if pos and neg:
            losses.append(max(0.0, max(pos) - min(neg) + margin))
    expected = sum(losses) / len(losses)
    got = TripletLoss(margin, mining="batch_hard")(e, torch.tensor(labels))
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_triplet_batch_all_matches_hand_loop() -> None:
    torch.manual_seed(3)
    e = torch.randn(8, 2)
    labels = [0, 1, 0, 2, 1, 2, 0, 1]
    margin = 0.5
    terms = [dist(e[a], e[p]) - dist(e[a], e[q]) + margin for a, p, q in triplets(labels)]
    violating = [t for t in terms if t > 0]
    assert 0 < len(violating) < len(terms)  # a meaningful case: both kinds present
    got = TripletLoss(margin, mining="batch_all")(e, torch.tensor(labels))
    assert got.item() == pytest.approx(sum(violating) / len(violating), rel=1e-4)


def test_triplet_batch_all_zero_when_every_triplet_satisfied() -> None:
    e = torch.tensor([[0.0], [0.1], [10.0], [10.1]], requires_grad=True)
    loss = TripletLoss(0.5, mining="batch_all")(e, torch.tensor([0, 0, 1, 1]))
    assert loss.item() == 0.0
    loss.backward()  # a zero loss still has a gradient path
    assert torch.equal(e.grad, torch.zeros_like(e))


@pytest.mark.parametrize("labels", [[0, 1, 2, 3], [5, 5, 5, 5]])
def test_triplet_needs_positive_and_negative(labels: list[int]) -> None:
    with pytest.raises(ValueError, match="at least two classes and two images of some class"):
        TripletLoss()(torch.randn(4, 3), torch.tensor(labels))


def test_triplet_rejects_bad_mining() -> None:
    with pytest.raises(ValueError, match="mining must be 'batch_hard' or 'batch_all'"):
        TripletLoss(mining="semi_hard")


@pytest.mark.parametrize("mining", ["batch_hard", "batch_all"])
def test_triplet_gradient_finite_with_duplicated_embeddings(mining: str) -> None:
    base = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.5, 2.0, 3.0], [0.5, 2.0, 3.0]])
    e = base.clone().requires_grad_(True)
    loss = TripletLoss(1.0, mining=mining)(e, torch.tensor([0, 0, 1, 1]))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(e.grad).all()


# ----------------------------------------------------------------------------- prototypical


def prototypical_by_hand(e: torch.Tensor, labels: list[int], n_support: int, t: float) -> float:
    classes = sorted(set(labels))
    prototypes, queries = [], []
    for c in classes:
        members = [i for i, lab in enumerate(labels) if lab == c]  # in order of appearance
        support = members[:n_support]
        prototypes.append([sum(float(e[i, k]) for i in support) / n_support for k in range(e.shape[1])])
        queries += [(i, classes.index(c)) for i in members[n_support:]]
    total = 0.0
    for i, target in queries:
        logits = [-(dist(e[i], torch.tensor(p)) ** 2) / t for p in prototypes]
        log_norm = math.log(sum(math.exp(z) for z in logits))
        total += log_norm - logits[target]
    return total / len(queries)


@pytest.mark.parametrize(("n_support", "temperature"), [(1, 1.0), (2, 0.5), (1, 3.0)])
def test_prototypical_matches_hand_computation(n_support: int, temperature: float) -> None:
    torch.manual_seed(4)
    e = torch.randn(10, 3)
    labels = [7, 2, 7, 4, 2, 4, 7, 2, 4, 4]  # unsorted labels, interleaved classes
    got = PrototypicalLoss(n_support, temperature)(e, torch.tensor(labels))
    expected = prototypical_by_hand(e, labels, n_support, temperature)
    assert got.item() == pytest.approx(expected, rel=1e-4)


def test_prototypical_uses_first_images_as_support() -> None:
    # class 0's first image sits on the query of class 0; its later image far away.
    e = rows([0.0], [5.0], [0.0], [9.0], [5.0])
    labels = torch.tensor([0, 1, 0, 0, 1])
    # n_support=1: prototypes 0 (class 0) and 5 (class 1); queries e[2]=0, e[3]=9, e[4]=5
    loss = PrototypicalLoss(1)(e, labels)
    expected = prototypical_by_hand(e, [0, 1, 0, 0, 1], 1, 1.0)
    assert loss.item() == pytest.approx(expected, rel=1e-4)


def test_prototypical_rejects_single_class() -> None:
    with pytest.raises(ValueError, match="at least two classes"):
        PrototypicalLoss()(torch.randn(4, 2), torch.tensor([3, 3, 3, 3]))


@pytest.mark.parametrize(("labels", "n_support"), [([0, 0, 1], 1), ([0, 0, 0, 1, 1], 2)])
def test_prototypical_rejects_class_without_query(labels: list[int], n_support: int) -> None:
    with pytest.raises(ValueError, match=f"more than n_support={n_support} images"):
        PrototypicalLoss(n_support)(torch.randn(len(labels), 2), torch.tensor(labels))


@pytest.mark.parametrize("n_support", [0, -1, 1.5, True, "2"])
def test_prototypical_rejects_bad_n_support(n_support: int) -> None:
    with pytest.raises(ValueError, match="n_support must be a whole number >= 1"):
        PrototypicalLoss(n_support)


@pytest.mark.parametrize("temperature", [0, -1.0, math.nan, math.inf])
def test_prototypical_rejects_bad_temperature(temperature: float) -> None:
    # the whole message: a fragment also matched when it said "margin must be ..."
    expected = f"temperature must be a positive finite number, got {float(temperature)}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        PrototypicalLoss(1, temperature=temperature)


# ------------------------------------------------------------------------------------- Koch


def test_koch_loss_is_bce_of_head_on_absolute_difference() -> None:
    torch.manual_seed(5)
    loss_fn = KochLoss(embedding_dim=4)
    e1, e2 = torch.randn(6, 4), torch.randn(6, 4)
    y = torch.tensor([0, 1, 0, 1, 1, 0])
    w, b = loss_fn.head.weight.detach(), loss_fn.head.bias.detach()
    logits = (e1 - e2).abs() @ w[0] + b[0]
    target = 1.0 - y.float()  # the head predicts "similar"
    expected = F.binary_cross_entropy_with_logits(logits, target)
    # and the same from the definition, without torch's BCE
    p = torch.sigmoid(logits)
    by_definition = -(target * p.log() + (1 - target) * (1 - p).log()).mean()
    got = loss_fn(e1, e2, y)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    assert got.item() == pytest.approx(by_definition.item(), rel=1e-4)


def test_koch_similarity_is_head_logit_and_broadcasts() -> None:
    torch.manual_seed(6)
    loss_fn = KochLoss(3)
    q, s = torch.randn(2, 1, 3), torch.randn(1, 5, 3)
    scores = loss_fn.similarity(q, s)
    assert scores.shape == (2, 5)
    w, b = loss_fn.head.weight.detach()[0], loss_fn.head.bias.detach()[0]
    expected = ((q - s).abs() * w).sum(-1) + b
    torch.testing.assert_close(scores.detach(), expected)


def test_koch_head_starts_as_a_scaled_l1_distance() -> None:
    loss_fn = KochLoss(4)
    e1 = torch.zeros(3, 4)
    e2 = torch.tensor([[0.0] * 4, [0.5] * 4, [1.0, 0.0, 1.0, 0.0]])  # mean |difference| 0, 0.5, 0.5
    logits = loss_fn.similarity(e1, e2).detach()
    scale, threshold = KochLoss.HEAD_SCALE, KochLoss.HEAD_THRESHOLD
    torch.testing.assert_close(logits, scale * (threshold - torch.tensor([0.0, 0.5, 0.5])))
    assert logits[0] > logits[1]  # identical embeddings: the most likely similar
    assert torch.sigmoid(logits[1]).item() == pytest.approx(0.5)  # at the threshold: a coin toss


def test_koch_head_receives_gradients() -> None:
    torch.manual_seed(7)
    loss_fn = KochLoss(4)
    e1 = torch.randn(5, 4, requires_grad=True)
    e2 = torch.randn(5, 4)
    loss_fn(e1, e2, torch.tensor([0, 1, 1, 0, 1])).backward()
    params = list(loss_fn.parameters())
    assert len(params) == 2
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert e1.grad is not None and torch.isfinite(e1.grad).all()


def test_koch_loss_validates_inputs() -> None:
    loss_fn = KochLoss(2)
    with pytest.raises(ValueError, match="pair labels must be 0"):
        loss_fn(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="batch sizes"):
        loss_fn(torch.zeros(2, 2), torch.zeros(2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="same shape"):
        loss_fn(torch.zeros(2, 2), torch.zeros(3, 2), torch.tensor([0, 1]))


def test_pair_contrastive_nonzero_averages_similar_and_violating_pairs_apart() -> None:
    e1 = rows([0.0], [0.0], [0.0], [0.0])
    e2 = rows([1.0], [3.0], [0.5], [2.0])
    y = torch.tensor([0, 0, 1, 1])  # two similar (D = 1, 3); dissimilar D = 0.5 inside, 2 beyond
    terms = [0.5 * 1.0, 0.5 * 9.0, 0.5 * 0.5**2, 0.0]
    mean = ContrastiveLoss(1.0)(e1, e2, y)
    assert mean.item() == pytest.approx(sum(terms) / 4, rel=1e-5)
    nonzero = ContrastiveLoss(1.0, reduction="nonzero")(e1, e2, y)
    assert nonzero.item() == pytest.approx((terms[0] + terms[1]) / 2 + terms[2], rel=1e-5)
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'nonzero'"):
        ContrastiveLoss(1.0, reduction="max")


# -------------------------------------------------------------------------- bad batches


@pytest.mark.parametrize("loss_fn", [ContrastiveLoss(), KochLoss(2)])
def test_pair_losses_refuse_an_empty_batch(loss_fn) -> None:
    # the mean over no pairs used to be NaN
    with pytest.raises(ValueError, match="empty batch"):
        loss_fn(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0))


@pytest.mark.parametrize("loss_fn", [ContrastiveLoss(), KochLoss(4)])
def test_pair_losses_refuse_one_dimensional_embeddings(loss_fn) -> None:
    # (N,) embeddings used to be summed into one distance for the whole batch
    with pytest.raises(ValueError, match=r"embeddings \(N, d\).*got \(4,\)"):
        loss_fn(torch.randn(4), torch.randn(4), torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize("loss_fn", [BatchContrastiveLoss(), TripletLoss(), PrototypicalLoss()])
@pytest.mark.parametrize("n", [0, 1])
def test_batch_losses_refuse_a_batch_without_pairs(loss_fn, n: int) -> None:
    with pytest.raises(ValueError, match="at least 2 images"):
        loss_fn(torch.zeros(n, 2), torch.zeros(n, dtype=torch.long))


@pytest.mark.parametrize("loss_fn", [BatchContrastiveLoss(), TripletLoss(), PrototypicalLoss()])
def test_batch_losses_refuse_fractional_class_labels(loss_fn) -> None:
    e = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"class labels must be integers.*0\.5"):
        loss_fn(e, torch.tensor([0.5, 0.7, 0.5, 0.7]))
    integer_valued = loss_fn(e, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    assert integer_valued.item() == pytest.approx(loss_fn(e, torch.tensor([0, 1, 0, 1])).item())


# ---------------------------------------------------------------------------------- by name


@pytest.mark.parametrize(
    ("name", "kwargs", "cls"),
    [
        ("contrastive", {"margin": 2.0}, ContrastiveLoss),
        ("batch-contrastive", {"margin": 1.0, "reduction": "nonzero"}, BatchContrastiveLoss),
        ("koch", {"embedding_dim": 3}, KochLoss),
        ("triplet", {"margin": 0.5, "mining": "batch_all"}, TripletLoss),
        ("prototypical", {"n_support": 2, "temperature": 0.5}, PrototypicalLoss),
        ("cross-entropy", {}, torch.nn.CrossEntropyLoss),
    ],
)
def test_by_name_builds_the_loss_and_names_it_back(name, kwargs, cls) -> None:
    loss = by_name(name, **kwargs)
    assert type(loss) is cls
    got_name, got_kwargs = name_and_kwargs(loss)
    assert got_name == name and {k: got_kwargs[k] for k in kwargs} == kwargs
    again = by_name(got_name, **got_kwargs)
    assert name_and_kwargs(again) == (got_name, got_kwargs)
    assert set(LOSS_NAMES) >= {name}


def test_by_name_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown loss 'arcface'; known: contrastive, "):
        by_name("arcface")
    with pytest.raises(ValueError, match="unknown loss 3"):
        by_name(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss 'triplet' cannot be built with {'margn': 1}"):
        by_name("triplet", margn=1)
    with pytest.raises(ValueError, match="loss 'koch' cannot be built"):
        by_name("koch")  # the head needs its size


@pytest.mark.parametrize("dim", [0, -1, 2.5, True, "4"])
def test_koch_rejects_a_bad_embedding_dim(dim) -> None:
    expected = f"embedding_dim must be a whole number >= 1, got {dim!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        KochLoss(dim)


def test_a_loss_of_your_own_has_no_name() -> None:
    assert name_and_kwargs(torch.nn.MSELoss()) is None


@pytest.mark.parametrize("margin", ["1", True, None])
def test_margin_must_be_a_number(margin) -> None:
    expected = f"margin must be a positive finite number, got {margin!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        ContrastiveLoss(margin)


PAIR = (torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))
BATCH = (torch.randn(4, 3), torch.tensor([0, 1, 0, 1]))


@pytest.mark.parametrize(
    ("loss", "args", "error", "fragment"),
    [
        (ContrastiveLoss(), (PAIR[0].tolist(), PAIR[1], PAIR[2]), TypeError, "got a list"),
        (TripletLoss(), (BATCH[0], [0, 1, 0, 1]), TypeError, "got a list"),
        (ContrastiveLoss(), (PAIR[0].long(), PAIR[1].long(), PAIR[2]), ValueError,
         "embeddings must be floating-point, got torch.int64"),
        (BatchContrastiveLoss(), (BATCH[0].long(), BATCH[1]), ValueError, "floating-point"),
        (KochLoss(3), (torch.randn(4, 5), torch.randn(4, 5), PAIR[2]), ValueError,
         "KochLoss\\(embedding_dim=3\\) got embeddings of size 5"),
    ],
)
def test_losses_say_what_is_wrong_with_their_input(loss, args, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        loss(*args)


def test_inputs_on_different_devices_are_named() -> None:
    e = torch.randn(4, 3, device="meta")  # a second device without a GPU
    with pytest.raises(ValueError, match="different devices \\(cpu, meta\\)"):
        ContrastiveLoss()(e, e, PAIR[2])
    with pytest.raises(ValueError, match="different devices"):
        PrototypicalLoss()(e, BATCH[1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_prototypical_loss_in_the_embeddings_dtype(dtype: torch.dtype) -> None:
    # before: index_add_ failed: "self (Float) and source (Double) must have the same scalar type"
    g = torch.Generator().manual_seed(0)
    embeddings, labels = torch.randn(8, 3, generator=g), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss = PrototypicalLoss()(embeddings.to(dtype), labels)
    assert loss.dtype == dtype
    expected = PrototypicalLoss()(embeddings, labels)
    torch.testing.assert_close(loss.float(), expected, atol=1e-2, rtol=1e-2)
