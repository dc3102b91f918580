"""How much work each section of ``python -m benchmarks.speed`` does: the default run
and the ``--quick`` smoke run."""

from __future__ import annotations

from dataclasses import dataclass


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
