"""Pair and class-balanced samplers: the guarantees they make, over random label vectors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from siamese_lib.pairs import (
    ClassBalancedBatchSampler,
    PairSampler,
    all_pairs,
    augmentation_seed,
    class_balanced_batches,
    labels_of,
    pair_batches,
)

label_lists = st.lists(st.integers(0, 6), min_size=2, max_size=40)


def usable_for_pairs(labels: list[int]) -> bool:
    counts = [labels.count(c) for c in set(labels)]
    return len(counts) >= 2 and max(counts) >= 2


@settings(max_examples=30, deadline=None)
@given(
    labels=label_lists,
    n=st.integers(0, 60),
    similar_fraction=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_pair_sampler_guarantees(labels, n, similar_fraction, seed) -> None:
    assume(usable_for_pairs(labels))
    i, j, y = PairSampler(labels, similar_fraction=similar_fraction, seed=seed).sample(n)
    lab = torch.tensor(labels)
    assert i.shape == j.shape == y.shape == (n,)
    assert ((i >= 0) & (i < len(labels)) & (j >= 0) & (j < len(labels))).all()
    assert set(y.tolist()) <= {0, 1}
    similar, dissimilar = y == 0, y == 1
    assert (lab[i[similar]] == lab[j[similar]]).all()
    assert (i[similar] != j[similar]).all()
    assert (lab[i[dissimilar]] != lab[j[dissimilar]]).all()
    assert int(similar.sum()) == round(n * similar_fraction)


@settings(max_examples=30, deadline=None)
@given(labels=st.lists(st.integers(0, 6), min_size=2, max_size=40), seed=st.integers(0, 1000))
def test_pair_sampler_allow_same_image(labels, seed) -> None:
    assume(len(set(labels)) >= 2)  # singleton classes are fine here
    i, j, y = PairSampler(labels, allow_same_image=True, seed=seed).sample(30)
    lab = torch.tensor(labels)
    assert (lab[i[y == 0]] == lab[j[y == 0]]).all()
    assert (lab[i[y == 1]] != lab[j[y == 1]]).all()


def test_allow_same_image_does_pair_an_image_with_itself() -> None:
    i, j, y = PairSampler([0, 0, 1, 1], allow_same_image=True, seed=0).sample(400)
    assert (i[y == 0] == j[y == 0]).any()
    i, j, y = PairSampler([0, 0, 1, 1], allow_same_image=False, seed=0).sample(400)
    assert not (i[y == 0] == j[y == 0]).any()


def test_pair_sampler_seeding() -> None:
    labels = torch.arange(10).repeat_interleave(5)
    a = PairSampler(labels, seed=3).sample(100)
    b = PairSampler(labels, seed=3).sample(100)
    c = PairSampler(labels, seed=4).sample(100)
    for x, z in zip(a, b, strict=True):
        assert torch.equal(x, z)
    assert not all(torch.equal(x, z) for x, z in zip(a, c, strict=True))
    # successive draws of one sampler differ
    sampler = PairSampler(labels, seed=3)
    assert not torch.equal(sampler.sample(100)[0], sampler.sample(100)[0])


def test_pair_sampler_chooses_classes_uniformly_not_by_size() -> None:
    labels = torch.tensor([0] * 200 + [1] * 2)
    i, j, y = PairSampler(labels, similar_fraction=1.0, seed=0).sample(4000)
    share_small = float((labels[i] == 1).double().mean())
    assert 0.45 < share_small < 0.55  # by size it would be 1%


def test_pair_sampler_mixes_similar_and_dissimilar() -> None:
    _, _, y = PairSampler(torch.arange(4).repeat(5), seed=0).sample(200)
    # shuffled, not all similar pairs first
    assert y[:100].sum() not in (0, 100)


def test_pair_sampler_batches() -> None:
    batches = list(PairSampler([0, 0, 1, 1, 2], seed=0).batches(batch_size=6, n_batches=3))
    assert len(batches) == 3
    assert all(b[0].shape == (6,) for b in batches)


def test_pair_sampler_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        PairSampler([])
    with pytest.raises(ValueError, match="need at least 2 classes, the set has 1"):
        PairSampler([3, 3, 3])
    with pytest.raises(ValueError, match="every class has one"):
        PairSampler([0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"similar_fraction must be in \[0, 1\]"):
        PairSampler([0, 0, 1, 1], similar_fraction=1.5)
    with pytest.raises(ValueError, match="one-dimensional"):
        PairSampler(torch.zeros(2, 3))


def test_pair_sampler_singletons_without_similar_pairs() -> None:
    i, j, y = PairSampler([0, 1, 2, 3], similar_fraction=0.0, seed=0).sample(20)
    assert (y == 1).all() and (i != j).all()


class TargetsOnly:
    """A dataset-like object exposing its labels as a ``targets`` list (torchvision style)."""

    def __init__(self) -> None:
        self.targets = [5, 5, 5, 9, 9, 2, 2]


def test_pair_sampler_reads_targets() -> None:
    ds = TargetsOnly()
    i, j, y = PairSampler(ds, seed=1).sample(50)
    t = torch.tensor(ds.targets)
    assert ((t[i] == t[j]) == (y == 0)).all()
    assert torch.equal(labels_of(ds), t)


def test_labels_of_refuses_fractional_labels_and_takes_integer_valued_floats() -> None:
    # 0.5 and 0.7 used to be truncated to one class 0
    with pytest.raises(ValueError, match=r"class labels must be integers.*0\.5"):
        labels_of(torch.tensor([0.5, 0.7, 0.5]))
    with pytest.raises(ValueError, match="class labels must be integers"):
        PairSampler([0.5, 0.7, 0.5, 0.7], seed=0)
    with pytest.raises(ValueError, match="class labels must be integers"):
        labels_of(torch.tensor([0.0, float("nan")]))
    assert torch.equal(labels_of(torch.tensor([0.0, 2.0, 1.0])), torch.tensor([0, 2, 1]))


class LabelledTensors(Dataset):
    """A TensorDataset-like set exposing ``.labels``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


