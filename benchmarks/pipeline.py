"""One training set-up being timed, and the interleaved rounds that time several.

The training and defaults sections of ``python -m benchmarks.speed`` both time
:class:`Pipeline` objects: a model, a batch source and the library's settings, trained
through :func:`siamese_lib.train.fit` (the loop chapter 3 teaches).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from siamese_lib.nets import EmbeddingNet
from siamese_lib.train import fit

from .timing import clock, median, torch_settings

ALONE_FACTOR = 4  # batches drawn without training, per optimiser step timed


def forever(loader: torch.utils.data.DataLoader) -> Iterator:
    """The loader's batches, epoch after epoch, without end."""
    while True:
        yield from loader


@dataclass
class Pipeline:
    """One training set-up being timed: a model, its batch source and its settings.

    The timings accumulate over the measured rounds; ``data`` and ``compute`` hold one
    entry per optimiser step, ``alone`` one per batch drawn outside training.
    """

    name: str
    model: nn.Module
    loss: nn.Module
    batches: Iterator
    batch_size: int
    device: torch.device
    channels_last: bool | None = None
    threads: int | None = None
    bf16: bool | None = None
    data: list[float] = field(default_factory=list)
    compute: list[float] = field(default_factory=list)
    alone: list[float] = field(default_factory=list)

    def train_block(self, steps: int, record: bool, settle: int = 0) -> None:
        """Run ``settle + steps`` optimiser steps through :func:`siamese_lib.train.fit`.

        The time spent waiting for each batch is measured around ``next()``; the time of
        the step itself runs from fit taking a batch to fit asking for the next one (fit's
        own ``History.step_seconds`` does not wait for a GPU to finish the step). The
        first ``settle`` steps are not recorded: after another pipeline ran with other
        settings (memory format, precision), the first step rebuilds its kernels and was
        measured up to 2x slower.
        """
        steps += settle
        waits: list[float] = []
        work: list[float] = []

        def timed(_epoch: int) -> Iterator:
            handed = None  # when fit took the last batch
            for _ in range(steps):
                t0 = clock(self.device)
                if handed is not None:
                    work.append(t0 - handed)
                batch = next(self.batches)
                handed = clock(self.device)
                waits.append(handed - t0)
                yield batch
            if handed is not None:  # fit asks once more after the last step
                work.append(clock(self.device) - handed)

        with torch_settings(self.channels_last, self.threads, self.bf16):
            fit(
                self.model, self.loss, timed, epochs=1, steps_per_epoch=steps, lr=1e-3,
                schedule=None, device=self.device, progress=False,
            )
        if record:
            self.data += waits[settle:]
            self.compute += work[settle:]

    def data_block(self, n: int, record: bool) -> None:
        """Draw ``n`` batches without training: the batch source's cost on its own."""
        with torch_settings(self.channels_last, self.threads, self.bf16):
            for _ in range(n):
                t0 = clock(self.device)
                next(self.batches)
                if record:
                    self.alone.append(clock(self.device) - t0)

    @property
    def step_totals(self) -> list[float]:
        """Wall time of each measured step: waiting for the batch plus the step."""
        return [d + c for d, c in zip(self.data, self.compute, strict=True)]

    @property
    def step_seconds(self) -> float:
        """Median wall time of a step."""
        return median(self.step_totals)

    @property
    def pairs_per_second(self) -> float:
        """Pairs trained per second, from the median step time."""
        return self.batch_size / self.step_seconds

    @property
    def data_share(self) -> float:
        """Median over steps of (time waiting for the batch) / (step wall time)."""
        return median([d / t for d, t in zip(self.data, self.step_totals, strict=True)])


def interleave(
    pipelines: Sequence[Pipeline], rounds: int, block: int, alone: bool, warmup: bool
) -> None:
    """Time the pipelines round-robin, ``block`` steps each per round.

    With ``warmup``, round 0 is one unrecorded step each, and each later block starts with
    one unrecorded step; with ``alone``, each round also draws ``ALONE_FACTOR`` batches per
    step from every pipeline without training.
    """
    for r in range(rounds):
        record = r > 0 or not warmup
        steps = block if record else 1
        for p in pipelines:
            p.train_block(steps, record, settle=1 if warmup and record else 0)
        if alone:
            for p in pipelines:
                p.data_block(ALONE_FACTOR * steps, record)


def fresh_model(width: int, seed: int) -> nn.Module:
    """The benchmarks' EmbeddingNet of ``width`` channels, initialised from ``seed``."""
    torch.manual_seed(seed)
    return EmbeddingNet(width=width)

