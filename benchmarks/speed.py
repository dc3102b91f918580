"""Speed benchmarks of siamese_lib: training input pipeline, one-shot evaluation, defaults.

Run ``python -m benchmarks.speed`` from the repository root (``--quick`` for a smoke run
of a few seconds, ``--help`` for the options). Three sections, each printed as a table:

training
    pairs per second of the library's training pipeline (``pair_batches`` from the
    uint8 image tensor, then :func:`siamese_lib.train.fit`'s own step: both images of
    every pair through the net in one batch, :class:`~siamese_lib.losses.ContrastiveLoss`,
    backward, AdamW) against the same step fed by the article-style per-item Dataset and
    DataLoader of :mod:`benchmarks.seed_style`, and against the seed's whole loop (that
    DataLoader, one forward call per side of the pair, float32, contiguous memory: plain
    PyTorch as the article wrote it); and the share of each step spent waiting for the
    batch. Same network, same images, same batch size.
evaluation
    N-way 1-shot episodes on Omniglot's evaluation alphabets, one query per class as every
    test of the library draws them, scored by embedding every image once
    (:func:`~siamese_lib.evaluate.embed_images` +
    :func:`~siamese_lib.evaluate.one_shot_accuracy`) against running the twin network on
    every (query, support) pair (:meth:`~siamese_lib.nets.SiameseNetwork.distance`,
    batched), and against the article's one forward call per pair. The twin network is
    timed on the first episodes and scaled. Both must give the same answers. A line
    derives the speed-up for one-query episodes from the same timings.
defaults
    pairs per second with channels-last on/off (``SIAMESE_LIB_CHANNELS_LAST``), 1 or 2
    torch threads, bfloat16 on/off (``SIAMESE_LIB_BF16``) and 64/128/256 pairs per batch,
    to check the library's defaults.

Timing rules: everything runs in one process; the variants being compared are run in
interleaved rounds (A, B, A, B, ...), the first round is a discarded warm-up, and every
figure is a median over steps or rounds, so that load from other processes on a shared
machine hits all variants alike. On a CUDA device every timer is read after
``torch.cuda.synchronize()`` (:func:`clock`). All randomness is seeded (``--seed``).

``benchmarks/__main__.py`` can call :func:`main` with its own ``argv``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from siamese_lib.config import pick_device, seed_everything
from siamese_lib.data import ImageSet, load_mnist, load_omniglot
from siamese_lib.episodes import Episodes, EpisodeSampler
from siamese_lib.evaluate import (
    Accuracy,
    classify_queries,
    embed_images,
    mean_ci95,
    one_shot_accuracy,
)
from siamese_lib.losses import ContrastiveLoss
from siamese_lib.nets import EmbeddingNet, SiameseNetwork
from siamese_lib.pairs import pair_batches, to_float
from siamese_lib.train import autocast, autocast_dtype, fit, use_channels_last

from .seed_style import SeedStyleTwin, seed_style_loader
from .tables import format_table

SECTIONS = ("training", "evaluation", "defaults")
ALONE_FACTOR = 4  # batches drawn without training, per optimiser step timed
CHANNELS_LAST_ENV = "SIAMESE_LIB_CHANNELS_LAST"
BF16_ENV = "SIAMESE_LIB_BF16"

# Targets from the issue that asked for these benchmarks.
TARGET_TRAIN_SPEEDUP = 5.0
TARGET_DATA_SHARE = 0.10
TARGET_EVAL_SPEEDUP = 20.0
TARGET_EVAL_SECONDS = 5.0


@dataclass(frozen=True)
class Sizes:
    """How much work each section does (the default run, or the ``--quick`` smoke run).

    Attributes:
        width: conv channels of the EmbeddingNet (64 is the library default).
        batch: pairs per batch in the training section.
        train_rounds: interleaved rounds of the training section, the first a warm-up.
        train_block: optimiser steps per pipeline per round.
        episodes: one-shot episodes in the evaluation section.
        n_way: classes per episode.
        eval_rounds: at most this many timed rounds of the evaluation section (after an
            untimed warm-up); one more is started only if it should end within
            ``eval_budget_s`` of the section's start, so a loaded machine does fewer.
        eval_budget_s: the evaluation section's time budget, in seconds.
        eval_classes: keep only the first this-many Omniglot classes (None: all 659).
        twin_episodes: episodes timed with the twin network on every pair (then scaled).
        pair_chunk: pairs that go through the twin network in one forward.
        per_pair_episodes: episodes timed with one forward call per pair (then scaled).
        default_batches: batch sizes tried in the defaults section.
        default_rounds: interleaved rounds of the defaults section, the first a warm-up.
        default_block: optimiser steps per configuration per round.
        warmup: make the first round of the training and defaults sections a single,
            unrecorded step per variant.
    """

    width: int = 64
    batch: int = 128
    train_rounds: int = 6
    train_block: int = 4
    episodes: int = 1000
    n_way: int = 20
    eval_rounds: int = 3
    eval_budget_s: float = 90.0
    eval_classes: int | None = None
    twin_episodes: int = 50
    pair_chunk: int = 500
    per_pair_episodes: int = 3
    default_batches: tuple[int, ...] = (64, 128, 256)
    default_rounds: int = 3
    default_block: int = 2
    warmup: bool = True


DEFAULT = Sizes()
QUICK = Sizes(
    width=8, batch=16, train_rounds=1, train_block=1, episodes=20, n_way=5, eval_rounds=1,
    eval_classes=40, twin_episodes=4, pair_chunk=50, per_pair_episodes=2,
    default_batches=(8, 16, 32), default_rounds=1,
    default_block=1, warmup=False,
)
# torch's own thread count, read before main() may change it
TORCH_DEFAULT_THREADS = torch.get_num_threads()


# ------------------------------------------------------------------------------ helpers


def clock(device: torch.device) -> float:
    """``time.perf_counter()``, read once ``device`` has finished the work queued on it.

    CUDA runs kernels asynchronously: a timer read right after a step measures how long
    it took to queue the step, not to run it. Every timing of this module reads this clock.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def _times(ratio: float) -> str:
    """``2.0`` -> "2.0x faster", ``0.5`` -> "2.0x slower"."""
    return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


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