def check_pk_batch(idx: list[int], labels: torch.Tensor, p: int, k: int) -> None:
    assert len(idx) == p * k
    assert len(set(idx)) == p * k  # distinct images
    grid = labels[torch.tensor(idx)].reshape(p, k)  # class-major
    assert (grid == grid[:, :1]).all()
    assert len(set(grid[:, 0].tolist())) == p


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 8), min_size=2, max_size=10),
    p=st.integers(1, 4),
    k=st.integers(1, 5),
    seed=st.integers(0, 1000),
)
def test_class_balanced_sampler_guarantees(sizes, p, k, seed) -> None:
    assume(sum(s >= k for s in sizes) >= p)
    labels = torch.arange(len(sizes)).repeat_interleave(torch.tensor(sizes))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    sampler = ClassBalancedBatchSampler(labels, p, k, n_batches=3, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    eligible = {c for c, s in enumerate(sizes) if s >= k}
    for idx in batches:
        check_pk_batch(idx, labels, p, k)
        assert set(labels[torch.tensor(idx)].tolist()) <= eligible


def test_class_balanced_sampler_as_batch_sampler() -> None:
    labels = torch.arange(6).repeat(4)  # 6 classes x 4 images, interleaved
    images = torch.rand(len(labels), 1, 5, 5)
    ds = LabelledTensors(images, labels)
    loader = DataLoader(ds, batch_sampler=ClassBalancedBatchSampler(ds, 3, 2, n_batches=5))
    batches = list(loader)
    assert len(batches) == 5
    for x, y in batches:
        assert x.shape == (6, 1, 5, 5)
        grid = y.reshape(3, 2)
        assert (grid == grid[:, :1]).all() and len(set(grid[:, 0].tolist())) == 3


def test_class_balanced_sampler_seeding() -> None:
    labels = torch.arange(8).repeat(5)
    a = list(ClassBalancedBatchSampler(labels, 3, 2, 4, seed=1))
    b = list(ClassBalancedBatchSampler(labels, 3, 2, 4, seed=1))
    c = list(ClassBalancedBatchSampler(labels, 3, 2, 4, seed=2))
    assert a == b and a != c


def test_class_balanced_sampler_too_few_classes() -> None:
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="only 2 classes have that many"):
        ClassBalancedBatchSampler(labels, n_classes=3, n_per_class=3, n_batches=1)
    with pytest.raises(ValueError, match="must be positive"):
        ClassBalancedBatchSampler(labels, n_classes=2, n_per_class=0, n_batches=1)


