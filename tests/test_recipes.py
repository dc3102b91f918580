"""Recipes: keys that change with every field that changes the weights, and bad names."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
import torch

from siamese_lib import recipes
from siamese_lib.config import CACHE_ENV
from siamese_lib.nets import EmbeddingNet
from siamese_lib.recipes import RECIPES, _augmentation, load_model, training_data
from siamese_lib.train import History


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


def fake_training(calls: list[str], seconds: float = 0.3):
    """A stand-in for train_recipe: slow enough for a second caller to arrive meanwhile."""

    def train_recipe(recipe, device=None, progress=True):
        calls.append(recipe.name)
        time.sleep(seconds)
        net = EmbeddingNet(width=8, embedding_dim=4)
        return recipes.TrainedModel(recipe, net, recipes._make_loss(recipe, 4),
                                    History(epoch_seconds=[seconds]))

    return train_recipe


def test_two_callers_at_once_train_a_recipe_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(recipes, "train_recipe", fake_training(calls))
    results: list[recipes.TrainedModel] = []

    def ask() -> None:
        results.append(load_model("mnist-contrastive", progress=False))

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert calls == ["mnist-contrastive"]  # without the lock, both threads train
    assert sorted(r.from_cache for r in results) == [False, True]
    trained, loaded = sorted(results, key=lambda r: r.from_cache)
    for a, b in zip(trained.model.parameters(), loaded.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert load_model("mnist-contrastive", retrain=True, progress=False).from_cache is False
    assert len(calls) == 2


def test_a_cache_without_write_access_still_loads(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(recipes, "train_recipe", fake_training(calls, seconds=0.0))
    load_model("mnist-contrastive", progress=False)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", self.lock_file)

    monkeypatch.setattr(recipes.FileLock, "acquire", refuse)
    assert load_model("mnist-contrastive", progress=False).from_cache
    assert calls == ["mnist-contrastive"]


def test_budget_is_book_unless_the_environment_says_long(monkeypatch) -> None:
    monkeypatch.delenv(recipes.BUDGET_ENV, raising=False)
    assert recipes.training_budget() == "book"
    monkeypatch.setenv(recipes.BUDGET_ENV, "long")
    assert recipes.training_budget() == "long"
    monkeypatch.setenv(recipes.BUDGET_ENV, "longer")
    with pytest.raises(ValueError, match="SIAMESE_LIB_BUDGET='longer'.*book, long"):
        recipes.training_budget()


def test_long_budget_trains_longer_under_its_own_name() -> None:
    book = recipes.BOOK_RECIPES["omniglot-contrastive"]
    assert recipes.at_budget(book, "book") is book
    long = recipes.at_budget(book, "long")
    assert long.steps_per_epoch == recipes.LONG_SCALE * book.steps_per_epoch
    assert long.name == f"omniglot-contrastive-x{recipes.LONG_SCALE}" and long.augment
    assert long.key() != book.key()
    with pytest.raises(ValueError, match="unknown budget"):
        recipes.at_budget(book, "huge")


def test_a_longer_run_distorts_the_images_unless_its_recipe_says_not() -> None:
    book = recipes.BOOK_RECIPES
    assert book["omniglot-prototypical"].longer(4).augment
    pairs = book["omniglot-contrastive-pairs"]
    assert not pairs.distort_when_longer and not pairs.longer(8).augment
    assert not book["omniglot-triplet"].longer(8).augment  # batch-hard collapsed with them
    assert not book["mnist-contrastive"].longer(8).augment  # distortions are Omniglot's
    # the rule changes the longer runs' weights, not this recipe's: its cached model holds
    assert replace(pairs, distort_when_longer=True).key() == pairs.key()
    assert replace(pairs, distort_when_longer=True).longer(8).key() != pairs.longer(8).key()


def test_recipes_follow_the_budget_of_the_environment() -> None:
    import subprocess
    import sys

    code = ("from siamese_lib.recipes import RECIPES, BOOK_RECIPES, at_budget\n"
            "print(all(RECIPES[n] == at_budget(r, 'long') for n, r in BOOK_RECIPES.items()))")
    env = {**__import__("os").environ, recipes.BUDGET_ENV: "long"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr
    if recipes.BUDGET_ENV not in __import__("os").environ:
        assert RECIPES == recipes.BOOK_RECIPES


def test_a_cached_koch_model_scores_pairs_with_its_trained_head(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))

    def train_recipe(recipe, device=None, progress=True):
        torch.manual_seed(0)
        loss_fn = recipes._make_loss(recipe, 4)
        with torch.no_grad():
            loss_fn.head.weight.normal_()  # "trained": unlike a fresh head
        return recipes.TrainedModel(recipe, EmbeddingNet(width=8, embedding_dim=4), loss_fn,
                                    History(epoch_seconds=[0.1]))

    monkeypatch.setattr(recipes, "train_recipe", train_recipe)
    trained = load_model("omniglot-koch", progress=False)
    loaded = load_model("omniglot-koch", progress=False)
    assert loaded.from_cache and loaded.history == trained.history
    e1, e2 = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(loaded.similarity(e1, e2), trained.similarity(e1, e2))
    assert loaded.embedding_net is loaded.model and loaded.recipe is RECIPES["omniglot-koch"]


def test_make_loss_uses_the_losses_by_name() -> None:
    from siamese_lib.losses import KochLoss, TripletLoss

    assert isinstance(recipes._make_loss(RECIPES["omniglot-koch"], 7), KochLoss)
    triplet = recipes._make_loss(RECIPES["omniglot-triplet"], 7)
    assert isinstance(triplet, TripletLoss) and triplet.mining == "batch_hard"
    with pytest.raises(ValueError, match="unknown loss 'arcface'"):
        recipes._make_loss(replace(RECIPES["omniglot-triplet"], loss="arcface"), 7)
