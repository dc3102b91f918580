"""Tests for siamese_lib.imageset: the image set type and its two index helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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


def toy() -> ImageSet:
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
        toy().subset([0, 4])
    with pytest.raises(IndexError, match=r"0\.\.3"):
        toy().subset([-1])


def test_an_empty_subset_is_an_empty_set() -> None:
    empty = toy().subset([])
    assert len(empty) == 0 and empty.classes == []