def test_class_balanced_sampler_large_classes() -> None:
    labels = torch.arange(2).repeat_interleave(5000)
    for idx in ClassBalancedBatchSampler(labels, 2, 100, n_batches=3, seed=0):
        check_pk_batch(idx, labels, 2, 100)


def test_class_balanced_sampler_class_of_exactly_k() -> None:
    labels = torch.tensor([0] * 3 + [1] * 7 + [2] * 3)
    for idx in ClassBalancedBatchSampler(labels, 3, 3, n_batches=5, seed=0):
        check_pk_batch(idx, labels, 3, 3)
        for row in (idx[0:3], idx[3:6], idx[6:9]):
            members = set(torch.nonzero(labels == labels[row[0]]).flatten().tolist())
            assert set(row) <= members
            if len(members) == 3:  # a class of exactly K images: all of them, once each
                assert set(row) == members


def index_images(n: int) -> torch.Tensor:
    """uint8 images whose every pixel holds the image's own index (n <= 256)."""
    return torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 1, 4, 4).clone()


def test_pair_batches_yield_float_pairs() -> None:
    labels = torch.arange(5).repeat(8)
    images = index_images(len(labels))
    batches = list(pair_batches(images, labels, batch_size=12, n_batches=4, seed=0))
    assert len(batches) == 4
    for x1, x2, y in batches:
        assert x1.shape == x2.shape == (12, 1, 4, 4) and y.shape == (12,)
        assert x1.dtype == x2.dtype == torch.float32
        assert 0 <= float(x1.min()) and float(x1.max()) <= 1
        i = (x1[:, 0, 0, 0] * 255).round().long()
        j = (x2[:, 0, 0, 0] * 255).round().long()
        assert ((labels[i] == labels[j]) == (y == 0)).all()
        assert (x1 == x1[:, :, :1, :1]).all()  # each image came through whole


def test_pair_batches_apply_augment_with_generator() -> None:
    labels = torch.arange(3).repeat(4)
    images = torch.rand(len(labels), 1, 4, 4)
    seen = []

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        seen.append(isinstance(g, torch.Generator))
        return 1 - x

    plain = list(pair_batches(images, labels, 5, 2, seed=7))
    flipped = list(pair_batches(images, labels, 5, 2, seed=7, augment=augment))
    assert seen == [True] * 4
    for (a1, a2, ay), (b1, b2, by) in zip(plain, flipped, strict=True):
        torch.testing.assert_close(b1, 1 - a1)
        torch.testing.assert_close(b2, 1 - a2)
        assert torch.equal(ay, by)


def first_draws(g: torch.Generator) -> list[float]:
    return torch.rand(4, generator=g).tolist()


@pytest.mark.parametrize("seed", [0, 7, 999, 1000, 2**31 - 5])
def test_augmentation_stream_is_not_a_neighbouring_seeds_sampling_stream(seed: int) -> None:
    # recipes seed epoch e with recipe.seed * 1000 + e: the augmentation of epoch e must not
    # replay the sampling of epoch e + 1 (or e - 1), as seed + 1 did
    aug = first_draws(torch.Generator().manual_seed(augmentation_seed(seed)))
    for other in (seed - 1, seed, seed + 1, seed + 2):
        assert aug != first_draws(torch.Generator().manual_seed(other))
    firsts = set(range(3000))
    assert not firsts & {augmentation_seed(s) % 2**32 for s in range(3000)}


