"""Chapter 8's levers toward human level on Lake's runs, at a training budget.

The book's chapter "Toward human level" measures these levers on the models its build
trains; this benchmark measures them at any budget, the long one by default (the models
of ``python -m benchmarks.accuracy``, about 8 CPU-minutes each on 2 cores), and says
whether the best reaches people's 95.5% on Lake's runs within 60 s of test-time work.

Run ``python -m benchmarks.levers`` from the repository root; ``--budget book`` measures
the book's own models. Rows: the base model alone; test-time shifts (``ShiftAveraged``,
up to ``--shifts`` pixels); the ensemble of the losses' models (``EmbeddingEnsemble``), alone
and shifted by one pixel; test-time adaptation to each support set
(``adapt.adapt_to_support``), scored on Lake's 400 trials and on the first
``--adapted-episodes`` episodes of the other tests, beside the base model on the same
episodes. Then the levers that change training, each a model of its own at the same number
of steps (the chapter cannot afford to train them while the book builds): 56 x 56 images
through a stride-2 stem (``EmbeddingNet(stem_stride=2)``, about the compute of 28 x 28),
batches whose classes come 16 per alphabet (``Recipe.classes_per_alphabet``), both
together, and an ensemble of three shorter models (different seeds, a third of the steps
each, rounded) against the one long model at the same total budget; each alone and with the
largest test-time shift on Lake's runs. Then the base model and the best of those levers are
trained again with other seeds (``--training-seeds``), since one training run can be lucky.
Lake's column gives the test-time seconds of its 400 trials; "train s" the training of every
model the row asks.

``--save FILE`` also writes the table as JSON, with the machine and the command that
measured it, for chapter 8 to show.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from siamese_lib.adapt import adapt_to_support
from siamese_lib.evaluate import Accuracy, trials_accuracy
from siamese_lib.files import atomic_write
from siamese_lib.nets import EmbeddingEnsemble, ShiftAveraged
from siamese_lib.precision import cpu_bf16_units
from siamese_lib.protocols import evaluate_protocols, one_shot_trials
from siamese_lib.published import MEASURES
from siamese_lib.recipes import BOOK_RECIPES, Recipe

from .accuracy import add_model_arguments, model_at_budget
from .tables import format_table

BASE = "omniglot-prototypical"
ENSEMBLE = ("omniglot-prototypical", "omniglot-triplet", "omniglot-contrastive")
OTHER_TESTS = ("omniglot-20way", "mnist-10way")
#: Test-time work allowed for Lake's 400 trials (issue 16's budget), in seconds.
TEST_TIME_LIMIT_S = 60.0
#: Classes per alphabet in the batches of the "harder tasks" lever (64 classes: 4 alphabets).
CLASSES_PER_ALPHABET = 16
#: Members of the ensemble that shares one model's training budget.
SHORT_MEMBERS = 3


def training_levers(base: Recipe) -> dict[str, Recipe]:
    """The levers that change training, as variants of ``base`` (same steps and seed)."""
    larger = dict(base.net, input_size=56, stem_stride=2)
    per_alphabet = CLASSES_PER_ALPHABET
    return {
        "56 px images, stride-2 stem": replace(base, name=f"{base.name}-56px", net=larger),
        f"batches of {per_alphabet} classes per alphabet": replace(
            base, name=f"{base.name}-alphabets", classes_per_alphabet=per_alphabet),
        f"56 px and {per_alphabet} classes per alphabet": replace(
            base, name=f"{base.name}-56px-alphabets", net=larger, classes_per_alphabet=per_alphabet),
    }


def _machine() -> str:
    """The CPU (and GPU) that measured, in words."""
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip()
                 for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:  # not Linux
        pass
    # the bfloat16 units decide the library's precision (siamese_lib.precision): a CPU's
    # brand name alone ("Intel(R) Xeon(R) Processor" in a VM) does not say which it has
    units = cpu_bf16_units()
    cpu += f" ({', '.join(units)})" if units else " (no bfloat16 units)"
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu}, {torch.get_num_threads()} threads{gpu}"


def save_rows(path: Path, rows: list, base_name: str, budget: str, base_train_s: float,
              argv: Sequence[str]) -> None:
    """The table as JSON: each lever's accuracies (mean, ci95, n per test), its test-time
    seconds on Lake's runs and its training seconds, with where and how (``argv``, the
    benchmark's options) it was measured."""
    record = {
        "command": " ".join(["python -m benchmarks.levers", *argv]),
        "machine": _machine(),
        "date": datetime.date.today().isoformat(),
        "base": base_name, "budget": budget, "base_train_s": round(base_train_s, 1),
        "rows": [{"lever": lever, "train_s": round(train_s, 1), "lake_test_s": round(lake_s, 2),
                  "tests": {p: {"mean": a.mean, "ci95": a.ci95, "n": a.n} for p, a in accs.items()}}
                 for lever, train_s, accs, lake_s in rows],
    }
    atomic_write(path, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))


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
    parser.add_argument("--no-training-levers", action="store_true",
                        help="skip the levers that train models of their own")
    parser.add_argument("--training-seeds", type=int, default=3,
                        help="seeds the base model and the best training lever are trained with")
    parser.add_argument("--save", type=Path, default=None, help="also write the table as JSON")
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
    base_s = base.history.seconds
    ensemble_s = sum(tm.history.seconds for tm in members)
    rows = [("none", base_s, *measure(base.embedding_net))]
    rows += [(f"test-time shifts ±{p}", base_s, *measure(ShiftAveraged(base.embedding_net, p)))
             for p in range(1, args.shifts + 1)]
    rows.append((f"ensemble of {len(members)} losses' models", ensemble_s, *measure(ensemble)))
    rows.append((f"ensemble of {len(members)} losses' models, shifts ±1", ensemble_s,
                 *measure(ShiftAveraged(ensemble, 1))))

    adapt = functools.partial(adapt_to_support, steps=args.adapt_steps, lr=args.adapt_lr)
    trials = {p: one_shot_trials(p, args.adapted_episodes) for p in ("lake-runs", *OTHER_TESTS)}
    plain = {p: trials_accuracy(base.embedding_net, t) for p, t in trials.items()}
    lake, seconds = _timed(lambda: {"lake-runs": trials_accuracy(
        base.embedding_net, trials["lake-runs"], adapt=adapt)})
    adapted = {**lake, **{p: trials_accuracy(base.embedding_net, trials[p], adapt=adapt)
                          for p in OTHER_TESTS}}
    rows.append((f"none, on {args.adapted_episodes} episodes", base_s, plain, 0.0))
    rows.append((f"adapted ({args.adapt_steps} steps), same episodes", base_s, adapted, seconds))
    if not args.no_training_levers:
        rows += _training_rows(BOOK_RECIPES[BASE], model, measure, args.shifts,
                               args.training_seeds)

    target = next(m for m in MEASURES if m.protocol == "lake-runs")
    table = []
    for lever, train_s, accs, lake_s in rows:
        met = accs["lake-runs"].mean * 100 >= target.target and lake_s <= TEST_TIME_LIMIT_S
        table.append([lever, accs["lake-runs"].percent(2), f"{lake_s:.1f}",
                      *(accs[p].percent() if p in accs else "—" for p in OTHER_TESTS),
                      f"{train_s:.0f}", "yes" if met else "no"])
    print(f"\nLevers on {base.recipe.name} ({args.budget} budget, "
          f"{base.history.seconds:.0f} s of training)")
    print(format_table(["lever", "Lake (%)", "Lake test s", *(f"{p} (%)" for p in OTHER_TESTS),
                        "train s", f"met ({target.target:g}%, <= {TEST_TIME_LIMIT_S:g} s)"],
                       table, "lrrrrrl"))
    if args.save:
        save_rows(args.save, rows, base.recipe.name, args.budget, base.history.seconds,
                  sys.argv[1:] if argv is None else argv)
        print(f"(saved to {args.save})")
    return 0


