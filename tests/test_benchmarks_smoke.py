"""Smoke test of ``python -m benchmarks.speed --quick``: every table and row is printed.

Checks the shape of the output only, never the speeds: timings on a test machine mean
nothing. Needs MNIST and Omniglot's evaluation set (skipped when they are missing).
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch

from siamese_lib.config import data_root
from siamese_lib.precision import BF16_ENV, CHANNELS_LAST_ENV

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import speed  # noqa: E402
from benchmarks.tables import format_table  # noqa: E402


def test_format_table_aligns_columns() -> None:
    text = format_table(["name", "pairs/s"], [["a", "1,049"], ["longer name", "9"]])
    assert text.splitlines() == [
        "name         pairs/s",
        "-----------  -------",
        "a              1,049",
        "longer name        9",
    ]
    left = format_table(["a", "b"], [["x", "yy"]], align="ll")
    assert left.splitlines()[-1] == "x  yy"
    with pytest.raises(ValueError, match="one 'l' or 'r' per column"):
        format_table(["a", "b"], [["x", "y"]], align="l")


def need(*parts: str) -> Path:
    """The path under the data root, or skip the test if it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    return path


def row(out: str, label: str) -> str:
    """The one output line that starts with ``label``."""
    lines = [line for line in out.splitlines() if line.startswith(label)]
    assert len(lines) == 1, f"expected one line starting with {label!r}:\n{out}"
    return lines[0]


def test_quick_run_prints_every_table(capsys, monkeypatch):
    need("MNIST", "raw")
    need("omniglot-py", "images_evaluation")
    monkeypatch.delenv(CHANNELS_LAST_ENV, raising=False)
    monkeypatch.delenv(BF16_ENV, raising=False)
    threads = torch.get_num_threads()

    assert speed.main(["--quick", "--seed", "1"]) == 0
    out = capsys.readouterr().out

    # a. training throughput: one row per pipeline, with a number in every column
    assert "a. Training throughput" in out
    for label in ("seed-style Dataset + DataLoader", "siamese_lib pair_batches",
                  "seed's loop: its DataLoader, 2 forward calls, float32, contiguous"):
        cells = row(out, label)[len(label):].split()
        assert len(cells) == 6 and cells[-1].endswith("%"), cells
    assert row(out, "speed-up of the whole siamese_lib pipeline")
    assert row(out, "speed-up of pair_batches over the seed-style DataLoader")
    assert row(out, "data share of a siamese_lib step:")

    # b. evaluation: three methods, the same answers, and the one-query line
    assert "b. One-shot evaluation" in out
    accuracy = re.compile(r"\d+\.\d ± \d+\.\d% \(n=\d+\)")
    assert accuracy.search(row(out, "embed once (embed_images + one_shot_accuracy)"))
    assert row(out, "twin network on every pair (SiameseNetwork.distance; timed on 4 episodes")
    assert row(out, "one call per pair, the article's test loop (timed on 2 episodes")
    assert row(out, "speed-up of embed-once:")
    agree = re.search(r"same accuracy on the 4 timed episodes: yes .*agree on (\d+)/(\d+)", out)
    assert agree and agree[1] == agree[2] == str(4 * speed.QUICK.n_way), out
    assert row(out, "with ONE query per episode instead")

    # c. defaults: channels_last on/off x threads 1/2, bfloat16 on/off, three batch sizes,
    # plain PyTorch against the defaults, before/after
    assert "c. Defaults by measurement" in out
    configs = re.findall(r"^(on|off)\s+(\d+)\s+(on|off)\s+(\d+)\s+[\d,]+\s+[\d.]+", out,
                         re.MULTILINE)
    assert {(cl, t) for cl, t, _, _ in configs} >= {("on", "1"), ("on", "2"), ("off", "1"),
                                                    ("off", "2")}
    assert {bf for _, _, bf, _ in configs} == {"on", "off"}
    assert len({b for _, _, _, b in configs}) == len(speed.QUICK.default_batches)
    assert "<- library default" in out
    assert row(out, "plain PyTorch (channels_last off")
    assert row(out, "before (library default")
    assert row(out, "after  (fastest measured")

    # in-process callers get their settings back
    assert torch.get_num_threads() == threads
    assert CHANNELS_LAST_ENV not in os.environ
    assert BF16_ENV not in os.environ


def test_bad_section_is_a_usage_error(capsys):
    assert speed.main(["--sections", "training,nonsense"]) == 2
    assert "--sections" in capsys.readouterr().err


def test_accuracy_benchmark_long_recipes_differ_from_the_book():
    from siamese_lib.published import MEASURES
    from siamese_lib.recipes import BOOK_RECIPES, at_budget

    for m in MEASURES:
        book, long = BOOK_RECIPES[m.recipe], at_budget(BOOK_RECIPES[m.recipe], "long", 4)
        assert long.steps_per_epoch == 4 * book.steps_per_epoch
        assert long.key() != book.key() and long.name != book.name


