"""Recipes: keys that change with every field, the rotation class augmentation, bad names."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from siamese_lib.recipes import RECIPES, rotations_as_classes, training_data


def test_rotations_become_new_classes() -> None:
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    images[:, 0, 0, 1] = torch.tensor([10, 20, 30], dtype=torch.uint8)  # top row, off-centre
    labels = torch.tensor([0, 1, 1])
    rotated, new_labels = rotations_as_classes(images, labels, num_classes=2)
    assert rotated.shape == (12, 1, 4, 4) and rotated.dtype == torch.uint8
    assert new_labels.tolist() == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7]
    assert torch.equal(rotated[:3], images)
    # 90 degrees counter-clockwise: the pixel at (row 0, col 1) goes to (row 2, col 0)
    assert rotated[3:6, 0, 2, 0].tolist() == [10, 20, 30]
    assert torch.equal(rotated[9:], torch.rot90(images, 3, dims=(2, 3)))


def test_recipe_key_changes_with_its_data() -> None:
    recipe = RECIPES["omniglot-prototypical"]
    rotated = replace(recipe, data="omniglot-background-rotations")
    assert recipe.key() != rotated.key()
    assert recipe.key() == replace(recipe, description="other words").key()


def test_unknown_training_data_names_the_choices() -> None:
    with pytest.raises(ValueError, match="omniglot-background-rotations"):
        training_data("cifar")
