"""The command line: ``python -m siamese_lib`` (or ``siamese-lib``) trains and evaluates recipes.

Taught in chapter 6, "Faces: verification of people never seen", and on the page "Your own
images"; it parses, calls the library and prints, and holds no logic of its own.

Commands:

``recipes``
    list the named recipes of :data:`siamese_lib.recipes.RECIPES`.
``train RECIPE [--retrain] [--device D] [--out PATH]``
    train a recipe, or load it from the cache if it was trained before
    (:func:`~siamese_lib.recipes.load_model`); print the training time and the final
    validation metric; with ``--out``, also save a checkpoint there.
``evaluate RECIPE_OR_CHECKPOINT [--data SET_OR_FOLDER] [--episodes N] [--way N] [--shot K] [--shifts P]``
    one-shot accuracy with its 95% confidence interval, over seeded N-way K-shot
    episodes (:class:`~siamese_lib.episodes.EpisodeSampler` and
    :func:`~siamese_lib.evaluate.one_shot_accuracy`) or over Lake et al.'s 20 official
    runs (``--data lake-runs``, :func:`~siamese_lib.evaluate.lake_runs_accuracy`);
    ``--data`` may be a folder of your own images, one subfolder per class
    (:func:`~siamese_lib.folders.load_image_folder`); ``--shifts P`` embeds with test-time
    shifts (:class:`~siamese_lib.nets.ShiftAveraged`).
``classify RECIPE_OR_CHECKPOINT --support FOLDER IMAGE [IMAGE ...]``
    one-shot classification of your own images: name the class of each IMAGE (a file,
    or a folder of them) from the labelled examples in FOLDER, one subfolder per class
    (:class:`~siamese_lib.classifier.OneShotClassifier`).
``verify RECIPE_OR_CHECKPOINT IMAGE_A IMAGE_B [--threshold T | --calibrate FOLDER]``
    the distance D between two images, and "same" or "different" at a threshold: given,
    or chosen at the equal error rate of every pair of a labelled FOLDER
    (:func:`~siamese_lib.evaluate.calibrate_threshold`).
``export RECIPE_OR_CHECKPOINT OUT [--torchscript] [--shifts P]``
    save the embedding net as an ONNX file (or TorchScript) that other programs run
    without this library (:func:`~siamese_lib.export.export_onnx`).

Mistakes (an unknown recipe, a missing file, a bad number, data that is not there)
end with exit code 2 and a one-line message on stderr, not a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from torch import nn

from .checkpoint import check_writable, load_trained, save_trained
from .classifier import OneShotClassifier, Predictions
from .data import DATASETS, EVALUATION_SETS
from .episodes import EpisodeSampler
from .evaluate import (
    Accuracy,
    embed_images,
    lake_runs_accuracy,
    one_shot_accuracy,
)
from .nets import ShiftAveraged, input_shape
from .precision import pick_device

if TYPE_CHECKING:
    from .imageset import ImageSet

PROG = "python -m siamese_lib"

#: Evaluation sets for ``evaluate --data``: the registry's evaluation sets and Lake's runs.
EVAL_DATA = (*EVALUATION_SETS, "lake-runs")

# the evaluation set that matches a recipe's training data, when --data is not given
_DEFAULT_DATA = {d.tests: name for name, d in DATASETS.items() if d.tests}
_MAX_WAY = 20

Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class UsageError(Exception):
    """A mistake in what the user asked for: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# --------------------------------------------------------------------------- argument types