def test_batch_sources_augment_with_the_augmentation_seeds_stream() -> None:
    labels = torch.arange(4).repeat(6)
    images = torch.rand(len(labels), 1, 4, 4)
    states: list[torch.Tensor] = []

    def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        states.append(g.get_state())
        torch.rand(1, generator=g)
        return x

    seed = 41
    list(pair_batches(images, labels, 6, 1, seed=seed, augment=augment))
    list(class_balanced_batches(images, labels, 2, 3, 1, seed=seed, augment=augment))
    next_epoch = first_draws(torch.Generator().manual_seed(seed + 1))
    expected = first_draws(torch.Generator().manual_seed(augmentation_seed(seed)))
    for state in (states[0], states[2]):  # the first augmentation of each source
        drawn = first_draws(torch.Generator().set_state(state))
        assert drawn == expected and drawn != next_epoch


def test_class_balanced_batches_yield_float_batches() -> None:
    labels = torch.arange(6).repeat(5)
    images = index_images(len(labels))
    batches = list(class_balanced_batches(images, labels, 3, 4, n_batches=2, seed=0))
    assert len(batches) == 2
    for x, y in batches:
        assert x.shape == (12, 1, 4, 4) and x.dtype == torch.float32 and y.shape == (12,)
        assert 0 <= float(x.min()) and float(x.max()) <= 1
        idx = (x[:, 0, 0, 0] * 255).round().long()
        assert torch.equal(labels[idx], y)
        check_pk_batch(idx.tolist(), labels, 3, 4)


def test_all_pairs_by_hand() -> None:
    i, j, y = all_pairs(torch.tensor([0, 0, 1]))
    assert i.tolist() == [0, 0, 1] and j.tolist() == [1, 2, 2]
    assert y.tolist() == [0, 1, 1]


def test_all_pairs_counts_every_pair_once() -> None:
    labels = torch.tensor([3, 1, 3, 2, 1, 1])
    i, j, y = all_pairs(labels)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    expected = {(a, b) for a in range(6) for b in range(a + 1, 6)}
    assert pairs == expected and len(i) == 15
    for a, b, label in zip(i.tolist(), j.tolist(), y.tolist(), strict=True):
        assert label == (0 if labels[a] == labels[b] else 1)


def test_a_seeded_draw_is_pinned_to_the_numbers_of_the_first_release() -> None:
    """The sampler's random stream must not move when its index helpers are refactored
    (recipes train on it: a changed draw would change every trained model)."""
    labels = torch.tensor([4, 4, 9, 9, 9, 2, 2, 4, 2, 9, 7, 7])  # sparse, unsorted ids
    i, j, y = PairSampler(labels, seed=11).sample(8)
    assert i.tolist() == [7, 1, 2, 1, 6, 8, 4, 8]
    assert j.tolist() == [8, 3, 9, 0, 8, 10, 3, 0]
    assert y.tolist() == [1, 1, 0, 0, 0, 1, 0, 1]


def test_class_index_groups_positions_by_sorted_label() -> None:
    from siamese_lib.pairs import ClassIndex

    index = ClassIndex(torch.tensor([4, 4, 9, 2, 9, 2]))
    assert index.classes.tolist() == [2, 4, 9]
    assert index.order.tolist() == [3, 5, 0, 1, 2, 4]
    assert index.count.tolist() == [2, 2, 2] and index.start.tolist() == [0, 2, 4]


_IMAGES, _LABELS = torch.zeros(4, 1, 8, 8, dtype=torch.uint8), [0, 0, 1, 1]