def _forever(loader: torch.utils.data.DataLoader) -> Iterator:
    while True:
        yield from loader


# ----------------------------------------------------------------------- training pipeline


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


def _interleave(
    pipelines: Sequence[Pipeline], rounds: int, block: int, alone: bool, warmup: bool
) -> None:
    """Round-robin over the pipelines; with ``warmup``, round 0 is one unrecorded step each,
    and each later block starts with one unrecorded step."""
    for r in range(rounds):
        record = r > 0 or not warmup
        steps = block if record else 1
        for p in pipelines:
            p.train_block(steps, record, settle=1 if warmup and record else 0)
        if alone:
            for p in pipelines:
                p.data_block(ALONE_FACTOR * steps, record)


def _fresh_model(width: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return EmbeddingNet(width=width)


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
    base = _fresh_model(sizes.width, seed)
    seed_loader = seed_style_loader(mnist.images, mnist.labels, sizes.batch, seed=seed)
    images = mnist.images.to(device)
    big = 10**9  # pair_batches is lazy: it only draws the batches that are asked for
    seed_style = Pipeline(
        "seed-style Dataset + DataLoader", copy.deepcopy(base), ContrastiveLoss(),
        _forever(seed_loader), sizes.batch, device,
    )
    library = Pipeline(
        "siamese_lib pair_batches", copy.deepcopy(base), ContrastiveLoss(),
        pair_batches(images, mnist.labels, sizes.batch, big, seed=seed, device=device),
        sizes.batch, device,
    )
    seed_loop = Pipeline(
        "seed's loop: its DataLoader, 2 forward calls, float32, contiguous",
        SeedStyleTwin(copy.deepcopy(base)), ContrastiveLoss(),
        _forever(seed_style_loader(mnist.images, mnist.labels, sizes.batch, seed=seed)),
        sizes.batch, device, channels_last=False, bf16=False,
    )
    _interleave([seed_style, library, seed_loop], sizes.train_rounds, sizes.train_block,
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
        f"{_verdict(result.end_to_end_speedup >= TARGET_TRAIN_SPEEDUP)})",
        f"speed-up of pair_batches over the seed-style DataLoader, both feeding the library's "
        f"step (the data pipeline alone): {result.speedup:.2f}x "
        f"(target >= {TARGET_TRAIN_SPEEDUP:g}x: {_verdict(result.speedup >= TARGET_TRAIN_SPEEDUP)})",
        f"batch production alone: pair_batches {_times(data_ratio)} than seed-style; a "
        f"faster batch source can raise seed-style pairs/s by at most {bound:.2f}x here "
        "(step ms / fit step ms), since the step itself dominates",
        f"data share of a siamese_lib step: {100 * lib_share:.1f}% "
        f"(target <= {100 * TARGET_DATA_SHARE:.0f}%: {_verdict(lib_share <= TARGET_DATA_SHARE)})",
        "step ms = data ms (waiting for the batch inside fit) + fit step ms (from fit "
        "taking the batch to asking for the next one); data alone ms = drawing a batch "
        "with no training around it; data share = median of data ms / step ms.",
    ])