def _int_at_least(text: str, minimum: int, too_small: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{too_small}, got {value}")
    return value


def _positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _int_at_least(text, 1, "expected a number >= 1")


def _non_negative_int(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _int_at_least(text, 0, "expected a number >= 0")


def _positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _way(text: str) -> int:
    """argparse type: N of an N-way episode, at least 2."""
    return _int_at_least(text, 2, "an episode needs at least 2 classes")


def _eval_data(text: str) -> str:
    """argparse type: a named evaluation set, or a folder of images in class subfolders."""
    if text in EVAL_DATA or Path(text).is_dir():
        return text
    if _has_separator(text) or text.startswith("."):
        raise argparse.ArgumentTypeError(f"no such folder: {text}")
    raise argparse.ArgumentTypeError(
        f"expected one of {', '.join(EVAL_DATA)}, or a folder of images with one subfolder "
        f"per class; got {text!r}"
    )


def _has_separator(text: str) -> bool:
    return any(sep in text for sep in ("/", "\\"))


def _device(text: str) -> torch.device:
    """argparse type: a torch device that exists on this machine."""
    try:
        return pick_device(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# -------------------------------------------------------------------------------- parser


def _add_model(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="RECIPE_OR_CHECKPOINT",
                        help="a recipe name (see `recipes`) or a checkpoint file")


def _add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=_device, default=None,
                        help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")


def _add_shifts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shifts", type=_non_negative_int, default=0, metavar="P",
                        help="average each embedding over the image shifted by up to P "
                        "pixels, (2P+1)^2 copies (test-time augmentation; default: 0, off)")


def _add_invert(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--invert", action="store_true",
                        help=f"{what} (dark drawings on a light background become light on "
                        "dark, as the MNIST and Omniglot models saw them)")


#: Each command's one-line help and its description, for ``--help``.
_HELP: dict[str, tuple[str, str]] = {
    "train": (
        "train a recipe (or load it from the cache)",
        "Train a recipe, or load it from the cache if it was trained before; "
        "print the training time and the final validation metric.",
    ),
    "evaluate": (
        "one-shot accuracy of a recipe or a checkpoint",
        "One-shot accuracy, with its 95%% confidence interval, of a recipe's "
        "model (trained first if it is not cached) or of a checkpoint file.",
    ),
    "classify": (
        "name the class of your own images from one example per class",
        "One-shot classification: embed the labelled examples in --support (one "
        "subfolder per class, one or more images each) and every IMAGE, and print the class "
        "of the nearest example for each IMAGE, with its distance and the runner-up's.",
    ),
    "verify": (
        "same or different? the distance between two images",
        "Print the distance D between the embeddings of two images and, with a "
        "threshold, whether they show the same class (D <= threshold). --calibrate chooses "
        "the threshold on every pair of a labelled folder, at its equal error rate.",
    ),
    "export": (
        "save the embedding net as ONNX (or TorchScript) for other programs",
        "Save a trained embedding net as an ONNX file, with a batch axis of any "
        "size: float32 images (N, C, H, W) in [0, 1] in, (N, d) embeddings out. A learned "
        "similarity head (Koch) is not part of the file.",
    ),
}


def _subparser(sub: Any, name: str) -> argparse.ArgumentParser:
    help_, description = _HELP[name]
    return sub.add_parser(name, help=help_, description=description)


def _add_train(sub: Any) -> None:
    """The ``train`` command."""
    train = _subparser(sub, "train")
    train.add_argument("recipe", metavar="RECIPE", help="a recipe name (see `recipes`)")
    train.add_argument("--retrain", action="store_true",
                       help="train again even if the recipe is in the cache")
    _add_device(train)
    train.add_argument("--out", type=Path, default=None, metavar="PATH",
                       help="also save the trained model as a checkpoint file here")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _add_evaluate(sub: Any) -> None:
    """The ``evaluate`` command."""
    evaluate = _subparser(sub, "evaluate")
    _add_model(evaluate)
    evaluate.add_argument("--data", type=_eval_data, default=None, metavar="SET_OR_FOLDER",
                          help=f"evaluation set: {', '.join(EVAL_DATA)}, or a folder of your "
                          "own images with one subfolder per class (default: the test set "
                          "matching the recipe's training data, else omniglot-evaluation)")
    _add_invert(evaluate, "with a folder: invert its images")
    evaluate.add_argument("--episodes", type=_positive_int, default=1000, metavar="N",
                          help="number of episodes (default: 1000)")
    evaluate.add_argument("--way", type=_way, default=None, metavar="N",
                          help=f"classes per episode (default: {_MAX_WAY}, or every class "
                          "of a smaller set)")
    evaluate.add_argument("--shot", type=_positive_int, default=1, metavar="K",
                          help="support images per class (default: 1)")
    evaluate.add_argument("--query", type=_positive_int, default=1, metavar="Q",
                          help="query images per class (default: 1)")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the episodes (default: 0)")
    _add_shifts(evaluate)
    _add_device(evaluate)


def _add_classify(sub: Any) -> None:
    """The ``classify`` command."""
    classify = _subparser(sub, "classify")
    _add_model(classify)
    classify.add_argument("images", metavar="IMAGE", nargs="+", type=Path,
                          help="an image file to classify, or a folder of them")
    classify.add_argument("--support", type=Path, required=True, metavar="FOLDER",
                          help="the labelled examples: FOLDER/<class name>/<image files>")
    _add_invert(classify, "invert every image")
    classify.add_argument("--rule", choices=("nearest", "prototype"), default="nearest",
                          help="nearest: the class of the nearest example (the Siamese rule; "
                          "default); prototype: the class whose mean embedding is nearest")
    _add_shifts(classify)
    _add_device(classify)


def _add_verify(sub: Any) -> None:
    """The ``verify`` command."""
    verify = _subparser(sub, "verify")
    _add_model(verify)
    verify.add_argument("image_a", metavar="IMAGE_A", type=Path, help="an image file")
    verify.add_argument("image_b", metavar="IMAGE_B", type=Path, help="another image file")
    how = verify.add_mutually_exclusive_group()
    how.add_argument("--threshold", type=_positive_float, default=None, metavar="T",
                     help="call the pair 'same' when D <= T")
    how.add_argument("--calibrate", type=Path, default=None, metavar="FOLDER",
                     help="choose T on every pair of FOLDER (one subfolder per class), where "
                     "as many same-class pairs are rejected as different-class pairs accepted; "
                     "use other images than the ones you verify")
    _add_invert(verify, "invert every image")
    _add_device(verify)


def _add_export(sub: Any) -> None:
    """The ``export`` command."""
    export = _subparser(sub, "export")
    _add_model(export)
    export.add_argument("out", metavar="OUT", type=Path,
                        help="the file to write, e.g. model.onnx")
    export.add_argument("--torchscript", action="store_true",
                        help="write TorchScript (torch.jit.load reads it) instead of ONNX")
    _add_shifts(export)
    _add_device(export)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m siamese_lib`` and its six commands."""
    parser = _Parser(
        prog=PROG,
        description="Train and evaluate the Siamese-network recipes of the book, classify "
        "your own images from one example per class, and verify pairs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    sub.add_parser("recipes", help="list the recipe names and what they train",
                   description="List the recipe names and what they train.")

    _add_train(sub)
    _add_evaluate(sub)
    _add_classify(sub)
    _add_verify(sub)
    _add_export(sub)
    return parser


# -------------------------------------------------------------------------------- commands


def _recipe(name: str) -> Any:
    """The recipe called ``name``, or a UsageError that lists the known ones."""
    from .recipes import RECIPES

    if name not in RECIPES:
        raise UsageError(
            f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)} "
            f"(`{PROG} recipes` describes them)"
        )
    return RECIPES[name]


def cmd_recipes(args: argparse.Namespace) -> int:
    """Print every recipe's name, data, loss and description."""
    from .recipes import RECIPES

    rows = [(r.name, r.data, r.loss, r.description) for r in RECIPES.values()]
    widths = [max(len(row[i]) for row in [("recipe", "data", "loss", ""), *rows])
              for i in range(3)]
    print("  ".join(h.ljust(w) for h, w in zip(("recipe", "data", "loss"), widths,
                                                strict=True)) + "  description")
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return 0


def _metric_name(loss: str) -> str:
    if loss == "cross-entropy":
        return "validation classification accuracy (held-out images)"
    return "validation one-shot accuracy (1-shot episodes of held-out classes)"


def cmd_train(args: argparse.Namespace) -> int:
    """Train (or load) a recipe, report its time and validation metric, optionally save it."""
    from .recipes import load_model

    recipe = _recipe(args.recipe)
    if args.out is not None:  # found now, not after the training it would lose
        check_writable(args.out)
    print(f"recipe {recipe.name}: {recipe.description}", flush=True)
    trained = load_model(recipe, retrain=args.retrain, device=args.device,
                         progress=not args.no_progress)
    history = trained.history
    plan = f"{recipe.epochs} epochs x {recipe.steps_per_epoch} steps"
    if trained.from_cache:
        print(f"loaded from the cache: trained earlier in {history.seconds:.1f} s ({plan}); "
              "--retrain trains it again")
    else:
        print(f"trained in {history.seconds:.1f} s ({plan}, validation not counted)")
    if history.val_metric:
        print(f"final {_metric_name(recipe.loss)}: {100 * history.val_metric[-1]:.1f}%")
    if args.out is not None:
        path = save_trained(args.out, trained.model, trained.loss_fn, recipe=asdict(recipe),
                            history=history)
        print(f"saved checkpoint to {path}")
    return 0


def _looks_like_path(text: str) -> bool:
    return _has_separator(text) or Path(text).suffix in (".pt", ".pth")


def _load_for_evaluation(
    name: str, device: torch.device | None, data_given: bool = False
) -> tuple[nn.Module, Similarity | None, str | None, str]:
    """(embedding net, learned similarity or None, training data name or None, description)."""
    from .recipes import RECIPES, load_model

    if name in RECIPES:
        # checked before a possible training run
        if not data_given and RECIPES[name].data not in _DEFAULT_DATA:
            raise UsageError(
                f"recipe {name} is trained on {RECIPES[name].data}, and evaluate has no "
                f"evaluation set of that kind; pass --data: {', '.join(EVAL_DATA)}, or a "
                "folder of images with one subfolder per class"
            )
        trained = load_model(name, device=device)
        how = "from the cache" if trained.from_cache else "trained just now"
        return (trained.embedding_net, trained.similarity, trained.recipe.data,
                f"recipe {name} ({how}){_scored_by(trained.similarity)}")
    path = Path(name)
    if not path.exists():
        if _looks_like_path(name):
            raise UsageError(f"checkpoint file not found: {path}")
        raise UsageError(
            f"{name!r} is neither a recipe nor a checkpoint file; known recipes: "
            f"{', '.join(RECIPES)}"
        )
    if not path.is_file():
        raise UsageError(f"{path} is a folder, not a checkpoint file")
    saved = load_trained(path)  # with its loss: a Koch model keeps its learned head
    return (saved.embedding_net.eval(), saved.similarity, (saved.recipe or {}).get("data"),
            f"checkpoint {path}{_scored_by(saved.similarity)}")


def _scored_by(similarity: Similarity | None) -> str:
    return "; pairs scored by its learned Koch head" if similarity is not None else ""


def _input_size(net: nn.Module) -> int:
    return int(getattr(net, "input_size", 28))


def _in_channels(net: nn.Module) -> int:
    return int(getattr(net, "in_channels", 1))


def _check_fits(net: nn.Module, images: torch.Tensor, data: str) -> None:
    expected = (getattr(net, "in_channels", images.shape[1]), _input_size(net), _input_size(net))
    if tuple(images.shape[1:]) != tuple(expected):
        raise UsageError(
            f"the model takes {expected[0]}x{expected[1]}x{expected[2]} images but {data} "
            f"has {'x'.join(map(str, images.shape[1:]))}; pick another --data"
        )


def _load_images(
    data: str, net: nn.Module, invert: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images, labels) of an episode evaluation set, or of a folder of your own."""
    from .data import load_dataset
    from .folders import load_image_folder

    size = _input_size(net)
    if data not in EVAL_DATA:  # a folder: read at the size and channels the net takes
        images = load_image_folder(data, size, _in_channels(net), invert)
    else:
        images = load_dataset(data, size if DATASETS[data].resizable else None)
    return images.images, images.labels


def _with_shifts(net: nn.Module, pixels: int) -> nn.Module:
    if not pixels:
        return net
    print(f"test-time shifts: up to {pixels} pixel(s), {(2 * pixels + 1) ** 2} copies per image "
          "(ShiftAveraged)")
    return ShiftAveraged(net, pixels)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Print the one-shot accuracy (with 95% CI) of a recipe's model or a checkpoint."""
    if args.invert and (args.data is None or args.data in EVAL_DATA):
        raise UsageError("--invert applies to a folder of your own images (--data FOLDER), "
                         f"not to {args.data or 'the default evaluation set'}")
    net, similarity, trained_on, what = _load_for_evaluation(args.model, args.device,
                                                             data_given=args.data is not None)
    data = args.data or _DEFAULT_DATA.get(trained_on or "", "omniglot-evaluation")
    device = pick_device(args.device)
    print(f"model: {what}", flush=True)
    if data == "lake-runs":
        from .data import load_lake_runs

        runs = load_lake_runs(size=_input_size(net))
        _check_fits(net, runs[0].train, data)
        acc = lake_runs_accuracy(_with_shifts(net, args.shifts), runs, similarity, device=device)
        print(f"data: lake-runs (Lake et al.'s {len(runs)} official 20-way 1-shot runs; "
              "--episodes, --way, --shot and --query do not apply)")
        print(f"20-way 1-shot accuracy over {acc.n} trials: {acc}")
        return 0
    images, labels = _load_images(data, net, args.invert)
    _check_fits(net, images, data)
    n_classes = int(labels.unique().numel())
    way = args.way if args.way is not None else min(_MAX_WAY, n_classes)
    if way > n_classes:
        raise UsageError(f"--way {way} is more than the {n_classes} classes of {data}")
    sampler = EpisodeSampler(labels, way, args.shot, args.query, n_episodes=args.episodes,
                             seed=args.seed)
    embeddings = embed_images(_with_shifts(net, args.shifts), images, device=device)
    acc: Accuracy = one_shot_accuracy(embeddings, sampler, similarity)
    print(f"data: {data} ({len(images):,} images, {n_classes:,} classes)")
    print(f"{way}-way {args.shot}-shot accuracy over {acc.n} episodes "
          f"({args.query} {'query' if args.query == 1 else 'queries'} per class, seed "
          f"{args.seed}): {acc}")
    return 0


def _query_files(items: Sequence[Path]) -> list[Path]:
    """The image files named on the command line, each folder replaced by its images."""
    from .folders import image_files

    files: list[Path] = []
    for item in items:
        if item.is_dir():
            found = image_files(item)
            if not found:
                raise UsageError(f"folder {item} holds no image file")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise UsageError(f"image not found: {item}")
    return files


def _check_support(folder: Path) -> None:
    """A support folder with class subfolders that hold images (checked without reading them)."""
    from .folders import class_folders, image_files

    if not folder.is_dir():
        raise UsageError(f"support folder not found: {folder}")
    classes = class_folders(folder)
    if not classes:
        raise UsageError(f"support folder {folder} has no class subfolders: put the examples "
                         f"of each class in {folder / '<class name>'}")
    empty = sorted(d.name for d in classes if not image_files(d))
    if empty:
        raise UsageError(f"class folder(s) {', '.join(empty)} of support folder {folder} hold "
                         "no image file; add images or remove the folder")


def cmd_classify(args: argparse.Namespace) -> int:
    """Print the predicted class of each image, from labelled examples in a support folder."""
    from .folders import load_image_folder, load_images

    # every file is checked before the model is loaded, which may mean training it first
    files = _query_files(args.images)
    _check_support(args.support)
    net, similarity, _, what = _load_for_evaluation(args.model, args.device, data_given=True)
    if similarity is not None and args.rule == "prototype":
        raise UsageError("--rule prototype needs a distance model; this one scores pairs "
                         "with a learned head (Koch), so use --rule nearest")
    size, channels = _input_size(net), _in_channels(net)
    support = load_image_folder(args.support, size, channels, args.invert)
    queries = load_images(files, size, channels, args.invert)
    print(f"model: {what}", flush=True)
    print(f"support: {args.support} ({support.num_classes} classes, {len(support)} images, "
          f"read at {channels}x{size}x{size})")
    classifier = OneShotClassifier(_with_shifts(net, args.shifts), similarity,
                                   pick_device(args.device), args.rule)
    pred = classifier.enrol(support.images, support.labels, support.classes).predict(queries)
    print(_prediction_table(files, pred, distance=similarity is None))
    return 0


def _prediction_table(files: Sequence[Path], pred: Predictions, distance: bool) -> str:
    """One line per image: its class, how near, and the runner-up (the margin of the call)."""
    what = "D" if distance else "score"
    classes = pred.classes or [str(c) for c in range(pred.scores.shape[1])]
    top = pred.scores.topk(min(2, pred.scores.shape[1]), dim=1)
    rows = []
    for f, values, labels in zip(files, top.values.tolist(), top.indices.tolist(), strict=True):
        values = [-v for v in values] if distance else values
        row = [str(f), classes[labels[0]], f"{what} = {values[0]:.3f}"]
        if len(labels) > 1:
            row.append(f"runner-up {classes[labels[1]]}, {what} = {values[1]:.3f}")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join([*(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)),
                                 *r[3:]]).rstrip() for r in rows)


