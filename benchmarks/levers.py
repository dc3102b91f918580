"""Chapter 8's levers toward human level on Lake's runs, at a training budget.

The book's chapter "Toward human level" measures these levers on the models its build
trains; this benchmark measures them at any budget, the long one by default (the models
of ``python -m benchmarks.accuracy``, about 8 CPU-minutes each on 2 cores), and says
whether the best reaches people's 95.5% on Lake's runs within 60 s of test-time work.

Run ``python -m benchmarks.levers`` from the repository root; ``--budget book`` measures
the book's own models. Rows: the base model alone; test-time shifts (``ShiftAveraged``,
up to ``--shifts`` pixels); the ensemble of the losses' models (``EmbeddingEnsemble``), alone
and shifted by one pixel; and test-time adaptation to each support set
(``adapt.adapt_to_support``), scored on Lake's 400 trials and on the first
``--adapted-episodes`` episodes of the other tests, beside the base model on the same
episodes. Lake's column gives the test-time seconds of its 400 trials.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence

from siamese_lib.adapt import adapt_to_support
from siamese_lib.evaluate import Accuracy, trials_accuracy
from siamese_lib.nets import EmbeddingEnsemble, ShiftAveraged
from siamese_lib.protocols import evaluate_protocols, one_shot_trials
from siamese_lib.published import MEASURES

from .accuracy import add_model_arguments, model_at_budget
from .tables import format_table

BASE = "omniglot-prototypical"
ENSEMBLE = ("omniglot-prototypical", "omniglot-triplet", "omniglot-contrastive")
OTHER_TESTS = ("omniglot-20way", "mnist-10way")
#: Test-time work allowed for Lake's 400 trials (issue 16's budget), in seconds.
TEST_TIME_LIMIT_S = 60.0


def _timed(run: Callable[[], dict[str, Accuracy]]) -> tuple[dict[str, Accuracy], float]:
    start = time.perf_counter()
    return run(), time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each lever on the three tests and print one table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.levers", description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--adapted-episodes", type=int, default=100,
                        help="episodes of the other tests scored with adaptation")
    parser.add_argument("--shifts", type=int, default=2, help="largest test-time shift (pixels)")
    parser.add_argument("--adapt-steps", type=int, default=10)
    parser.add_argument("--adapt-lr", type=float, default=1e-4)
    args = parser.parse_args(argv)

    model = functools.partial(model_at_budget, budget=args.budget, scale=args.scale)

    def measure(net) -> tuple[dict[str, Accuracy], float]:
        """All three tests; the time is that of Lake's runs alone."""
        lake, seconds = _timed(lambda: evaluate_protocols(net, ["lake-runs"]))
        return {**lake, **evaluate_protocols(net, OTHER_TESTS, n_episodes=args.episodes,
                                             seed=range(args.seeds))}, seconds

    base = model(BASE)
    members = [base] + [model(name) for name in ENSEMBLE if name != BASE]
    ensemble = EmbeddingEnsemble([tm.embedding_net for tm in members])
    extra_s = sum(tm.history.seconds for tm in members[1:])
    rows = [("none", 0.0, *measure(base.embedding_net))]
    rows += [(f"test-time shifts ±{p}", 0.0, *measure(ShiftAveraged(base.embedding_net, p)))
             for p in range(1, args.shifts + 1)]
    rows.append((f"ensemble of {len(members)}", extra_s, *measure(ensemble)))
    rows.append((f"ensemble of {len(members)}, shifts ±1", extra_s,
                 *measure(ShiftAveraged(ensemble, 1))))

    adapt = functools.partial(adapt_to_support, steps=args.adapt_steps, lr=args.adapt_lr)
    trials = {p: one_shot_trials(p, args.adapted_episodes) for p in ("lake-runs", *OTHER_TESTS)}
    plain = {p: trials_accuracy(base.embedding_net, t) for p, t in trials.items()}
    lake, seconds = _timed(lambda: {"lake-runs": trials_accuracy(
        base.embedding_net, trials["lake-runs"], adapt=adapt)})
    adapted = {**lake, **{p: trials_accuracy(base.embedding_net, trials[p], adapt=adapt)
                          for p in OTHER_TESTS}}
    rows.append((f"none, on {args.adapted_episodes} episodes", 0.0, plain, 0.0))
    rows.append((f"adapted ({args.adapt_steps} steps), same episodes", 0.0, adapted, seconds))

    target = next(m for m in MEASURES if m.protocol == "lake-runs")
    table = []
    for lever, train_s, accs, lake_s in rows:
        met = accs["lake-runs"].mean * 100 >= target.target and lake_s <= TEST_TIME_LIMIT_S
        table.append([lever, accs["lake-runs"].percent(2), f"{lake_s:.1f}",
                      *(accs[p].percent() for p in OTHER_TESTS), f"{train_s:.0f}",
                      "yes" if met else "no"])
    print(f"\nLevers on {base.recipe.name} ({args.budget} budget, "
          f"{base.history.seconds:.0f} s of training)")
    print(format_table(["lever", "Lake (%)", "Lake test s", *(f"{p} (%)" for p in OTHER_TESTS),
                        "extra train s", f"met ({target.target:g}%, <= {TEST_TIME_LIMIT_S:g} s)"],
                       table, "lrrrrrl"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
