"""RandomAffine: shape, reproducibility, that it distorts, and that p=0 is the identity; shift."""

from __future__ import annotations

import pytest
import torch

from siamese_lib.augment import RandomAffine, RandomThickening, shift


def squares(n: int = 6, size: int = 20) -> torch.Tensor:
    """Images with a bright off-centre square: any rotation, shear, scale or shift moves it."""
    x = torch.zeros(n, 1, size, size)
    x[:, :, 4:11, 5:13] = 1.0
    return x


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_keeps_shape_and_dtype() -> None:
    x = torch.rand(5, 3, 16, 12)
    out = RandomAffine()(x, gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype


def test_reproducible_with_same_generator_seed() -> None:
    x = squares()
    a = RandomAffine()(x, gen(1))
    b = RandomAffine()(x, gen(1))
    c = RandomAffine()(x, gen(2))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_changes_every_image() -> None:
    x = squares()
    out = RandomAffine()(x, gen(3))
    per_image = (out - x).abs().flatten(1).amax(1)
    assert (per_image > 0.1).all()


def test_p_zero_is_identity() -> None:
    x = torch.rand(4, 1, 15, 15)
    out = RandomAffine(degrees=45, shear=0.5, scale=0.5, translate=0.3, p=0.0)(x, gen(4))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


def test_zero_ranges_are_identity() -> None:
    x = torch.rand(4, 1, 15, 15)
    out = RandomAffine(degrees=0, shear=0, scale=0, translate=0, p=1.0)(x, gen(5))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


def test_p_is_the_share_of_distorted_images() -> None:
    x = squares(400)
    out = RandomAffine(p=0.5)(x, gen(6))
    changed = (out - x).abs().flatten(1).amax(1) > 1e-4
    assert 0.4 < float(changed.double().mean()) < 0.6
    # the untouched ones are exactly the input
    torch.testing.assert_close(out[~changed], x[~changed], rtol=0, atol=1e-5)


def test_pure_translation_moves_content_by_the_expected_amount() -> None:
    # with translate=t the shift is drawn in [-t, t] of the half-width (affine_grid units)
    x = squares(50, 40)
    out = RandomAffine(degrees=0, shear=0, scale=0, translate=0.1, p=1.0)(x, gen(7))
    mass = out.sum((1, 2, 3))
    torch.testing.assert_close(mass, x.sum((1, 2, 3)), rtol=0.05, atol=0)  # nothing cut off
    cols = torch.arange(40.0)
    centre_in = (x[0, 0].sum(0) * cols).sum() / x[0, 0].sum()
    centre_out = (out[:, 0].sum(1) * cols).sum(1) / out[:, 0].sum((1, 2))
    shift = (centre_out - centre_in).abs()
    assert shift.max() <= 0.1 * 40 + 0.5  # at most 10% of the size... plus interpolation
    assert shift.max() > 1.0  # and it does move


def test_shift_moves_the_image_right_and_down_without_wrapping() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 1, 3] = 1.0
    x[0, 0, 4, 4] = 2.0  # at the corner: a wrap-around would bring it back at (0, 0)
    y = shift(x, dx=1, dy=-1)
    assert y[0, 0, 0, 4] == 1.0
    assert y[0, 0, 0, 0] == 0.0
    assert y.sum() == 1.0  # the corner pixel left the frame to the right


def test_shift_fills_with_the_edge_pixels() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    y = shift(x, dx=2, dy=0)
    assert torch.equal(y[0, 0, :, 2:], x[0, 0, :, :2])
    assert torch.equal(y[0, 0, :, 0], x[0, 0, :, 0])
    assert torch.equal(y[0, 0, :, 1], x[0, 0, :, 0])


def test_shift_by_zero_keeps_the_batch_and_uint8_stays_uint8() -> None:
    x = torch.randint(0, 255, (2, 1, 6, 6), dtype=torch.uint8)
    assert shift(x, 0, 0) is x
    assert shift(x, 1, 1).dtype == torch.uint8


def test_shift_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        shift(torch.zeros(5, 5), 1, 0)
    with pytest.raises(ValueError, match="leaves nothing"):
        shift(torch.zeros(1, 1, 5, 5), 5, 0)


def test_thickening_grows_a_dot_into_a_3x3_block() -> None:
    x = torch.zeros(2, 1, 7, 7)
    x[:, 0, 3, 3] = 0.8
    y = RandomThickening(p=1.0)(x, gen(0))
    expected = torch.zeros(7, 7)
    expected[2:5, 2:5] = 0.8
    assert torch.equal(y[0, 0], expected) and torch.equal(y[1, 0], expected)
    assert torch.equal(RandomThickening(p=0.0)(x, gen(0)), x)


def test_thickening_picks_a_reproducible_share_of_the_batch() -> None:
    x = squares(n=400)
    a = RandomThickening(p=0.5)(x, gen(7))
    assert torch.equal(a, RandomThickening(p=0.5)(x, gen(7)))
    thickened = (a.sum((1, 2, 3)) > x.sum((1, 2, 3))).float().mean().item()
    assert 0.4 < thickened < 0.6


def test_thickening_rejects_a_bad_probability() -> None:
    with pytest.raises(ValueError, match="probability"):
        RandomThickening(p=1.5)