def _training_rows(base: Recipe, model, measure, shifts: int, n_seeds: int) -> list:
    """Rows of the levers that train models of their own: each alone on every test, and
    with test-time shifts on Lake's runs; then the base model and the best of these levers
    with ``n_seeds - 1`` more training seeds."""
    def lake_shifted(net) -> tuple[dict[str, Accuracy], float]:
        return _timed(lambda: evaluate_protocols(ShiftAveraged(net, shifts), ["lake-runs"]))

    rows, shifted_lake, levers = [], {}, training_levers(base)
    for lever, recipe in levers.items():
        tm = model(recipe)
        rows.append((lever, tm.history.seconds, *measure(tm.embedding_net)))
        rows.append((f"{lever}, shifts ±{shifts}", tm.history.seconds,
                     *lake_shifted(tm.embedding_net)))
        shifted_lake[lever] = rows[-1][2]["lake-runs"].mean
    best = max(shifted_lake, key=shifted_lake.get)
    # one model's budget shared: each member trains a third of the steps, with its own seed
    short = [model(replace(base, name=f"{base.name}-third-seed{s}", seed=s)
                   .scaled(1 / SHORT_MEMBERS)) for s in range(SHORT_MEMBERS)]
    short_s = sum(tm.history.seconds for tm in short)
    together = EmbeddingEnsemble([tm.embedding_net for tm in short])
    lever = f"ensemble of {SHORT_MEMBERS} shorter models, same total steps"
    rows.append((lever, short_s, *measure(together)))
    rows.append((f"{lever}, shifts ±{shifts}", short_s, *lake_shifted(together)))
    # the base model and the best lever again with other seeds: one training run can be
    # lucky, and Lake's 400 trials cannot tell a point or two from luck
    again = {("none", f"test-time shifts ±{shifts}"): base,
             (best, f"{best}, shifts ±{shifts}"): levers[best]}
    for seed in range(1, n_seeds):
        for (plain, shifted), recipe in again.items():
            tm = model(replace(recipe, name=f"{recipe.name}-seed{seed}", seed=seed))
            rows.append((f"{plain}, training seed {seed}", tm.history.seconds,
                         *measure(tm.embedding_net)))
            rows.append((f"{shifted}, training seed {seed}", tm.history.seconds,
                         *lake_shifted(tm.embedding_net)))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
