"""Euclidean distances between embeddings, with gradients that stay finite at zero.

Taught in chapter 2, "Siamese networks and the contrastive loss" (the distance D), and
chapter 4, "Embeddings, distances and thresholds".

The article's Eq. 1.1: ``D = ||G(x1) - G(x2)||_2``. The square root has an infinite
derivative at 0, and two identical images give exactly 0, so every function here
clamps the squared distance before taking its root.
"""

from __future__ import annotations

import torch

_EPS = 1e-12


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise squared distance ``||a_i - b_i||^2`` of two (N, d) batches -> (N,)."""
    _check_same_shape(a, b)
    return (a - b).pow(2).sum(dim=-1)


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance D of two (N, d) batches -> (N,), finite gradient at D=0."""
    return squared_euclidean(a, b).clamp_min(_EPS).sqrt()


def pairwise_squared_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """All squared distances between the rows of x (N, d) and y (M, d) -> (N, M).

    Uses ``|x|^2 + |y|^2 - 2 x.y`` (one matrix product) and clamps the rounding
    error that can make it slightly negative.
    """
    y = x if y is None else y
    _check_tensors(x, y)
    if x.dim() < 2 or y.dim() < 2 or x.dtype != y.dtype:  # else torch's matmul errors
        raise ValueError(
            f"expected two batches of embeddings (N, d) and (M, d) of one dtype, got "
            f"{x.dtype} {tuple(x.shape)} and {y.dtype} {tuple(y.shape)}: unsqueeze a single "
            "embedding to (1, d)"
        )
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"embeddings must have the same size, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    sq = x.pow(2).sum(-1).unsqueeze(-1) + y.pow(2).sum(-1).unsqueeze(-2)
    return (sq - 2 * x @ y.transpose(-1, -2)).clamp_min(0)


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """All Euclidean distances between the rows of x (N, d) and y (M, d) -> (N, M)."""
    return pairwise_squared_euclidean(x, y).clamp_min(_EPS).sqrt()


def _check_tensors(*embeddings: torch.Tensor) -> None:
    for e in embeddings:
        if not torch.is_tensor(e):
            raise TypeError(f"embeddings must be tensors, got a {type(e).__name__}: use "
                            "torch.as_tensor(...)")


def _check_same_shape(a: torch.Tensor, b: torch.Tensor) -> None:
    _check_tensors(a, b)
    if a.shape != b.shape:
        raise ValueError(
            "the two embeddings of a pair must have the same shape, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}: pass one row per pair in each"
        )
