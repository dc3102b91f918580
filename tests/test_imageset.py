"""Tests for siamese_lib.imageset: the image set type and its two index helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from siamese_lib.imageset import ImageSet, gather, indices_by_label


def test_gather_picks_rows_for_an_index_of_any_shape() -> None:
    values = torch.arange(12).reshape(6, 2)
    index = torch.tensor([[5, 0], [1, 1]])
    assert torch.equal(gather(values, index), values[index])
    assert gather(values, index).shape == (2, 2, 2)
    assert torch.equal(gather(values, slice(1, 3)), values[1:3])
    assert gather(values, torch.tensor([], dtype=torch.long)).shape == (0, 2)


@pytest.mark.parametrize("index", [torch.tensor([0.0, 1.0]), torch.tensor([True, False]), [0, 1]])
def test_gather_refuses_float_mask_and_list_indices(index) -> None:
    with pytest.raises(TypeError, match="integer index tensor"):
        gather(torch.zeros(2, 3), index)


def test_indices_by_label_keeps_the_original_order_and_lists_empty_classes() -> None:
    groups = indices_by_label(torch.tensor([2, 0, 2, 0, 0]), num_classes=4)
    assert [g.tolist() for g in groups] == [[1, 3, 4], [], [0, 2], []]
    assert [g.tolist() for g in indices_by_label(torch.tensor([1, 1]))] == [[], [0, 1]]
    assert indices_by_label(torch.tensor([], dtype=torch.long)) == []


@pytest.mark.parametrize("labels, num_classes, fragment", [
    (torch.tensor([0.5, 1.0]), None, "integer"),
    (torch.tensor([[0, 1]]), None, "1-D"),
    (torch.tensor([0, -1]), None, ">= 0"),
    (torch.tensor([0, 3]), 2, "0..1"),
])
def test_indices_by_label_refuses_bad_labels(labels, num_classes, fragment) -> None:
    with pytest.raises(ValueError, match=fragment):
        indices_by_label(labels, num_classes)


def two_classes() -> ImageSet:
    return ImageSet(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 1, 0]),
                    ["a", "b"])


@pytest.mark.parametrize("images", [np.zeros((4, 1, 2, 2), np.uint8), [[0]], None])
def test_image_set_refuses_images_that_are_not_a_tensor(images) -> None:
    # used to fail with AttributeError ('numpy.ndarray' object has no attribute 'dim')
    with pytest.raises(ValueError, match="uint8 tensor"):
        ImageSet(images, torch.tensor([0, 1, 1, 0]), ["a", "b"])


def test_image_set_refuses_labels_that_are_not_a_tensor() -> None:
    with pytest.raises(ValueError, match="labels must be a tensor of shape"):
        ImageSet(torch.zeros(4, 1, 2, 2, dtype=torch.uint8), [0, 1, 1, 0], ["a", "b"])


def test_subset_out_of_range_says_which_positions_exist() -> None:
    # used to surface as index_select's "index out of range in self", or to wrap around
    # for negative positions
    with pytest.raises(IndexError, match=r"0\.\.3"):
        two_classes().subset([0, 4])
    with pytest.raises(IndexError, match=r"0\.\.3"):
        two_classes().subset([-1])


def test_an_empty_subset_is_an_empty_set() -> None:
    empty = two_classes().subset([])
    assert len(empty) == 0 and empty.classes == []


# ------------------------------------------------------------------------- the set itself


def toy() -> ImageSet:
    return ImageSet(
        images=torch.arange(24, dtype=torch.uint8).reshape(6, 1, 2, 2),
        labels=torch.tensor([0, 0, 1, 2, 2, 3]),
        classes=["a", "b", "c", "d"],
        groups=torch.tensor([0, 0, 0, 1, 1, 1]),
        group_names=["g0", "g1"],
        drawers=torch.tensor([1, 2, 1, 2, 1, 2]),
    )


def test_getitem_gives_unit_floats_and_works_with_a_dataloader() -> None:
    ds = toy()
    image, label = ds[5]
    assert image.dtype == torch.float32 and image.shape == (1, 2, 2)
    assert torch.allclose(image, torch.tensor([[[20.0, 21.0], [22.0, 23.0]]]) / 255)
    assert label == 3 and isinstance(label, int)
    images, labels = next(iter(DataLoader(ds, batch_size=4)))
    assert images.shape == (4, 1, 2, 2)
    assert labels.tolist() == [0, 0, 1, 2]
    assert len(ds) == 6 and ds.num_classes == 4


def test_float_scales_all_images() -> None:
    ds = toy()
    x = ds.float()
    assert x.dtype == torch.float32 and x.shape == ds.images.shape
    assert x.max() == pytest.approx(23 / 255)
    assert ds.images.dtype == torch.uint8  # not modified in place


def test_subset_relabels_densely_and_drops_unused_names() -> None:
    sub = toy().subset([3, 4, 5])
    assert sub.classes == ["c", "d"] and sub.labels.tolist() == [0, 0, 1]
    assert sub.group_names == ["g1"] and sub.groups.tolist() == [0, 0, 0]
    assert sub.drawers.tolist() == [2, 1, 2]
    assert torch.equal(sub.images, toy().images[3:])
    masked = toy().subset(torch.tensor([False, True, True, False, False, True]))
    assert masked.classes == ["a", "b", "d"] and masked.labels.tolist() == [0, 1, 2]


@given(st.lists(st.booleans(), min_size=6, max_size=6))
def test_subset_keeps_every_examples_names(mask: list[bool]) -> None:
    ds = toy()
    sub = ds.subset(mask)
    kept = [i for i, keep in enumerate(mask) if keep]
    assert [sub.classes[i] for i in sub.labels] == [ds.classes[ds.labels[i]] for i in kept]
    assert [sub.group_names[i] for i in sub.groups] == [ds.group_names[ds.groups[i]] for i in kept]
    assert sorted(set(sub.labels.tolist())) == list(range(sub.num_classes))
    assert torch.equal(sub.images, ds.images[kept])


def test_imageset_rejects_inconsistent_fields() -> None:
    ds = toy()
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(ds.images.float(), ds.labels, ds.classes)
    with pytest.raises(ValueError, match="labels"):
        ImageSet(ds.images, ds.labels, ds.classes[:3])
    with pytest.raises(ValueError, match="shape"):
        ImageSet(ds.images, ds.labels[:5], ds.classes)
    with pytest.raises(ValueError, match="together"):
        ImageSet(ds.images, ds.labels, ds.classes, groups=ds.groups)
    with pytest.raises(ValueError, match="mask"):
        ds.subset([True, False])
