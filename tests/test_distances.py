"""Distances against torch.linalg.norm / torch.cdist, and finite gradients at zero distance."""

from __future__ import annotations

import pytest
import torch

from siamese_lib.distances import (
    euclidean,
    pairwise_euclidean,
    pairwise_squared_euclidean,
    squared_euclidean,
)


def test_euclidean_matches_linalg_norm() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(16, 5), torch.randn(16, 5)
    torch.testing.assert_close(euclidean(a, b), torch.linalg.norm(a - b, dim=1))
    torch.testing.assert_close(squared_euclidean(a, b), torch.linalg.norm(a - b, dim=1) ** 2)


def test_euclidean_hand_value() -> None:
    assert euclidean(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]])).item() == pytest.approx(5.0)


def test_euclidean_rejects_different_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        euclidean(torch.zeros(3, 2), torch.zeros(3, 4))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_pairwise_matches_cdist(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(7, 4, dtype=dtype), torch.randn(5, 4, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(pairwise_euclidean(x, y), torch.cdist(x, y), **tol)
    torch.testing.assert_close(pairwise_squared_euclidean(x, y), torch.cdist(x, y) ** 2, **tol)


def test_pairwise_with_itself_matches_cdist() -> None:
    torch.manual_seed(2)
    x = torch.randn(6, 3, dtype=torch.float64)
    d = pairwise_euclidean(x)
    assert d.shape == (6, 6)
    torch.testing.assert_close(d, torch.cdist(x, x), rtol=1e-7, atol=1e-5)
    torch.testing.assert_close(d, d.T)


def test_pairwise_squared_never_negative() -> None:
    # large, nearly equal rows: |x|^2 + |y|^2 - 2 x.y rounds below zero without the clamp
    x = torch.full((4, 8), 1000.0) + torch.randn(4, 8) * 1e-3
    assert (pairwise_squared_euclidean(x) >= 0).all()


def test_pairwise_rejects_different_sizes() -> None:
    with pytest.raises(ValueError, match="same size"):
        pairwise_euclidean(torch.zeros(3, 2), torch.zeros(3, 5))


def test_euclidean_gradient_finite_at_zero_distance() -> None:
    a = torch.tensor([[1.0, -2.0, 0.5]], requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    d = euclidean(a, b)
    d.sum().backward()
    assert torch.isfinite(d).all()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


def test_euclidean_gradient_away_from_zero_is_unit_direction() -> None:
    a = torch.tensor([[3.0, 4.0]], requires_grad=True)
    euclidean(a, torch.zeros(1, 2)).sum().backward()
    torch.testing.assert_close(a.grad, torch.tensor([[0.6, 0.8]]))


def test_pairwise_gradient_finite_with_zero_distances() -> None:
    x = torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 2.0]], requires_grad=True)
    d = pairwise_euclidean(x)  # the diagonal and d[0, 1] are 0
    d.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(("call", "error", "message"), [
    # before: torch's "Dimension out of range (expected to be in range of [-1, 0], but got -2)"
    (lambda: pairwise_euclidean(torch.ones(3)), ValueError,
     r"expected two batches of embeddings \(N, d\) and \(M, d\) of one dtype, got "
     r"torch.float32 \(3,\) and torch.float32 \(3,\): unsqueeze a single embedding to \(1, d\)"),
    # before: torch's "expected m1 and m2 to have the same dtype, but got: float != double"
    (lambda: pairwise_euclidean(torch.ones(2, 3), torch.ones(2, 3, dtype=torch.float64)),
     ValueError, r"of one dtype, got torch.float32 \(2, 3\) and torch.float64 \(2, 3\)"),
    # before: "'list' object has no attribute 'shape'"
    (lambda: pairwise_euclidean([[1.0, 2.0]]), TypeError,
     r"embeddings must be tensors, got a list: use torch.as_tensor"),
    (lambda: euclidean([1.0, 2.0], torch.zeros(2)), TypeError,
     r"embeddings must be tensors, got a list: use torch.as_tensor"),
])
def test_distances_say_what_is_wrong(call, error, message) -> None:
    with pytest.raises(error, match=message):
        call()
