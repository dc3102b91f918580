"""Tests for the one-shot classifier: enrol a support set once, then predict many queries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from siamese_lib import OneShotClassifier, Predictions, predict_classes
from siamese_lib.losses import KochLoss
from siamese_lib.nets import EmbeddingNet, ShiftAveraged


def points(*xs: float) -> torch.Tensor:
    """1-d "images" (N, 1, 1, 1): with net=None the embedding is the pixel value."""
    return torch.tensor(xs).reshape(-1, 1, 1, 1)


class Counting(nn.Module):
    """An embedding net that counts the images it has embedded."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.embedding_net, self.seen = net, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += len(x)
        return self.embedding_net(x)


def small_net() -> EmbeddingNet:
    torch.manual_seed(0)
    return EmbeddingNet(width=8, embedding_dim=6, input_size=16).eval()


def test_enrol_embeds_the_support_set_once_for_every_predict() -> None:
    net = Counting(small_net())
    support, labels = torch.rand(6, 1, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    classifier = OneShotClassifier(net, device="cpu").enrol(support, labels)
    assert net.seen == 6 and classifier.n_classes == 3
    batches = [torch.rand(4, 1, 16, 16), torch.rand(3, 1, 16, 16)]
    preds = [classifier.predict(q) for q in batches]
    assert net.seen == 6 + 4 + 3  # the queries only: the support set is not embedded again
    for q, pred in zip(batches, preds, strict=True):  # the same as one call per batch
        want = predict_classes(net, support, labels, q, device="cpu")
        assert torch.equal(pred.labels, want.labels)
        assert torch.allclose(pred.scores, want.scores)


def test_nearest_keeps_every_image_and_prototype_averages_them() -> None:
    # class 0: one image at 0; class 1: images at 3 and 10 (mean 6.5)
    support, labels = points(3.0, 0.0, 10.0), [1, 0, 1]
    queries = points(2.0, 9.0)
    nearest = OneShotClassifier(None).enrol(support, labels).predict(queries)
    assert nearest.labels.tolist() == [1, 1]  # 2 is 1 from the image at 3
    assert nearest.scores[0].tolist() == pytest.approx([-2.0, -1.0])
    prototype = OneShotClassifier(None, rule="prototype").enrol(support, labels).predict(queries)
    assert prototype.labels.tolist() == [0, 1]  # 2 is nearer 0 than the mean 6.5
    assert prototype.scores[0].tolist() == pytest.approx([-2.0, -4.5])


def test_a_learned_similarity_scores_every_pair() -> None:
    torch.manual_seed(1)
    head = KochLoss(5).eval()
    support, queries = torch.randn(6, 5), torch.randn(4, 5)  # already embeddings: net=None
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    pred = OneShotClassifier(None, head.similarity).enrol(support, labels).predict(queries)
    with torch.no_grad():
        by_hand = head.similarity(queries[:, None, :], support[None, :, :])
    want = torch.stack([by_hand[:, labels == c].amax(1) for c in range(3)], 1)
    assert torch.allclose(pred.scores, want) and torch.equal(pred.labels, want.argmax(1))


def test_class_names_travel_with_the_predictions() -> None:
    classifier = OneShotClassifier(None).enrol(points(0.0, 10.0), [0, 1], ["alice", "bob"])
    pred = classifier.predict(points(9.0, 1.0))
    assert isinstance(pred, Predictions) and pred.names() == ["bob", "alice"]
    assert OneShotClassifier(None).enrol(points(0.0, 10.0), [0, 1]).predict(
        points(9.0)).names() == ["1"]
    with pytest.raises(ValueError, match="got 3 class names for 2 classes"):
        classifier.enrol(points(0.0, 10.0), [0, 1], ["a", "b", "c"])


def test_enrolling_again_replaces_the_support_set() -> None:
    classifier = OneShotClassifier(None).enrol(points(0.0, 10.0), [0, 1])
    assert classifier.predict(points(9.0)).labels.tolist() == [1]
    classifier.enrol(points(10.0, 0.0), [0, 1])
    assert classifier.predict(points(9.0)).labels.tolist() == [0]


def test_shift_averaged_nets_are_checked_through_the_wrapper() -> None:
    net = ShiftAveraged(small_net(), 1)
    classifier = OneShotClassifier(net, device="cpu").enrol(torch.rand(2, 1, 16, 16), [0, 1])
    assert classifier.predict(torch.rand(3, 1, 16, 16)).labels.shape == (3,)
    with pytest.raises(ValueError, match="takes images of 1x16x16"):
        classifier.predict(torch.rand(3, 1, 28, 28))


def test_predict_before_enrol_says_to_enrol() -> None:
    with pytest.raises(RuntimeError, match=r"nothing is enrolled: call enrol\(images, labels\)"):
        OneShotClassifier(None).predict(points(1.0))


def test_bad_support_sets_say_what_is_wrong() -> None:
    classifier = OneShotClassifier(small_net(), device="cpu")
    good = torch.rand(2, 1, 16, 16)
    with pytest.raises(ValueError, match="the support set is empty"):
        classifier.enrol(torch.rand(0, 1, 16, 16), [])
    with pytest.raises(ValueError, match="one label per support image, got 3 labels for 2"):
        classifier.enrol(good, [0, 1, 1])
    with pytest.raises(ValueError, match=r"0..C-1 with every class present, got \[-1, 0\]"):
        classifier.enrol(good, [-1, 0])
    with pytest.raises(ValueError, match=r"takes images of 1x16x16 but the support images are "
                       r"3x16x16: read them at its size"):
        classifier.enrol(torch.rand(2, 3, 16, 16), [0, 1])
    with pytest.raises(TypeError, match="must be a tensor"):
        classifier.enrol([good[0], good[1]], [0, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        classifier.enrol(torch.full((2, 1, 16, 16), float("nan")), [0, 1])
    with pytest.raises(ValueError, match="rule must be 'nearest' or 'prototype'"):
        OneShotClassifier(None, rule="vote")


def test_bad_queries_say_what_is_wrong() -> None:
    classifier = OneShotClassifier(None).enrol(torch.rand(2, 1, 4, 4), [0, 1])
    with pytest.raises(ValueError, match="query images are 1x5x5 each but the support images "
                       "were 1x4x4"):
        classifier.predict(torch.rand(3, 1, 5, 5))
    nothing = classifier.predict(torch.rand(0, 1, 4, 4))  # no queries: no predictions
    assert nothing.labels.shape == (0,) and nothing.scores.shape == (0, 2)


def test_float_labels_must_be_whole_numbers() -> None:
    """0.5 and 0.7 used to be truncated to class 0: two classes silently became one."""
    support, queries = points(0.0, 1.0), points(0.9)
    with pytest.raises(ValueError, match="whole numbers"):
        predict_classes(None, support, torch.tensor([0.5, 0.7]), queries)
    whole = predict_classes(None, support, torch.tensor([0.0, 1.0]), queries)  # still fine
    assert whole.labels.tolist() == [1]


@pytest.mark.parametrize(("support", "labels", "queries", "error", "message"), [
    # before: "support labels must be 0..C-1 ..., got [-9223372036854775808, 0, 1]"
    (points(0.0, 1.0, 2.0), torch.tensor([0.0, 1.0, float("inf")]), points(0.9), ValueError,
     r"support labels must be whole numbers 0..C-1, got \[0.0, 1.0, inf\]"),
    # before: torch's "too many dimensions 'str'"
    (points(0.0, 1.0), ["a", "b"], points(0.9), TypeError,
     r"support labels must be whole numbers 0..C-1 \(names go in classes=...\), got \['a', 'b'\]"),
    # before: an IndexError from flatten(1), or "the query images are  each"
    (torch.rand(2), [0, 1], points(0.9), ValueError,
     r"the support images must be a batch \(N, C, H, W\), got shape \(2,\)"),
    (points(0.0, 1.0), [0, 1], torch.rand(4), ValueError,
     r"the query images must be a batch \(N, C, H, W\), got shape \(4,\)"),
])
def test_predict_classes_says_what_is_wrong_with_labels_and_shapes(
        support, labels, queries, error, message) -> None:
    with pytest.raises(error, match=message):
        predict_classes(None, support, labels, queries)
    assert predict_classes(None, points(0.0, 1.0), torch.tensor([True, False]),
                           points(0.9)).labels.tolist() == [0]  # bool labels still work