def test_compute_quick_run_prints_the_step_rate_and_its_share_of_the_peak(capsys):
    from benchmarks import compute

    assert compute.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP per step" in out
    for precision in ("float32", "bfloat16"):
        cells = row(out, precision).split()
        assert cells[4].endswith("%"), out  # share of the matmul peak
        share, in_convolutions, ceiling, in_norm, in_pooling = (
            int(c.rstrip("%")) for c in cells[4:9])
        assert 0 < in_convolutions <= 100 and ceiling >= share  # the rest free: never slower
        assert 0 < in_norm and 0 < in_pooling and in_convolutions + in_norm + in_pooling <= 101
    assert re.search(r"its convolutions take \d+% of the step: were the rest free, it would "
                     r"reach \d+% of its precision's peak, .*; batch norm takes \d+% and "
                     r"pooling \d+%", out), out
    assert re.search(r"library default \((float32|bfloat16)\): \d+ GFLOP/s = \d+% of the "
                     r"bfloat16 matmul peak \(target >= 40%: (met|NOT met)\)", out), out


def test_compute_counts_the_training_steps_flops():
    from benchmarks import compute

    sizes = compute.Sizes(images=8, classes=4)
    small = compute.TrainingStep(sizes, torch.device("cpu")).flops()
    double = compute.TrainingStep(compute.Sizes(images=16, classes=4), torch.device("cpu")).flops()
    # convolutions and matrix products scale with the batch; the loss's pairs barely count
    assert 1.9 < double / small < 2.1


def test_compute_measures_the_peak_with_the_flops_torch_counts():
    from torch.utils.flop_counter import FlopCounterMode

    from benchmarks import compute

    product, flops = compute.matrix_product(torch.bfloat16, 64, torch.device("cpu"))
    with FlopCounterMode(display=False) as counter:
        product()
    assert counter.get_total_flops() == flops


@pytest.mark.slow
def test_levers_prints_one_row_per_lever(capsys, monkeypatch, tmp_path):
    """``python -m benchmarks.levers`` on tiny untrained nets: the table's shape, not accuracy."""
    need("omniglot-official-small")
    need("MNIST", "raw")
    need("omniglot-py", "images_evaluation")
    from types import SimpleNamespace

    from benchmarks import accuracy, levers
    from siamese_lib.nets import EmbeddingNet

    def tiny_model(recipe):
        torch.manual_seed(len(recipe.name))
        size = {k: v for k, v in recipe.net.items() if k in ("input_size", "stem_stride")}
        net = EmbeddingNet(width=4, embedding_dim=4, **size).eval()
        return SimpleNamespace(recipe=recipe, embedding_net=net, from_cache=True,
                               history=SimpleNamespace(seconds=1.0))

    monkeypatch.setattr(accuracy, "load_model", tiny_model)
    saved = tmp_path / "levers.json"
    assert levers.main(["--budget", "book", "--episodes", "5", "--seeds", "1", "--shifts", "1",
                        "--adapted-episodes", "2", "--adapt-steps", "1", "--training-seeds", "2",
                        "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    accuracy = r"\d+\.\d\d ± \d+\.\d\d"
    every_test = rf"{accuracy}\s+\d+\.\d\s+.*±.*±.*\s"
    lake_only = rf"{accuracy}\s+\d+\.\d\s+—\s+—\s+"
    expected = [("none ", every_test, "1"), ("test-time shifts ±1 ", every_test, "1"),
                ("ensemble of 3 losses' models ", every_test, "3"),
                ("ensemble of 3 losses' models, shifts ±1 ", every_test, "3"),
                ("none, on 2 episodes ", every_test, "1"),
                ("adapted (1 steps), same episodes ", every_test, "1"),
                ("56 px images, stride-2 stem ", every_test, "1"),
                ("56 px images, stride-2 stem, shifts ±1 ", lake_only, "1"),
                ("batches of 16 classes per alphabet ", every_test, "1"),
                ("56 px and 16 classes per alphabet, shifts ±1 ", lake_only, "1"),
                ("ensemble of 3 shorter models, same total steps ", every_test, "3"),
                ("ensemble of 3 shorter models, same total steps, shifts ±1 ", lake_only, "3"),
                ("none, training seed 1 ", every_test, "1"),
                ("test-time shifts ±1, training seed 1 ", lake_only, "1")]
    for label, cells_re, train_s in expected:
        cells = row(out, label)
        assert re.search(rf"{cells_re}{train_s}\s+(yes|no)$", cells), (label, cells)
    record = json.loads(saved.read_text())
    assert [r["lever"] for r in record["rows"]][:2] == ["none", "test-time shifts ±1"]
    assert len(record["rows"]) == 18 and record["budget"] == "book"
    # the best training lever, whichever it is, trained again with seed 1
    again = [r["lever"] for r in record["rows"][-2:]]
    assert again[0].endswith(", training seed 1") and not again[0].startswith("none")
    assert again[1] == again[0].replace(", training seed 1", ", shifts ±1, training seed 1")
    shifted = next(r for r in record["rows"] if r["lever"] == "56 px images, stride-2 stem, shifts ±1")
    assert list(shifted["tests"]) == ["lake-runs"] and shifted["tests"]["lake-runs"]["n"] == 400
    assert "met (95.5%, <= 60 s)" in out
