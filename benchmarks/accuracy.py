"""Accuracy benchmark: the measures of :data:`siamese_lib.published.MEASURES`, side by side
with their targets and published figures.

Run ``python -m benchmarks.accuracy`` from the repository root. ``--budget long`` (the
default) trains each recipe for ``--scale`` times the book's steps, which is meant to fit
8 CPU-minutes per model on a 2-core machine; ``--budget book`` measures the book's own
models. Models come from the recipe cache when they were trained before. Each one-shot
accuracy is averaged over ``--seeds`` independent sets of episodes and printed with its 95%
confidence interval.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import torch

from siamese_lib.evaluate import Accuracy
from siamese_lib.protocols import evaluate_protocols
from siamese_lib.published import MEASURES
from siamese_lib.recipes import LOSS_COMPARISON, RECIPES, Recipe, TrainedModel, load_model


def long_recipe(name: str, scale: float) -> Recipe:
    """The book's recipe with ``scale`` times the steps, under its own name (Omniglot: augmented)."""
    recipe = RECIPES[name]
    # longer runs see each image many times: Koch's distortions then pay off
    augment = recipe.data.startswith("omniglot")
    return recipe.scaled(scale, name=f"{name}-x{scale:g}", augment=augment or recipe.augment)


def measure(tm: TrainedModel | None, protocol: str, seeds: Sequence[int], episodes: int) -> Accuracy:
    """A protocol's accuracy over several seeds of episodes (pooled per-episode results)."""
    net = None if tm is None else tm.embedding_net
    similarity = None if tm is None else tm.similarity
    runs = [evaluate_protocols(net, [protocol], similarity, episodes, seed)[protocol]
            for seed in seeds]
    if protocol == "lake-runs":  # fixed trials: seeds change nothing
        return runs[0]
    mean = sum(r.mean for r in runs) / len(runs)
    # equal-sized runs: the pooled CI shrinks with the total number of episodes
    ci = (sum(r.ci95**2 for r in runs) ** 0.5) / len(runs)
    return Accuracy(mean, ci, sum(r.n for r in runs))


def table(rows: list[list[str]], headers: list[str]) -> str:
    """Plain-text aligned table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def main(argv: Sequence[str] | None = None) -> int:
    """Train (or load) the benchmark models and print the accuracy tables."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__)
    parser.add_argument("--budget", choices=["long", "book"], default="long")
    parser.add_argument("--scale", type=float, default=4.0, help="steps x the book's (long)")
    parser.add_argument("--seeds", type=int, default=3, help="sets of episodes per measure")
    parser.add_argument("--episodes", type=int, default=1000, help="episodes per set")
    parser.add_argument("--losses", action="store_true",
                        help="also train and measure every loss of the comparison chapter")
    args = parser.parse_args(argv)
    seeds = list(range(args.seeds))

    def model(name: str) -> TrainedModel:
        recipe = RECIPES[name] if args.budget == "book" else long_recipe(name, args.scale)
        t0 = time.perf_counter()
        tm = load_model(recipe)
        origin = "cache" if tm.from_cache else f"trained in {time.perf_counter() - t0:.0f} s"
        print(f"# {recipe.name}: {recipe.epochs * recipe.steps_per_epoch} steps, "
              f"{tm.history.seconds:.0f} s of training ({origin})", flush=True)
        return tm

    torch.manual_seed(0)
    rows = []
    for m in MEASURES:
        acc = measure(model(m.recipe), m.protocol, seeds, args.episodes)
        pixels = measure(None, m.protocol, seeds, args.episodes) if m.target is None else None
        met = "-" if m.target is None else ("yes" if 100 * acc.mean >= m.target else "NO")
        published = "; ".join(f"{p.method} {p.accuracy:.1f}" for p in m.published)
        if pixels is not None:
            published = f"pixel 1-NN (measured) {100 * pixels.mean:.1f} ± {100 * pixels.ci95:.1f}"
        rows.append([m.description[:60], m.recipe, f"{100 * acc.mean:.1f} ± {100 * acc.ci95:.1f}",
                     "-" if m.target is None else f">= {m.target:g}", met, published])
    print()
    print(table(rows, ["measure", "recipe", "ours (%)", "target", "met", "published (%)"]))

    if args.losses:
        protocols = ["lake-runs", "omniglot-20way", "omniglot-5way", "mnist-10way"]
        # the targets of the measures these tests share with the main table
        targets = {m.protocol: m.target for m in MEASURES
                   if m.protocol in protocols and m.target is not None
                   and RECIPES[m.recipe].data == "omniglot-background"}

        def cell(acc: Accuracy, protocol: str) -> str:
            text = f"{100 * acc.mean:.1f} ± {100 * acc.ci95:.1f}"
            if protocol in targets:
                text += " (met)" if 100 * acc.mean >= targets[protocol] else " (NO)"
            return text

        rows = []
        for name in LOSS_COMPARISON:
            tm = model(name)
            rows.append([name, f"{tm.history.seconds:.0f}"]
                        + [cell(measure(tm, p, seeds, args.episodes), p) for p in protocols])
        rows.append(["target", ""] + [f">= {targets[p]:g}" if p in targets else "-"
                                      for p in protocols])
        print()
        print(table(rows, ["recipe", "train s"] + protocols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