# ------------------------------------------------------------------------------ evaluation


@torch.no_grad()
def twin_network_predictions(
    model: nn.Module,
    images: torch.Tensor,
    episodes: Episodes,
    pair_chunk: int,
    device: torch.device,
) -> torch.Tensor:
    """The naive evaluation: the twin network on every (query, support) pair -> (E, M) rows.

    Every query of every episode is paired with every support image; ``pair_chunk`` pairs
    at a time go through :meth:`SiameseNetwork.distance` (both images of every pair in one
    batch). Each query is given the support row at the smallest distance.
    """
    siamese = SiameseNetwork(model).eval().to(device)
    support = episodes.support[..., 0]  # (E, N): 1-shot
    query = episodes.query.flatten(1)  # (E, M)
    (e, n), m = support.shape, query.shape[1]
    q = query[:, :, None].expand(e, m, n).flatten()
    s = support[:, None, :].expand(e, m, n).flatten()
    distances = []
    for start in range(0, len(q), pair_chunk):
        x1 = to_float(images[q[start : start + pair_chunk]]).to(device)
        x2 = to_float(images[s[start : start + pair_chunk]]).to(device)
        with autocast(device):  # the precision embed_images uses
            distances.append(siamese.distance(x1, x2).cpu())
    return torch.cat(distances).view(e, m, n).argmin(-1)


@torch.no_grad()
def per_pair_seconds(
    model: nn.Module, images: torch.Tensor, episodes: Episodes, device: torch.device
) -> float:
    """Seconds for these episodes when every (query, support) pair is its own forward call.

    This is the test loop of the article's code (one ``net(x0, x1)`` per pair).
    """
    siamese = SiameseNetwork(model).eval().to(device)
    warm = to_float(images[:1]).to(device)
    # float32, as in the article's code (bfloat16 autocast measured slower at 2 images a call)
    siamese.distance(warm, warm)  # untimed: builds the kernels for a batch of 2
    t0 = clock(device)
    for e in range(len(episodes.support)):
        for q in episodes.query[e].flatten():
            x1 = to_float(images[q : q + 1]).to(device)
            for s in episodes.support[e, :, 0]:
                siamese.distance(x1, to_float(images[s : s + 1]).to(device))
    return clock(device) - t0


