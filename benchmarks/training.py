"""The training section of ``python -m benchmarks.speed``: the library's input pipeline
against the seed's.

Chapter 3 teaches the training loop (:func:`siamese_lib.train.fit`) and its batches
(:func:`siamese_lib.pairs.pair_batches`). This section measures pairs per second of that
pipeline against the same step fed by the article-style per-item Dataset and DataLoader
of :mod:`benchmarks.seed_style`, and against the seed's whole loop (that DataLoader, one
forward call per side of the pair, float32, contiguous memory), and the share of each
step spent waiting for the batch. Same network, same images, same batch size.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from siamese_lib.config import seed_everything
from siamese_lib.data import ImageSet
from siamese_lib.losses import ContrastiveLoss
from siamese_lib.pairs import pair_batches
from siamese_lib.precision import use_channels_last

from .pipeline import Pipeline, forever, fresh_model, interleave
from .seed_style import SeedStyleTwin, seed_style_loader
from .sizes import Sizes
from .tables import format_table, times, verdict
from .timing import median

# Targets from the issue that asked for these benchmarks.
TARGET_TRAIN_SPEEDUP = 5.0
TARGET_DATA_SHARE = 0.10


@dataclass
class TrainingResult:
    """The training section's measured pipelines.

    Attributes:
        seed_style: the seed-style DataLoader feeding the library's own step.
        library: ``pair_batches`` feeding the library's own step.
        seed_loop: the seed's whole loop: its DataLoader, one forward call per side of
            the pair, float32, contiguous memory (plain PyTorch, as the article's code).
    """

    seed_style: Pipeline
    library: Pipeline
    seed_loop: Pipeline | None = None

    @property
    def speedup(self) -> float:
        """siamese_lib pairs/s divided by seed-style pairs/s (same step: the data alone)."""
        return self.library.pairs_per_second / self.seed_style.pairs_per_second

    @property
    def end_to_end_speedup(self) -> float:
        """siamese_lib pairs/s divided by the seed loop's pairs/s (data, forward and defaults)."""
        if self.seed_loop is None:
            return float("nan")
        return self.library.pairs_per_second / self.seed_loop.pairs_per_second


def run_training(mnist: ImageSet, sizes: Sizes, seed: int, device: torch.device) -> TrainingResult:
    """Time the article-style DataLoader pipeline against ``pair_batches``, same fit step."""
    seed_everything(seed)
    base = fresh_model(sizes.width, seed)
    seed_loader = seed_style_loader(mnist.images, mnist.labels, sizes.batch, seed=seed)
    images = mnist.images.to(device)
    big = 10**9  # pair_batches is lazy: it only draws the batches that are asked for
    seed_style = Pipeline(
        "seed-style Dataset + DataLoader", copy.deepcopy(base), ContrastiveLoss(),
        forever(seed_loader), sizes.batch, device,
    )
    library = Pipeline(
        "siamese_lib pair_batches", copy.deepcopy(base), ContrastiveLoss(),
        pair_batches(images, mnist.labels, sizes.batch, big, seed=seed, device=device),
        sizes.batch, device,
    )
    seed_loop = Pipeline(
        "seed's loop: its DataLoader, 2 forward calls, float32, contiguous",
        SeedStyleTwin(copy.deepcopy(base)), ContrastiveLoss(),
        forever(seed_style_loader(mnist.images, mnist.labels, sizes.batch, seed=seed)),
        sizes.batch, device, channels_last=False, bf16=False,
    )
    interleave([seed_style, library, seed_loop], sizes.train_rounds, sizes.train_block,
                alone=True, warmup=sizes.warmup)
    return TrainingResult(seed_style, library, seed_loop)


def format_training(result: TrainingResult, sizes: Sizes, device: torch.device) -> str:
    """The training section's table and verdicts."""
    rows = []
    for p in (result.seed_loop, result.seed_style, result.library):
        if p is None:
            continue
        rows.append([
            p.name, f"{p.pairs_per_second:,.0f}", f"{1000 * p.step_seconds:.1f}",
            f"{1000 * median(p.data):.1f}", f"{1000 * median(p.compute):.1f}",
            f"{1000 * median(p.alone):.2f}", f"{100 * p.data_share:.1f}%",
        ])
    steps = len(result.library.data)
    cl = "on" if use_channels_last(device) else "off"
    lib_share = result.library.data_share
    data_ratio = median(result.seed_style.alone) / median(result.library.alone)
    bound = result.seed_style.step_seconds / median(result.seed_style.compute)
    return "\n".join([
        f"a. Training throughput: MNIST, {sizes.batch} pairs per batch, "
        f"ContrastiveLoss + AdamW through siamese_lib.train.fit "
        f"(channels_last {cl}, {torch.get_num_threads()} threads); "
        f"medians of {steps} steps per pipeline",
        format_table(
            ["pipeline", "pairs/s", "step ms", "data ms", "fit step ms", "data alone ms",
             "data share"], rows
        ),
        f"speed-up of the whole siamese_lib pipeline (pair_batches, one forward for both "
        f"sides, library defaults) over the seed's loop: {result.end_to_end_speedup:.2f}x "
        f"(target >= {TARGET_TRAIN_SPEEDUP:g}x: "
        f"{verdict(result.end_to_end_speedup >= TARGET_TRAIN_SPEEDUP)})",
        f"speed-up of pair_batches over the seed-style DataLoader, both feeding the library's "
        f"step (the data pipeline alone): {result.speedup:.2f}x "
        f"(target >= {TARGET_TRAIN_SPEEDUP:g}x: {verdict(result.speedup >= TARGET_TRAIN_SPEEDUP)})",
        f"batch production alone: pair_batches {times(data_ratio)} than seed-style; a "
        f"faster batch source can raise seed-style pairs/s by at most {bound:.2f}x here "
        "(step ms / fit step ms), since the step itself dominates",
        f"data share of a siamese_lib step: {100 * lib_share:.1f}% "
        f"(target <= {100 * TARGET_DATA_SHARE:.0f}%: {verdict(lib_share <= TARGET_DATA_SHARE)})",
        "step ms = data ms (waiting for the batch inside fit) + fit step ms (from fit "
        "taking the batch to asking for the next one); data alone ms = drawing a batch "
        "with no training around it; data share = median of data ms / step ms.",
    ])
