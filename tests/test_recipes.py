"""Recipes: keys that change with every field that changes the weights, and bad names."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from siamese_lib.recipes import RECIPES, _augmentation, load_model, training_data


def test_recipe_key_changes_with_what_changes_the_weights() -> None:
    recipe = RECIPES["omniglot-prototypical"]
    assert recipe.key() != replace(recipe, data="omniglot-vinyals").key()
    assert recipe.key() != replace(recipe, loss_kwargs={"n_support": 2}).key()
    assert recipe.key() != recipe.scaled(2).key()
    assert recipe.key() != replace(recipe, thicken=0.5).key()
    assert recipe.key() == replace(recipe, description="other words").key()


def test_unknown_training_data_names_the_choices() -> None:
    with pytest.raises(ValueError, match="omniglot-vinyals"):
        training_data("cifar")


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="omniglot-prototypical"):
        load_model("no-such-recipe")


def test_augmentation_applies_the_affine_then_the_thickening() -> None:
    recipe = RECIPES["omniglot-prototypical"]
    assert _augmentation(recipe) is None  # the book's short budget: no augmentation
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 10:18, 13] = 1.0  # a vertical stroke, one pixel wide
    thick = _augmentation(replace(recipe, thicken=1.0))(x, torch.Generator().manual_seed(0))
    assert torch.equal(thick[:, :, 10:18, 12:15], torch.ones(4, 1, 8, 3))
    both = _augmentation(replace(recipe, augment=True, thicken=1.0))
    y = both(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.equal(y, thick)