def cmd_verify(args: argparse.Namespace) -> int:
    """Print the distance between two images and, with a threshold, same or different."""
    from .distances import euclidean
    from .folders import load_image_folder, load_images

    for path in (args.image_a, args.image_b):
        if not path.is_file():
            raise UsageError(f"image not found: {path}")
    if args.calibrate is not None and not args.calibrate.is_dir():
        raise UsageError(f"calibration folder not found: {args.calibrate}")
    net, similarity, _, what = _load_for_evaluation(args.model, args.device, data_given=True)
    if similarity is not None:
        raise UsageError(f"{args.model} scores pairs with a learned head (Koch), not a "
                         "distance; verify needs a distance model")
    size, channels, device = _input_size(net), _in_channels(net), pick_device(args.device)
    print(f"model: {what}", flush=True)
    pair = load_images([args.image_a, args.image_b], size, channels, args.invert)
    z = embed_images(net, pair, device=device)
    d = float(euclidean(z[:1], z[1:]))
    threshold = args.threshold
    if args.calibrate is not None:
        threshold = _calibrated_threshold(net, load_image_folder(
            args.calibrate, size, channels, args.invert), args.calibrate, device)
    print(f"D = {d:.3f} between {args.image_a} and {args.image_b}")
    if threshold is None:
        print("pass --threshold T, or --calibrate FOLDER to choose one, for a same/different call")
    else:
        same = d <= threshold
        print(f"{'same' if same else 'different'} (D {'<=' if same else '>'} threshold "
              f"{threshold:.3f})")
    return 0


