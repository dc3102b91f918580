"""Test-time adaptation: tune a copy of the embedding net on one trial's support set.

Taught in chapter 8, "Toward human level".

A one-shot trial shows N labelled drawings, one per class, before it asks about a query.
Those N drawings say something about the trial that training never saw (the alphabet,
the drawers' hands), and they can teach the net a little more before it answers. Each
support image, distorted a few ways (:class:`~siamese_lib.augment.RandomAffine`), makes
a class of its own: the undistorted image is its prototype, its distortions are queries,
and a few steps of the prototypical loss pull each image's distortions towards it and push
the N images apart. This is the "fine-tune on the support set" baseline of the few-shot
literature (Dhillon et al., 2020), with the distortions standing in for the labelled
queries a trial does not have.

Only a copy of the net changes. Its batch-norm statistics stay those of training: a batch
of one trial's N images and their distortions would move them away from the queries'.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .augment import RandomAffine
from .losses import PrototypicalLoss
from .pairs import check_whole, to_float
from .precision import autocast, memory_format


def adapt_to_support(
    net: nn.Module,
    support: torch.Tensor,
    steps: int = 10,
    lr: float = 1e-4,
    copies: int = 4,
    seed: int = 0,
    augment: RandomAffine | None = None,
) -> nn.Module:
    """A copy of ``net`` tuned on one trial's support images; ``net`` is left as it was.

    Args:
        net: a trained embedding net (on any device: the copy trains there).
        support: the trial's support images (N, C, H, W), one per class, uint8 or float.
        steps: optimiser steps (Adam); 0 returns an unchanged copy.
        lr: Adam's learning rate: small, the net is already trained.
        copies: distorted copies of each support image per step (the queries).
        seed: seeds the distortions, so the same trial adapts the same way.
        augment: the distortion; default: Koch et al.'s
            :class:`~siamese_lib.augment.RandomAffine`.

    Returns:
        The tuned copy, in evaluation mode.
    """
    steps = check_whole("steps", steps, minimum=0)
    copies = check_whole("copies", copies)
    if not torch.is_tensor(support) or support.dim() != 4 or len(support) < 2:
        raise ValueError("support must be a batch (N, C, H, W) of at least 2 images, one per "
                         f"class, got {getattr(support, 'shape', type(support).__name__)}")
    augment = augment or RandomAffine()
    adapted = copy.deepcopy(net)
    device = next(adapted.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    # each image then its copies: the first of every class is its prototype
    images = to_float(support.cpu()).repeat_interleave(copies + 1, dim=0)
    labels = torch.arange(len(support)).repeat_interleave(copies + 1).to(device)
    is_original = torch.arange(len(images)) % (copies + 1) == 0
    loss_fn = PrototypicalLoss(n_support=1)
    optimiser = torch.optim.Adam(adapted.parameters(), lr=lr)
    layout = memory_format(device)  # as in training
    _train_keeping_batch_statistics(adapted)
    for _ in range(steps):
        x = torch.where(is_original[:, None, None, None], images, augment(images, generator))
        x = x.to(device).contiguous(memory_format=layout)
        with autocast(device):
            embeddings = adapted(x)
        loss = loss_fn(embeddings.float(), labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return adapted.eval()


def _train_keeping_batch_statistics(net: nn.Module) -> None:
    """Training mode for every layer but batch norm, which keeps its running statistics."""
    net.train()
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
