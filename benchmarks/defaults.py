"""The defaults section of ``python -m benchmarks.speed``: the library's layout and
precision choices, measured.

The appendix :doc:`../notebooks/appendix_engineering` ("Speed on a CPU") teaches what
:mod:`siamese_lib.precision` chooses. This section measures pairs per second of the
library's pipeline with channels-last on/off (``SIAMESE_LIB_CHANNELS_LAST``), 1 or 2 torch
threads, bfloat16 on/off (``SIAMESE_LIB_BF16``) and 64/128/256 pairs per batch, to check
those defaults.

Measurements that set the defaults (Conv-4 training step, 64 channels, 2 cores):

- channels-last on a CPU: about 2x faster than contiguous tensors for the conv nets;
- bfloat16 with AMX tiles (Intel Sapphire Rapids): 0.12 s against 0.24 s per step of
  256 images in float32, 2x faster, with the same one-shot accuracy;
- bfloat16 with AVX512-BF16 and no AMX: 97 ms against 221 ms, 2.3x faster;
- bfloat16 without either: emulated, slower than float32, so float32 stays;
- :func:`~siamese_lib.evaluate.embed_images` in bfloat16 where training uses it: 1.7x
  faster.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch

from siamese_lib.data import ImageSet
from siamese_lib.losses import ContrastiveLoss
from siamese_lib.pairs import pair_batches
from siamese_lib.precision import BF16_ENV, CHANNELS_LAST_ENV, autocast_dtype, use_channels_last

from .pipeline import Pipeline, fresh_model, interleave
from .sizes import Sizes
from .tables import format_table
from .timing import TORCH_DEFAULT_THREADS, torch_settings


@dataclass
class DefaultsResult:
    """The measured configurations and the library's current default among them."""

    pipelines: list[Pipeline]
    default_channels_last: bool
    default_threads: int
    default_batch: int
    default_bf16: bool = False

    @property
    def default(self) -> tuple[bool, int, bool]:
        """The library's default (channels_last, threads, bf16)."""
        return self.default_channels_last, self.default_threads, self.default_bf16

    def find(self, channels_last: bool, threads: int, batch: int,
             bf16: bool | None = None) -> Pipeline | None:
        """The pipeline measured with these settings, if any (bf16 None: the default)."""
        bf16 = self.default_bf16 if bf16 is None else bf16
        for p in self.pipelines:
            if (p.channels_last, p.threads, p.batch_size, p.bf16) == (
                    channels_last, threads, batch, bf16):
                return p
        return None


def run_defaults(
    mnist: ImageSet, sizes: Sizes, seed: int, device: torch.device
) -> DefaultsResult:
    """pairs/s of the siamese_lib pipeline over channels-last x threads x bfloat16, and batch sizes.

    channels-last {off, on} x threads {1, 2} at the default batch and precision, bfloat16
    {off, on} at the default layout and threads (on a CPU), then each batch size with the
    library's defaults; all interleaved.
    """
    with torch_settings():
        os.environ.pop(CHANNELS_LAST_ENV, None)
        os.environ.pop(BF16_ENV, None)
        default_cl = use_channels_last(device)
        default_bf16 = autocast_dtype(device) is not None
    default_threads = TORCH_DEFAULT_THREADS
    batch = sizes.batch
    configs: list[tuple[bool, int, int, bool]] = [
        (cl, t, batch, default_bf16)
        for cl in (default_cl, not default_cl) for t in sorted({default_threads, 1, 2})
    ]
    if device.type == "cpu":
        configs.append((default_cl, default_threads, batch, not default_bf16))
    plain = (False, default_threads, batch, False)  # what PyTorch does without our defaults
    if plain not in configs:
        configs.append(plain)
    configs += [(default_cl, default_threads, b, default_bf16)
                for b in sizes.default_batches if b != batch]
    base = fresh_model(sizes.width, seed)
    images = mnist.images.to(device)
    pipelines = []
    for i, (cl, t, b, bf16) in enumerate(configs):
        name = (f"channels_last {'on' if cl else 'off'}, {t} threads, batch {b}, "
                f"bfloat16 {'on' if bf16 else 'off'}")
        batches = pair_batches(images, mnist.labels, b, 10**9, seed=seed + i, device=device)
        pipelines.append(Pipeline(name, copy.deepcopy(base), ContrastiveLoss(), batches, b,
                                  device, channels_last=cl, threads=t, bf16=bf16))
    interleave(pipelines, sizes.default_rounds, sizes.default_block, alone=False,
                warmup=sizes.warmup)
    return DefaultsResult(pipelines, default_cl, default_threads, batch, default_bf16)


def format_defaults(result: DefaultsResult) -> str:
    """The defaults section's table and the before/after lines."""
    def settings(p: Pipeline) -> tuple[bool | None, int | None, bool | None]:
        return p.channels_last, p.threads, p.bf16

    rows = [
        [("on" if p.channels_last else "off"), str(p.threads), ("on" if p.bf16 else "off"),
         str(p.batch_size), f"{p.pairs_per_second:,.0f}", f"{1000 * p.step_seconds:.1f}",
         "<- library default" if settings(p) == result.default
         and p.batch_size == result.default_batch else ""]
        for p in result.pipelines
    ]
    before = result.find(result.default_channels_last, result.default_threads,
                         result.default_batch)
    same_batch = [p for p in result.pipelines if p.batch_size == result.default_batch]
    best = max(same_batch, key=lambda p: p.pairs_per_second)
    by_batch = [p for p in result.pipelines if settings(p) == result.default]
    fastest_batch = max(by_batch, key=lambda p: p.pairs_per_second)
    steps = len(before.data) if before else 0

    def describe(p: Pipeline) -> str:
        return (f"channels_last {'on' if p.channels_last else 'off'}, {p.threads} "
                f"thread{'s' if p.threads != 1 else ''}, bfloat16 {'on' if p.bf16 else 'off'}")

    lines = [
        f"c. Defaults by measurement: siamese_lib pipeline, pairs/s (medians of {steps} steps "
        "per configuration, interleaved)",
        format_table(["channels_last", "threads", "bfloat16", "batch", "pairs/s", "step ms", ""],
                     rows),
    ]
    plain = result.find(False, result.default_threads, result.default_batch, bf16=False)
    if plain is not None and before is not None:
        lines.append(
            f"plain PyTorch ({describe(plain)}): {plain.pairs_per_second:,.0f} pairs/s; "
            f"library default ({describe(before)}): {before.pairs_per_second:,.0f} pairs/s "
            f"({before.pairs_per_second / plain.pairs_per_second:.2f}x)"
        )
    if before is not None:
        lines += [
            f"before (library default at batch {result.default_batch}: {describe(before)}): "
            f"{before.pairs_per_second:,.0f} pairs/s",
            f"after  (fastest measured at batch {result.default_batch}: {describe(best)}): "
            f"{best.pairs_per_second:,.0f} pairs/s "
            f"({best.pairs_per_second / before.pairs_per_second:.2f}x)",
        ]
    lines.append(
        f"batch size: {fastest_batch.batch_size} pairs gives the most pairs/s "
        f"({fastest_batch.pairs_per_second:,.0f}); batch size also changes what is learned, "
        "so recipes keep their own."
    )
    return "\n".join(lines)