def _calibrated_threshold(
    net: nn.Module, folder: ImageSet, name: Path, device: torch.device
) -> float:
    """The equal-error-rate threshold over every pair of a labelled folder (printed)."""
    from .evaluate import calibrate_threshold

    try:
        cal = calibrate_threshold(embed_images(net, folder.images, device=device), folder.labels)
    except ValueError as e:
        raise UsageError(f"--calibrate {name}: {e}") from None
    print(f"threshold {cal.threshold:.3f}: the equal error rate ({100 * cal.roc.eer:.1f}%) of the "
          f"{cal.n_pairs:,} pairs of {name} ({cal.n_similar:,} same-class); "
          f"ROC AUC {cal.roc.auc:.3f}")
    return cal.threshold


def cmd_export(args: argparse.Namespace) -> int:
    """Save the embedding net of a recipe or a checkpoint as ONNX (or TorchScript)."""
    from .export import export_onnx, export_torchscript, require_onnx

    # checked before the model is loaded, which may mean training it first
    if not args.torchscript:
        try:
            require_onnx()
        except ImportError as err:
            raise UsageError(f"{err} (--torchscript)") from None
    if args.out.is_dir():
        raise UsageError(f"{args.out} is a folder; name the file to write, e.g. "
                         f"{args.out / 'model.onnx'}")
    if not args.out.parent.is_dir():
        raise UsageError(f"folder not found: {args.out.parent}; create it first")
    net, similarity, _, what = _load_for_evaluation(args.model, args.device, data_given=True)
    print(f"model: {what}", flush=True)
    if similarity is not None:
        print("note: this model scores pairs with a learned head (Koch), which is not "
              "exported: the file gives the embeddings the head compares")
    net = _with_shifts(net, args.shifts)
    path = (export_torchscript if args.torchscript else export_onnx)(net, args.out)
    kind = "TorchScript" if args.torchscript else "ONNX"
    shape = ", ".join(map(str, input_shape(net) or ()))
    print(f"saved {kind} to {path}: float32 images (N, {shape}) in [0, 1] -> "
          f"(N, {net.output_dim}) embeddings, any batch size N")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "recipes": cmd_recipes,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "classify": cmd_classify,
    "verify": cmd_verify,
    "export": cmd_export,
}


def _one_line(err: BaseException) -> str:
    text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    0 on success; 2 for a usage mistake or missing data, with a one-line message on
    stderr; 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or an argparse error already printed
        return stop.code if isinstance(stop.code, int) else 2
    try:
        return _COMMANDS[args.command](args)
    except (UsageError, OSError, ValueError, KeyError) as err:
        print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
