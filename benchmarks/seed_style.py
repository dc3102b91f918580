"""A per-item pair Dataset in the style of the article's original code: the speed baseline.

Chapter 3 trains with the library's vectorised pairs instead; the training section of
``python -m benchmarks.speed`` (:mod:`benchmarks.training`) measures the difference.

The article this book grew from trains with the ``SiameseNetworkDataset`` of the
repository harveyslash/Facial-Similarity-with-Siamese-Networks-in-Pytorch. Its
``__getitem__`` ignores the index it is given and builds one pair in Python:

1. pick a random image;
2. flip a coin for "same class" or "different class";
3. keep picking random images until one satisfies that condition;
4. turn each image into a PIL image and run it through torchvision transforms;
5. return ``(img0, img1, label)`` with label 1 for different classes, 0 for the same.

A ``DataLoader(batch_size=..., shuffle=True, num_workers=0)`` then calls it once per
pair and collates the results. :class:`SeedStylePairDataset` re-implements that
pattern (it is not a copy of that code) so that :mod:`benchmarks.speed` can measure
siamese_lib's vectorised :func:`~siamese_lib.pairs.pair_batches` against it on the same
images, the same network and the same batch size. It exists only as that baseline:
use :class:`~siamese_lib.pairs.PairSampler` / ``pair_batches`` for real work.

Differences from the original, all of which make the baseline *faster*, so the
measured speed-up is a lower bound:

* images come from a uint8 array in memory instead of being opened and decoded from
  PNG files on every access (the original reads an ``ImageFolder`` from disk);
* no ``Resize`` and no ``ImageOps.invert`` (MNIST is already 28x28 with bright ink);
* the label is a 0-d float tensor, so a batch of labels has shape ``(B,)`` as the
  library's losses expect, instead of a ``(1,)`` array per pair.

Randomness comes from a seeded :class:`random.Random`, so a run is reproducible.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class SeedStylePairDataset(Dataset):
    """Random similar/dissimilar pairs built one at a time, as the article's code does.

    Args:
        images: uint8 images, shape (N, 1, H, W) or (N, H, W) (a tensor or an array).
        labels: class label of every image, shape (N,).
        transform: applied to each PIL image; default ``transforms.ToTensor()``.
        seed: seeds this dataset's own :class:`random.Random`.
    """

    def __init__(
        self,
        images: torch.Tensor | np.ndarray,
        labels: torch.Tensor | np.ndarray,
        transform: Callable[[Image.Image], Any] | None = None,
        seed: int = 0,
    ) -> None:
        array = np.asarray(images)
        if array.ndim == 4:
            if array.shape[1] != 1:
                raise ValueError(f"expected grey images (N, 1, H, W), got {array.shape}")
            array = array[:, 0]
        if array.dtype != np.uint8 or array.ndim != 3:
            raise ValueError(f"expected uint8 images (N, H, W), got {array.dtype} {array.shape}")
        label_list = [int(v) for v in np.asarray(labels).reshape(-1)]
        if len(label_list) != len(array):
            raise ValueError(f"{len(array)} images but {len(label_list)} labels")
        if len(set(label_list)) < 2:
            raise ValueError("dissimilar pairs need at least two classes")
        # (image, label) records, like ImageFolder.imgs holds (path, label) records
        self.records: list[tuple[np.ndarray, int]] = list(zip(array, label_list, strict=True))
        self.transform = transform if transform is not None else transforms.ToTensor()
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Any, Any, torch.Tensor]:
        """One random pair; ``index`` is ignored, as in the original."""
        first = self.rng.choice(self.records)
        want_same = self.rng.randint(0, 1) == 1
        while True:
            second = self.rng.choice(self.records)
            if (second[1] == first[1]) == want_same:
                break
        img0 = self.transform(Image.fromarray(first[0]))
        img1 = self.transform(Image.fromarray(second[0]))
        label = torch.tensor(float(first[1] != second[1]))
        return img0, img1, label


def seed_style_loader(
    images: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    batch_size: int = 128,
    seed: int = 0,
) -> DataLoader:
    """The baseline pipeline: :class:`SeedStylePairDataset` behind a shuffling DataLoader.

    Batches are ``[img0 (B, 1, H, W), img1 (B, 1, H, W), label (B,)]``, which
    :func:`siamese_lib.train.fit` accepts as a pair batch.
    """
    dataset = SeedStylePairDataset(images, labels, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=0,
        generator=torch.Generator().manual_seed(seed),
    )


class SeedStyleTwin(nn.Module):
    """The article's forward pass: each side of the pair batch through the net in its own call.

    The original ``SiameseNetwork.forward(input1, input2)`` calls ``forward_once`` on each
    input. :func:`siamese_lib.train.fit` hands its model both sides as one concatenated
    batch; this wrapper splits it again, so the seed's two calls (and their two sets of
    BatchNorm statistics) are what gets timed.
    """

    def __init__(self, embedding_net: nn.Module) -> None:
        super().__init__()
        self.embedding_net = embedding_net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` = both sides of the pair batch, stacked -> both sides' embeddings, stacked."""
        first, second = x.chunk(2)
        return torch.cat([self.embedding_net(first), self.embedding_net(second)])