@pytest.mark.parametrize("batches", [
    lambda images, labels: pair_batches(images, labels, 4, 1),
    lambda images, labels: class_balanced_batches(images, labels, 2, 2, 1),
])
def test_batch_sources_want_one_label_per_image_tensor(batches) -> None:
    # before: more labels than images failed inside index_select ("index out of range in
    # self"); fewer left images out without a word
    for n_images in (2, 6):
        images = torch.zeros(n_images, 1, 8, 8, dtype=torch.uint8)
        with pytest.raises(ValueError, match=f"got {n_images} images but 4 labels: give one "
                                             "label per image"):
            next(batches(images, _LABELS))
    # before: an AttributeError ("no attribute 'index_select'")
    with pytest.raises(TypeError, match=r"images must be a tensor \(N, C, H, W\), got a ndarray"):
        next(batches(_IMAGES.numpy(), _LABELS))


@pytest.mark.parametrize(("draw", "message"), [
    # before: torch's "negative dimension" and randint's argument errors
    (lambda: PairSampler(_LABELS).sample(-1),
     "the number of pairs n must be a whole number >= 0, got -1"),
    (lambda: PairSampler(_LABELS).sample(2.5),
     "the number of pairs n must be a whole number >= 0, got 2.5"),
    (lambda: next(pair_batches(_IMAGES, _LABELS, -1, 1)),
     "batch_size must be a whole number >= 0, got -1"),
    # before: a TypeError from comparing an int with a str
    (lambda: PairSampler(_LABELS, similar_fraction="0.5"),
     r"similar_fraction must be in \[0, 1\], got '0.5'"),
    # before: "slice indices must be integers" from inside, or len() < 0
    (lambda: ClassBalancedBatchSampler(_LABELS, 1.5, 2, 1),
     "n_classes must be a whole number, got 1.5"),
    (lambda: ClassBalancedBatchSampler(_LABELS, 2, 1.5, 1),
     "n_per_class must be a whole number, got 1.5"),
    (lambda: ClassBalancedBatchSampler(_LABELS, 2, 2, -1),
     "n_batches must be a whole number >= 0, got -1"),
])
def test_samplers_want_whole_numbers(draw, message) -> None:
    with pytest.raises(ValueError, match=message):
        draw()


def test_class_balanced_sampler_draws_classes_a_group_at_a_time() -> None:
    from siamese_lib.pairs import ClassBalancedBatchSampler

    # 6 groups of 10 classes, 5 images each; class c lies in group c // 10
    labels = torch.arange(60).repeat_interleave(5)
    groups = labels // 10
    sampler = ClassBalancedBatchSampler(labels, 12, 2, 20, seed=3, groups=groups,
                                        classes_per_group=4)
    for _ in range(20):
        batch = sampler.sample()
        classes = labels[batch].unique()
        assert len(classes) == 12
        per_group = torch.bincount(groups[batch], minlength=6) // 2
        assert sorted(per_group.tolist(), reverse=True)[:3] == [4, 4, 4]  # 3 groups of 4
    anywhere = ClassBalancedBatchSampler(labels, 12, 2, 20, seed=3)
    spread = [int((torch.bincount(groups[anywhere.sample()], minlength=6) > 0).sum())
              for _ in range(20)]
    assert sum(spread) / 20 > 4  # without groups, 12 classes of 60 touch most of the 6 groups


def test_class_balanced_sampler_by_group_says_what_is_wrong() -> None:
    from siamese_lib.pairs import ClassBalancedBatchSampler

    labels = torch.arange(20).repeat_interleave(3)
    with pytest.raises(ValueError, match="needs the group of every image"):
        ClassBalancedBatchSampler(labels, 4, 2, 1, classes_per_group=2)
    with pytest.raises(ValueError, match="one group per image"):
        ClassBalancedBatchSampler(labels, 4, 2, 1, groups=torch.zeros(5), classes_per_group=2)
    with pytest.raises(ValueError, match="fewer than P=12"):  # 2 groups of at most 5 classes
        ClassBalancedBatchSampler(labels, 12, 2, 1, groups=labels // 10, classes_per_group=5)

