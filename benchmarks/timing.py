"""The clock, the median and the torch settings every speed measurement uses.

Part of ``python -m benchmarks.speed`` (see :mod:`benchmarks.speed` for the timing rules)
and ``python -m benchmarks.compute``. The settings it switches are the library's own
(:mod:`siamese_lib.precision`), taught in the appendix on engineering notes.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Iterator, Sequence

import torch

from siamese_lib.precision import BF16_ENV, CHANNELS_LAST_ENV

# torch's own thread count, read before a benchmark's main() may change it
TORCH_DEFAULT_THREADS = torch.get_num_threads()


def clock(device: torch.device) -> float:
    """``time.perf_counter()``, read once ``device`` has finished the work queued on it.

    CUDA runs kernels asynchronously: a timer read right after a step measures how long
    it took to queue the step, not to run it. Every timing of the speed and compute benchmarks
    reads this clock.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


@contextlib.contextmanager
def torch_settings(
    channels_last: bool | None = None, threads: int | None = None, bf16: bool | None = None
) -> Iterator[None]:
    """Temporarily force channels-last and bfloat16 on/off (via the library's env switches)
    and torch threads. ``None`` leaves a setting as it is.
    """
    switches = {CHANNELS_LAST_ENV: channels_last, BF16_ENV: bf16}
    old_env = {name: os.environ.get(name) for name in switches}
    old_threads = torch.get_num_threads()
    try:
        for name, on in switches.items():
            if on is not None:
                os.environ[name] = "1" if on else "0"
        if threads is not None:
            torch.set_num_threads(threads)
        yield
    finally:
        for name, value in old_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(old_threads)
