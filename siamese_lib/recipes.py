"""Named recipes: every model the book uses, defined once and trained at most once.

Taught in chapter 3, "Training a Siamese network on MNIST" (a recipe, its cache key and
its training run), and used by every chapter after it.

A :class:`Recipe` fixes everything that makes a model: data, network, loss, batches,
schedule, augmentation and seed. :func:`load_model` trains a recipe the first time it
is asked for and caches the weights, the loss history and the training time under
``cache_dir("models")``, in a file named after a hash of the recipe, so a notebook,
the results page and a benchmark that ask for the same recipe share one training run,
and changing any field trains a new model. A lock file next to the model makes two
processes that ask for the same untrained recipe at once (two notebooks running side by
side) train it once: the second waits, then loads what the first saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock
from torch import nn

from . import data as datasets
from .augment import RandomAffine, RandomThickening
from .checkpoint import TrainedNet, load_trained, save_trained
from .config import cache_dir, seed_everything
from .episodes import EpisodeSampler
from .evaluate import embed_images, one_shot_accuracy
from .imageset import gather
from .losses import KochLoss, by_name
from .nets import Classifier, EmbeddingNet
from .pairs import class_balanced_batches, pair_batches, to_float
from .precision import pick_device
from .train import History, fit

# 2: nets run in bfloat16 on CPUs that have it (see precision.autocast_dtype)
# 3: augmentation draws from its own stream (pairs.augmentation_seed), no longer from the
#    next epoch's sampling stream, so augmented models train differently
# 4: Koch's head starts as a scaled L1 distance (losses.KochLoss), so its models change
CACHE_VERSION = 4
#: Episodes of the validation after each epoch (N-way 1-shot accuracy on held-out data, with
#: N = 20, or the number of held-out classes if fewer, as for the 10 MNIST digits).
VALIDATION_EPISODES = 300


@dataclass
class Recipe:
    """Everything that defines a trained model.

    Attributes:
        name: a short name, e.g. "omniglot-prototypical".
        data: "mnist", "omniglot-background", "omniglot-vinyals" or "att-faces".
        loss: "contrastive" (sampled pairs), "batch-contrastive", "koch", "triplet",
            "prototypical" or "cross-entropy" (a standard classifier).
        loss_kwargs: keyword arguments of the loss (e.g. ``{"margin": 1.0}``).
        net: keyword arguments of :class:`~siamese_lib.nets.EmbeddingNet`; its
            ``input_size``, if given, is the size the images are loaded at.
        batch: pairs per batch for "contrastive"/"koch"; P x K as ``[P, K]`` otherwise.
        epochs: epochs (a validation point after each).
        steps_per_epoch: optimiser steps per epoch.
        lr: peak learning rate (AdamW, cosine schedule).
        weight_decay: AdamW weight decay.
        augment: apply Koch-style random affine distortions to training images.
        thicken: probability that a training image's strokes are thickened by one pixel
            (:class:`~siamese_lib.augment.RandomThickening`, after the affine distortion).
        classes_per_alphabet: for P x K batches of Omniglot, draw the P classes this many
            per alphabet (see :class:`~siamese_lib.pairs.ClassBalancedBatchSampler`); 0
            draws them from all alphabets at once.
        distort_when_longer: whether :meth:`longer` switches Koch's distortions on (for
            Omniglot). It changes no weights of this recipe, only those of its longer runs,
            so it is not part of :meth:`key`.
        seed: seeds initialisation and batch sampling.
        description: one line for tables and the book.
    """

    name: str
    data: str
    loss: str
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    net: dict[str, Any] = field(default_factory=dict)
    batch: Any = 128
    epochs: int = 5
    steps_per_epoch: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    augment: bool = False
    thicken: float = 0.0
    classes_per_alphabet: int = 0
    distort_when_longer: bool = True
    seed: int = 0
    description: str = ""

    def key(self) -> str:
        """A hash of every field that changes the trained weights."""
        fields = asdict(self)
        fields.pop("description")
        fields.pop("distort_when_longer")  # a rule for longer runs, whose augment field says it
        for added_later in ("thicken", "classes_per_alphabet"):
            if not fields[added_later]:  # left out when unused, so that older keys hold
                fields.pop(added_later)
        blob = json.dumps({"v": CACHE_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def scaled(self, factor: float, **changes: Any) -> Recipe:
        """The same recipe with ``factor`` times the steps (e.g. a longer GPU run)."""
        steps = max(1, round(self.steps_per_epoch * factor))
        return replace(self, steps_per_epoch=steps, **changes)

    def longer(self, factor: float) -> Recipe:
        """The recipe trained ``factor`` times longer, as ``<name>-x<factor>``, with Koch's
        distortions on for Omniglot unless ``distort_when_longer`` is False: a long run sees
        each image many times, and then they pay off (chapter 8's lever 4, and the "long"
        budget)."""
        distort = self.distort_when_longer and self.data.startswith("omniglot")
        augment = self.augment or distort
        return self.scaled(factor, name=f"{self.name}-x{factor:g}", augment=augment)


@dataclass
class TrainedModel(TrainedNet):
    """A recipe's trained model with what its training measured.

    Attributes:
        recipe: the recipe.
        model: the embedding net (or the classifier for "cross-entropy").
        loss_fn: the loss module (its head scores pairs for "koch").
        history: losses per step/epoch, validation metric per epoch, times.
        from_cache: whether this call loaded it instead of training it.

    ``similarity`` (Koch's learned head, None for distance models) and ``embedding_net``
    come from :class:`~siamese_lib.checkpoint.TrainedNet`.
    """

    recipe: Recipe
    model: nn.Module
    loss_fn: nn.Module
    history: History
    from_cache: bool = False

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Embed images once (see :func:`siamese_lib.evaluate.embed_images`)."""
        return embed_images(self.embedding_net, images)


# ------------------------------------------------------------------------------ data


@dataclass
class TrainingData:
    """Training images and labels, and held-out data for the validation curve; ``groups``
    is the alphabet of every training image of Omniglot (None for other data)."""

    images: torch.Tensor
    labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    num_classes: int
    groups: torch.Tensor | None = None


def training_data(name: str, size: int | None = None) -> TrainingData:
    """The training and validation split of a recipe's data set, its images ``size`` x
    ``size`` (None: the set's usual size; MNIST comes in 28 x 28 only)."""
    if size is not None and name == "mnist" and size != 28:
        raise ValueError(f"MNIST comes in 28x28 only, not {size}x{size}: leave input_size at 28")
    if name == "mnist":
        train, val = datasets.load_mnist_split()  # read once, split in two
        return TrainingData(train.images, train.labels, val.images, val.labels, 10)
    if name == "omniglot-background":
        bg = datasets.load_dataset("omniglot-background", size)
        held_out = bg.groups >= bg.groups.max() - 3  # the last 4 background alphabets validate
        return TrainingData(bg.images[~held_out], bg.labels[~held_out],
                            bg.images[held_out], bg.labels[held_out], bg.num_classes,
                            bg.groups[~held_out])
    if name == "omniglot-vinyals":
        train = datasets.load_dataset("omniglot-vinyals-train", size)
        val = datasets.load_dataset("omniglot-vinyals-val", size)
        return TrainingData(train.images, train.labels, val.images, val.labels, train.num_classes,
                            train.groups)
    if name == "att-faces":
        faces = datasets.load_dataset("att-faces-training", size)
        held_out = faces.labels >= faces.num_classes - 7  # the last 7 training subjects validate
        return TrainingData(faces.images[~held_out], faces.labels[~held_out],
                            faces.images[held_out], faces.labels[held_out], faces.num_classes)
    raise ValueError(
        f"unknown data {name!r}: use mnist, omniglot-background, omniglot-vinyals or att-faces"
    )


def _make_loss(recipe: Recipe, embedding_dim: int) -> nn.Module:
    # Koch's head is sized by the net; the other losses take the recipe's arguments only
    size = {"embedding_dim": embedding_dim} if recipe.loss == "koch" else {}
    return by_name(recipe.loss, **recipe.loss_kwargs, **size)


def _batches(recipe: Recipe, data: TrainingData, device: torch.device) -> Callable[[int], Iterable]:
    augment = _augmentation(recipe)
    images = data.images.to(device)
    pairwise = recipe.loss in ("contrastive", "koch")

    def batches(epoch: int) -> Iterable:
        seed = recipe.seed * 1000 + epoch
        if pairwise:
            return pair_batches(images, data.labels, recipe.batch, recipe.steps_per_epoch,
                                seed=seed, augment=augment, device=device)
        if recipe.loss == "cross-entropy":
            return _shuffled_batches(images, data.labels, recipe.batch,
                                     recipe.steps_per_epoch, seed, augment, device)
        p, k = recipe.batch
        return class_balanced_batches(images, data.labels, p, k, recipe.steps_per_epoch,
                                      seed=seed, augment=augment, device=device,
                                      groups=data.groups,
                                      classes_per_group=recipe.classes_per_alphabet or None)

    return batches


def _augmentation(recipe: Recipe) -> Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None:
    steps: list[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = []
    if recipe.augment:
        steps.append(RandomAffine())
    if recipe.thicken:
        steps.append(RandomThickening(recipe.thicken))
    if not steps:
        return None

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for step in steps:
            x = step(x, generator)
        return x

    return augment


def _shuffled_batches(images, labels, batch_size, n_batches, seed, augment, device):
    # one generator draws both the indices and the augmentation: each epoch's seed gives
    # one stream of its own, so no epoch replays another's draws (see pairs.augmentation_seed)
    g = torch.Generator().manual_seed(seed)
    for _ in range(n_batches):
        idx = torch.randint(len(labels), (batch_size,), generator=g)
        x = to_float(gather(images, idx))
        yield (augment(x, g) if augment else x).to(device), gather(labels, idx).to(device)


def _validator(recipe: Recipe, data: TrainingData, loss_fn: nn.Module):
    if recipe.loss == "cross-entropy":
        def accuracy(model: nn.Module) -> float:
            logits = embed_images(model, data.val_images)
            return float((logits.argmax(1) == data.val_labels.to(logits.device)).double().mean())
        return accuracy
    n_way = min(20, int(data.val_labels.unique().numel()))
    sampler = EpisodeSampler(data.val_labels, n_way, 1, 1, VALIDATION_EPISODES, seed=12345)
    episodes = sampler.sample()
    similarity = loss_fn.similarity if isinstance(loss_fn, KochLoss) else None

    # embed_images gives CPU embeddings while fit() keeps Koch's head on the training
    # device; one_shot_accuracy scores them on the head's device
    def one_shot(model: nn.Module) -> float:
        return one_shot_accuracy(embed_images(model, data.val_images), episodes, similarity).mean

    return one_shot


def train_recipe(
    recipe: Recipe, device: str | torch.device | None = None, progress: bool = True
) -> TrainedModel:
    """Train a recipe from scratch (no cache). Validation: N-way 1-shot accuracy per epoch."""
    device = pick_device(device)
    seed_everything(recipe.seed)
    data = training_data(recipe.data, recipe.net.get("input_size"))  # the net's size, if it says
    shape = dict(in_channels=data.images.shape[1], input_size=data.images.shape[-1])
    net = EmbeddingNet(**{**shape, **recipe.net})
    model: nn.Module = net
    if recipe.loss == "cross-entropy":
        model = Classifier(net, data.num_classes)
    loss_fn = _make_loss(recipe, net.output_dim)
    history = fit(
        model, loss_fn, _batches(recipe, data, device), recipe.epochs, recipe.steps_per_epoch,
        lr=recipe.lr, weight_decay=recipe.weight_decay, device=device,
        validate=_validator(recipe, data, loss_fn), progress=progress, desc=recipe.name,
    )
    return TrainedModel(recipe, model.cpu(), loss_fn.cpu(), history)


def load_model(
    recipe: str | Recipe,
    retrain: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> TrainedModel:
    """A recipe's trained model: from the cache if it was trained before, else trained now.

    Args:
        recipe: a :class:`Recipe` or the name of one in :data:`RECIPES`.
        retrain: ignore and overwrite the cached model.
        device: where to train if it must be trained.
        progress: show the training progress bar.
    """
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise KeyError(f"no recipe named {recipe!r}; known: {sorted(RECIPES)}")
        recipe = RECIPES[recipe]
    path = cache_dir("models") / f"{recipe.name}-{recipe.key()}.pt"
    with _one_trainer(path):
        if path.exists() and not retrain:
            return _load_trained(recipe, path)
        t0 = time.perf_counter()
        trained = train_recipe(recipe, device=device, progress=progress)
        save_trained(path, trained.model, trained.loss_fn, recipe=asdict(recipe),
                     history=trained.history, wall_seconds=time.perf_counter() - t0)
        return trained


def _load_trained(recipe: Recipe, path: Path) -> TrainedModel:
    saved = load_trained(path)
    if saved.loss_fn is None or saved.history is None:
        raise ValueError(f"{path} holds a net without its loss or history; delete it to retrain")
    history = History.from_dict(saved.history)
    return TrainedModel(recipe, saved.model, saved.loss_fn, history, from_cache=True)


@contextlib.contextmanager
def _one_trainer(path: Path) -> Iterator[None]:
    """Hold ``<path>.lock`` while the model at ``path`` is looked up or trained."""
    lock: FileLock | None = FileLock(f"{path}.lock")
    try:
        lock.acquire()
    except OSError:  # a read-only cache (shared, pre-trained): nothing is written to guard
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def _recipes(*recipes: Recipe) -> dict[str, Recipe]:
    return {r.name: r for r in recipes}


_OMNIGLOT_NET = dict(width=64, embedding_dim=64)
# The contrastive models embed on the unit sphere: see EmbeddingNet(normalize=True), and
# chapter 7's measurement of what it changes.
_UNIT_NET = dict(_OMNIGLOT_NET, normalize=True)


def _omniglot(name: str, loss: str, loss_kwargs: dict[str, Any], batch: Any, description: str,
              data: str = "omniglot-background", thicken: float = 0.0,
              net: dict[str, Any] = _OMNIGLOT_NET, distort_when_longer: bool = True) -> Recipe:
    # One budget for every loss: 256 images through the net per step, same steps,
    # schedule, augmentation and seed, so the losses differ only in what they optimise.
    # No augmentation at this short budget, where it cost accuracy; the long budget
    # (at_budget) switches it on, unless distort_when_longer is False.
    return Recipe(name, data, loss, loss_kwargs, net=dict(net), batch=batch, epochs=8,
                  steps_per_epoch=50, lr=2e-3, augment=False, thicken=thicken,
                  distort_when_longer=distort_when_longer, description=description)


#: The book's recipes at the short budget, by name (a 2-core CPU builds the book in minutes).
BOOK_RECIPES: dict[str, Recipe] = _recipes(
    Recipe("mnist-classifier", "mnist", "cross-entropy", net=dict(width=32, embedding_dim=64),
           batch=128, epochs=2, steps_per_epoch=150, lr=2e-3,
           description="standard CNN classifier over the 10 digits"),
    Recipe("mnist-contrastive", "mnist", "contrastive", {"margin": 2.0},
           net=dict(width=32, embedding_dim=16), batch=128, epochs=4, steps_per_epoch=150,
           lr=2e-3, description="the article's model: sampled pairs, contrastive loss, m=2"),
    # Sampled pairs are half similar: with the plain mean the pull wins as the dissimilar
    # pairs get beyond the margin, so the two kinds are averaged apart ("nonzero").
    # Its longer runs train on the images as drawn: with Koch's distortions its 8x-longer
    # model scored lower on Lake's runs and on 20-way mixed, in each of 3 training seeds.
    _omniglot("omniglot-contrastive-pairs", "contrastive", {"margin": 1.0, "reduction": "nonzero"},
              128, "contrastive loss on 128 sampled pairs per batch (the article's way), "
              "unit-length embeddings", net=_UNIT_NET, distort_when_longer=False),
    _omniglot("omniglot-contrastive", "batch-contrastive", {"margin": 1.0}, [64, 4],
              "contrastive loss, mean over all pairs of 64 x 4 class-balanced batches, "
              "unit-length embeddings", net=_UNIT_NET),
    # The same model one change at a time, for chapter 7's before and after: first the
    # embeddings as the net outputs them and the pull of similar pairs weighed as much as
    # all dissimilar pairs together, then unit-length embeddings with that weighting.
    _omniglot("omniglot-contrastive-raw", "batch-contrastive",
              {"margin": 1.0, "reduction": "nonzero"}, [64, 4],
              "before: raw embeddings, similar and violating dissimilar pairs averaged apart"),
    _omniglot("omniglot-contrastive-unit-nonzero", "batch-contrastive",
              {"margin": 1.0, "reduction": "nonzero"}, [64, 4],
              "unit-length embeddings, similar and violating dissimilar pairs averaged apart",
              net=_UNIT_NET),
    _omniglot("omniglot-koch", "koch", {}, 128,
              "Koch et al.: learned head on |e1 - e2|, sigmoid, binary cross-entropy"),
    # With Koch's distortions its 8x-longer run collapsed: the loss sat at the margin from
    # the second epoch on (hardest positive as far as hardest negative), Lake's runs 53.5;
    # on the images as drawn it kept learning (92.2).
    _omniglot("omniglot-triplet", "triplet", {"margin": 0.5, "mining": "batch_hard"}, [64, 4],
              "triplet loss, batch-hard mining on 64 x 4 batches", distort_when_longer=False),
    _omniglot("omniglot-prototypical", "prototypical", {"n_support": 1}, [64, 4],
              "softmax over distances to prototypes (Snell et al.) on 64 x 4 batches"),
    # for the transfer to MNIST: digits are drawn with strokes about twice as wide
    _omniglot("omniglot-prototypical-thickened", "prototypical", {"n_support": 1}, [64, 4],
              "prototypical loss, half the training characters with thickened strokes",
              thicken=0.5),
    _omniglot("omniglot-vinyals", "prototypical", {"n_support": 1}, [64, 4],
              "prototypical loss on 64 x 4 batches, trained on the Vinyals class split",
              data="omniglot-vinyals"),
    # margin and steps were chosen on the validation subjects alone, never on the test ones
    Recipe("faces-contrastive", "att-faces", "batch-contrastive",
           {"margin": 4.0, "reduction": "nonzero"},
           net=dict(width=32, embedding_dim=32), batch=[10, 4], epochs=8, steps_per_epoch=50,
           lr=2e-3, augment=True, description="AT&T faces, contrastive loss on all pairs"),
)

#: The environment variable that picks the training budget of :data:`RECIPES`.
BUDGET_ENV = "SIAMESE_LIB_BUDGET"
#: The budgets, "book" (the default) and "long" (the accuracy benchmark's models).
BUDGETS = ("book", "long")
#: How many times the book's steps a "long" recipe trains (about 8 CPU-minutes per
#: Omniglot model on 2 cores).
LONG_SCALE = 8


def training_budget() -> str:
    """The budget named by ``SIAMESE_LIB_BUDGET``: "book" when it is unset."""
    budget = os.environ.get(BUDGET_ENV, "").strip() or "book"
    if budget not in BUDGETS:
        raise ValueError(
            f"{BUDGET_ENV}={budget!r} is not a training budget: use one of "
            f"{', '.join(BUDGETS)} (or leave it unset for 'book')"
        )
    return budget


def at_budget(recipe: Recipe, budget: str, scale: float = LONG_SCALE) -> Recipe:
    """A recipe at a training budget: itself for "book"; for "long",
    :meth:`Recipe.longer` by ``scale``."""
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {', '.join(BUDGETS)}")
    return recipe if budget == "book" else recipe.longer(scale)


#: The recipes the book and the benchmarks use, by name, at the budget of
#: ``SIAMESE_LIB_BUDGET``, read once on import; :data:`BOOK_RECIPES` unless it says "long".
RECIPES: dict[str, Recipe] = {
    name: at_budget(recipe, training_budget()) for name, recipe in BOOK_RECIPES.items()
}

#: The contrastive model one change at a time, as chapter 7 measures it; first before
#: both changes, then with unit-length embeddings, then also with the plain mean over all
#: pairs (the book's recipe).
CONTRASTIVE_STEPS = [
    "omniglot-contrastive-raw", "omniglot-contrastive-unit-nonzero", "omniglot-contrastive",
]

#: The recipes compared in the chapter "Beyond the contrastive loss", one per loss.
LOSS_COMPARISON = [
    "omniglot-contrastive-pairs", "omniglot-contrastive", "omniglot-koch", "omniglot-triplet",
    "omniglot-prototypical",
]
