"""Random distortions of whole batches, and the shifts of test-time augmentation.

Taught in chapter 5, "One-shot learning on Omniglot" (test-time shifts), and chapter 7,
"Beyond the contrastive loss" (Koch's distortions in the recipes).

Koch et al. (2015) enlarged Omniglot with small random rotations, shears, scalings and
translations of every training pair (:class:`RandomAffine`). Here each image of a batch
gets its own random transform in one ``affine_grid`` / ``grid_sample`` call: no
per-image Python loop. :class:`RandomThickening` varies the width of the strokes, and
:func:`shift` translates a batch by whole pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class RandomAffine:
    """A per-image random affine distortion for a batch (N, C, H, W) of float images.

    Args:
        degrees: rotation drawn from [-degrees, degrees].
        shear: shear factor drawn from [-shear, shear] along each axis.
        scale: scale drawn from [1 - scale, 1 + scale].
        translate: shift drawn from [-translate, translate], as a fraction of the size.
        p: probability that an image is distorted at all (Koch used 8 of 9 copies).
    """

    degrees: float = 10.0
    shear: float = 0.3
    scale: float = 0.2
    translate: float = 0.1
    p: float = 1.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Distort a float batch; ``generator`` (CPU) makes the draw reproducible."""
        n = x.shape[0]

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=generator)

        angle = uniform(-self.degrees, self.degrees) * math.pi / 180
        shx, shy = uniform(-self.shear, self.shear), uniform(-self.shear, self.shear)
        s = uniform(1 - self.scale, 1 + self.scale)
        tx, ty = (uniform(-self.translate, self.translate) * 2 for _ in range(2))
        cos, sin = torch.cos(angle), torch.sin(angle)
        rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
        shear = torch.stack(
            [torch.stack([torch.ones(n), shx], -1), torch.stack([shy, torch.ones(n)], -1)], -2
        )
        linear = (rot @ shear) / s[:, None, None]
        keep = torch.rand(n, generator=generator) >= self.p
        linear[keep] = torch.eye(2)
        shift = torch.stack([tx, ty], -1)
        shift[keep] = 0
        theta = torch.cat([linear, shift[..., None]], dim=-1).to(x.device, x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@dataclass
class RandomThickening:
    """Thicken the strokes of a random share of a batch by one pixel on every side.

    A 3x3 maximum filter (a grey-scale dilation) for images with bright ink on a dark
    background. Omniglot's strokes, downsampled to 28 x 28, are thin; MNIST's are about
    twice as wide. Training on both widths lets a net trained on Omniglot compare digits
    by their shape rather than their ink.

    Args:
        p: probability that an image is thickened.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {self.p}")

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Thicken a float batch (N, C, H, W); ``generator`` (CPU) makes the draw reproducible."""
        chosen = torch.rand(x.shape[0], generator=generator) < self.p
        thick = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        return torch.where(chosen.to(x.device)[:, None, None, None], thick, x)


def shift(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Translate a batch (N, C, H, W) by ``dx`` pixels right and ``dy`` down.

    The strip uncovered at the edge repeats the edge pixels (the background, for
    characters and digits), so nothing wraps around.
    """
    if x.dim() != 4:
        raise ValueError(f"shift expects a batch (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"a shift of ({dx}, {dy}) pixels leaves nothing of a {h}x{w} image")
    if dx == dy == 0:
        return x
    left, top = max(-dx, 0), max(-dy, 0)
    padded = F.pad(x.float(), (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0)),
                   mode="replicate")
    return padded[..., top : top + h, left : left + w].to(x.dtype)
