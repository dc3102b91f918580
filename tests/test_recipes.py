"""Recipes: keys that change with every field that changes the weights, and bad names."""

from __future__ import annotations

from dataclasses import replace

import pytest

from siamese_lib.recipes import RECIPES, load_model, training_data


def test_recipe_key_changes_with_what_changes_the_weights() -> None:
    recipe = RECIPES["omniglot-prototypical"]
    assert recipe.key() != replace(recipe, data="omniglot-vinyals").key()
    assert recipe.key() != replace(recipe, loss_kwargs={"n_support": 2}).key()
    assert recipe.key() != recipe.scaled(2).key()
    assert recipe.key() == replace(recipe, description="other words").key()


def test_unknown_training_data_names_the_choices() -> None:
    with pytest.raises(ValueError, match="omniglot-vinyals"):
        training_data("cifar")


def test_unknown_recipe_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="omniglot-prototypical"):
        load_model("no-such-recipe")