@dataclass
class EvaluationResult:
    """Timings and accuracies of the evaluations.

    Attributes:
        n_images: images in the test set (embed-once embeds them all).
        n_episodes, n_way, n_query: the episodes (``n_query`` queries per class).
        once_seconds: embed-once time for all episodes, one per timed round.
        twin_seconds: twin-network time for all episodes, one per timed round, scaled from
            the first ``twin_episodes`` episodes (every episode is the same amount of work).
        once_accuracy: embed-once accuracy over all episodes.
        sample_once, sample_twin: accuracies of both methods on the timed sample.
        agree: queries of the sample on which both methods give the same answer.
        per_pair_seconds: the one-call-per-pair loop, scaled from ``per_pair_sample`` episodes.
    """

    n_images: int
    n_episodes: int
    n_way: int
    n_query: int
    once_seconds: list[float]
    twin_seconds: list[float]
    twin_episodes: int
    once_accuracy: Accuracy
    sample_once: Accuracy
    sample_twin: Accuracy
    agree: int
    per_pair_seconds: float
    per_pair_sample: int

    @property
    def pairs(self) -> int:
        """(query, support) pairs in all episodes."""
        return self.n_episodes * self.n_way * self.n_query * self.n_way

    @property
    def speedup(self) -> float:
        """Median twin-network time divided by median embed-once time."""
        return median(self.twin_seconds) / median(self.once_seconds)


def run_evaluation(
    omniglot: ImageSet, sizes: Sizes, seed: int, device: torch.device
) -> EvaluationResult:
    """Time embed-once against the twin network on every pair, same model and episodes."""
    if sizes.eval_classes is not None:
        omniglot = omniglot.subset(omniglot.labels < sizes.eval_classes)
    images = omniglot.images
    model = _fresh_model(sizes.width, seed).eval()
    # the episodes every one-shot test of the library draws: N classes, 1 support and
    # 1 query image each
    episodes = EpisodeSampler(omniglot.labels, sizes.n_way, 1, 1, sizes.episodes,
                              seed=seed).sample()
    e = len(episodes.support)
    k = min(sizes.twin_episodes, e)
    sample = Episodes(episodes.support[:k], episodes.query[:k])

    def once() -> tuple[torch.Tensor, Accuracy]:
        emb = embed_images(model, images, device=device)
        return emb, one_shot_accuracy(emb, episodes)

    def twin() -> torch.Tensor:
        return twin_network_predictions(model, images, sample, sizes.pair_chunk, device)

    # warm-up: build the conv kernels for both batch shapes, untimed
    embed_images(model, images[:1024], device=device)
    twin_network_predictions(model, images, Episodes(sample.support[:1], sample.query[:1]),
                             sizes.pair_chunk, device)

    once_s: list[float] = []
    twin_s: list[float] = []
    start = clock(device)
    for _ in range(sizes.eval_rounds):
        t0 = clock(device)
        emb, once_acc = once()
        once_s.append(clock(device) - t0)
        t0 = clock(device)
        twin_pred = twin()
        twin_s.append((clock(device) - t0) * e / k)
        last = clock(device) - t0 + once_s[-1]
        if clock(device) - start + last > sizes.eval_budget_s:
            break

    n_pp = min(sizes.per_pair_episodes, e)
    per_pair = per_pair_seconds(
        model, images, Episodes(episodes.support[:n_pp], episodes.query[:n_pp]), device
    ) * e / n_pp

    once_pred = classify_queries(emb[sample.support], emb[sample.query.flatten(1)])
    truth = torch.arange(sizes.n_way).repeat_interleave(sample.query.shape[2])
    return EvaluationResult(
        n_images=len(images), n_episodes=e, n_way=sizes.n_way, n_query=sample.query.shape[2],
        once_seconds=once_s, twin_seconds=twin_s, twin_episodes=k, once_accuracy=once_acc,
        sample_once=mean_ci95((once_pred == truth).double().mean(1)),
        sample_twin=mean_ci95((twin_pred == truth).double().mean(1)),
        agree=int((once_pred == twin_pred).sum()),
        per_pair_seconds=per_pair, per_pair_sample=n_pp,
    )


