"""Speed benchmarks of siamese_lib: training input pipeline, one-shot evaluation, defaults.

The appendix :doc:`../notebooks/appendix_engineering` points here to measure the
library's choices on your machine. Run ``python -m benchmarks.speed`` from the repository
root (``--quick`` for a smoke run of a few seconds, ``--help`` for the options). Three
sections, each printed as a table, each measured in a module of its own:

training (:mod:`benchmarks.training`)
    pairs per second of the library's training pipeline against the article-style
    DataLoader and the seed's whole loop, and the share of each step spent waiting for
    the batch.
evaluation (:mod:`benchmarks.evaluation`)
    N-way 1-shot episodes scored by embedding every image once, against the twin network
    on every (query, support) pair and the article's one forward call per pair.
defaults (:mod:`benchmarks.defaults`)
    pairs per second with channels-last on/off, 1 or 2 torch threads, bfloat16 on/off and
    64/128/256 pairs per batch, to check the library's defaults.

Timing rules: everything runs in one process; the variants being compared are run in
interleaved rounds (A, B, A, B, ...), the first round is a discarded warm-up, and every
figure is a median over steps or rounds, so that load from other processes on a shared
machine hits all variants alike. On a CUDA device every timer is read after
``torch.cuda.synchronize()`` (:func:`benchmarks.timing.clock`). All randomness is seeded
(``--seed``). The sizes of each section are in :mod:`benchmarks.sizes`.

``benchmarks/__main__.py`` can call :func:`main` with its own ``argv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable, Sequence

import torch

from siamese_lib.data import load_mnist, load_omniglot
from siamese_lib.nets import EmbeddingNet
from siamese_lib.precision import pick_device

from .defaults import format_defaults, run_defaults
from .evaluation import format_evaluation, run_evaluation
from .sizes import DEFAULT, QUICK, Sizes
from .timing import TORCH_DEFAULT_THREADS, clock, torch_settings
from .training import format_training, run_training

SECTIONS = ("training", "evaluation", "defaults")


def _header(sizes: Sizes, seed: int, device: torch.device, quick: bool) -> str:
    net = EmbeddingNet(width=sizes.width)
    params = sum(p.numel() for p in net.parameters())
    try:
        load = f", load average {os.getloadavg()[0]:.1f}"
    except OSError:  # not available on every platform
        load = ""
    return "\n".join([
        f"siamese_lib speed benchmark ({'--quick' if quick else 'default'} sizes, seed {seed})",
        f"torch {torch.__version__}, python {platform.python_version()}, device {device}, "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs{load}",
        f"network: EmbeddingNet(width={sizes.width}, embedding_dim=64), 28x28 input, "
        f"{params:,} parameters",
        "Variants are interleaved in one process and medians reported; on a shared machine "
        "absolute numbers move with the load, ratios much less.",
    ])


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks.speed``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="Speed of siamese_lib's training pipeline, one-shot evaluation and "
        "defaults, against article-style baselines.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="a few tiny steps and episodes: checks that everything runs")
    parser.add_argument("--seed", type=int, default=0, help="seed of models and sampling")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--device", default=None,
                        help="torch device (default: CUDA, then MPS, then CPU)")
    parser.add_argument("--threads", type=_positive_int, default=None,
                        help="torch threads for the training and evaluation sections "
                        f"(default: torch's own, {TORCH_DEFAULT_THREADS} here)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _parse_sections(text: str, parser: argparse.ArgumentParser) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        parser.error(f"--sections takes a comma-separated subset of {', '.join(SECTIONS)}; "
                     f"got {text!r}")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its tables; returns the exit code.

    0 on success, 2 for a usage error or a missing data set (message on stderr).

    Torch's thread count, ``SIAMESE_LIB_CHANNELS_LAST`` and ``SIAMESE_LIB_BF16`` are
    restored on return, so
    calling this in-process (tests, ``benchmarks/__main__.py``) leaves no settings behind.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        sections = _parse_sections(args.sections, parser)
        try:
            device = pick_device(args.device)
        except ValueError as err:
            parser.error(f"--device: {err}")
    except SystemExit as stop:  # --help, or a usage error argparse has printed
        return stop.code if isinstance(stop.code, int) else 2
    sizes = QUICK if args.quick else DEFAULT
    with torch_settings(threads=args.threads):
        return _run(sections, sizes, args.seed, device, args.quick)


def _run(sections: list[str], sizes: Sizes, seed: int, device: torch.device, quick: bool) -> int:
    started = clock(device)
    print(_header(sizes, seed, device, quick), flush=True)
    try:
        mnist = load_mnist(train=True) if {"training", "defaults"} & set(sections) else None
        omniglot = load_omniglot("evaluation") if "evaluation" in sections else None
    except (FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runners: dict[str, Callable[[], str]] = {
        "training": lambda: format_training(run_training(mnist, sizes, seed, device),
                                            sizes, device),
        "evaluation": lambda: format_evaluation(run_evaluation(omniglot, sizes, seed, device)),
        "defaults": lambda: format_defaults(run_defaults(mnist, sizes, seed, device)),
    }
    for name in SECTIONS:
        if name in sections:
            t0 = clock(device)
            text = runners[name]()
            print(f"\n{text}\n({name} section: {clock(device) - t0:.0f} s)", flush=True)
    print(f"\ntotal {clock(device) - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