def format_evaluation(result: EvaluationResult) -> str:
    """The evaluation section's table and verdicts."""
    once, twin = median(result.once_seconds), median(result.twin_seconds)
    queries = result.n_way * result.n_query
    rows = [
        ["embed once (embed_images + one_shot_accuracy)", f"{once:.2f}",
         f"{result.n_images:,} images", str(result.once_accuracy)],
        [f"twin network on every pair (SiameseNetwork.distance; timed on "
         f"{result.twin_episodes} episodes, scaled)", f"{twin:.2f}",
         f"{2 * result.pairs:,} images", "-"],
        [f"one call per pair, the article's test loop (timed on {result.per_pair_sample} "
         "episodes, scaled)", f"{result.per_pair_seconds:.2f}", f"{2 * result.pairs:,} images",
         "-"],
    ]
    per_pair_speedup = result.per_pair_seconds / once
    same = abs(result.sample_once.mean - result.sample_twin.mean) < 1e-12
    # one-query episodes (one trial of N pairs, as in Koch et al.) at the twin's measured
    # pairs/s: embed-once costs the same, since it embeds every image either way
    one_query = twin / queries
    return "\n".join([
        f"b. One-shot evaluation: {result.n_episodes:,} {result.n_way}-way 1-shot episodes "
        f"with {queries} queries each ({result.n_query} per class, as the library's tests "
        f"draw them: {result.pairs:,} pairs), Omniglot evaluation set "
        f"({result.n_images:,} images, 28x28), same untrained model; "
        f"median of {len(result.once_seconds)} interleaved rounds",
        format_table(["method", "seconds", "forwarded", "accuracy"], rows),
        f"speed-up of embed-once: {result.speedup:.1f}x "
        f"(target >= {TARGET_EVAL_SPEEDUP:g}x: {_verdict(result.speedup >= TARGET_EVAL_SPEEDUP)}); "
        f"against one call per pair: {per_pair_speedup:.1f}x "
        f"(target >= {TARGET_EVAL_SPEEDUP:g}x: "
        f"{_verdict(per_pair_speedup >= TARGET_EVAL_SPEEDUP)}); "
        f"embed-once {once:.2f} s "
        f"(target <= {TARGET_EVAL_SECONDS:g} s: {_verdict(once <= TARGET_EVAL_SECONDS)})",
        f"same accuracy on the {result.twin_episodes} timed episodes: "
        f"{'yes' if same else 'NO'} ({result.sample_once}); answers agree on "
        f"{result.agree}/{result.twin_episodes * queries} queries",
        f"with ONE query per episode instead ({result.n_episodes * result.n_way:,} pairs), the "
        f"twin network would take {one_query:.2f} s at the same pairs/s: embed-once "
        f"{_times(one_query / once)}, and {_times(result.per_pair_seconds / queries / once)} "
        f"than one call per pair",
    ])


# -------------------------------------------------------------------------------- defaults


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
    base = _fresh_model(sizes.width, seed)
    images = mnist.images.to(device)
    pipelines = []
    for i, (cl, t, b, bf16) in enumerate(configs):
        name = (f"channels_last {'on' if cl else 'off'}, {t} threads, batch {b}, "
                f"bfloat16 {'on' if bf16 else 'off'}")
        batches = pair_batches(images, mnist.labels, b, 10**9, seed=seed + i, device=device)
        pipelines.append(Pipeline(name, copy.deepcopy(base), ContrastiveLoss(), batches, b,
                                  device, channels_last=cl, threads=t, bf16=bf16))
    _interleave(pipelines, sizes.default_rounds, sizes.default_block, alone=False,
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


# ------------------------------------------------------------------------------------ main


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
        except RuntimeError as err:
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
