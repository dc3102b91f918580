"""Tests for the command line (``python -m siamese_lib``), run in-process through ``main``.

No test trains a model: evaluation uses a tiny untrained net saved as a checkpoint.
Tests that need a data set are skipped, with the reason, when it is not there.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamese_lib import cli
from siamese_lib.checkpoint import load_checkpoint, save_checkpoint
from siamese_lib.config import data_root
from siamese_lib.nets import EmbeddingNet
from siamese_lib.recipes import RECIPES

ACCURACY = re.compile(r"(\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?)% \(n=(\d+)\)")


def need(*parts: str) -> Path:
    """The path under the data root, or skip the test if it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    return path


def tiny_checkpoint(path: Path, **net_kwargs: int) -> Path:
    """A seeded, untrained, tiny EmbeddingNet saved with save_checkpoint."""
    torch.manual_seed(0)
    return save_checkpoint(path, EmbeddingNet(width=8, embedding_dim=4, **net_kwargs))


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of the last call, checked to be exactly one line and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_recipes_lists_every_name_and_description(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    for name, recipe in RECIPES.items():
        assert re.search(rf"^{re.escape(name)}\s", out, re.MULTILINE), name
        assert recipe.description in out


def test_python_dash_m_runs_the_same_main(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["siamese_lib", "recipes"])
    with pytest.raises(SystemExit) as stop:
        runpy.run_module("siamese_lib", run_name="__main__")
    assert stop.value.code == 0
    assert "mnist-contrastive" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_unknown_recipe_is_exit_2_with_the_known_names(command, capsys):
    assert cli.main([command, "no-such-recipe"]) == 2
    line = error_line(capsys)
    assert "no-such-recipe" in line
    assert "mnist-contrastive" in line  # says what would have worked


def test_missing_checkpoint_file_is_exit_2(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "model.pt"
    assert cli.main(["evaluate", str(missing)]) == 2
    line = error_line(capsys)
    assert "not found" in line and str(missing) in line


def test_corrupt_checkpoint_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert cli.main(["evaluate", str(bad)]) == 2
    assert "bad.pt" in error_line(capsys)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--episodes", "0"], "--episodes"),
        (["--episodes", "many"], "--episodes"),
        (["--way", "1"], "--way"),
        (["--shot", "-3"], "--shot"),
        (["--data", "cifar"], "--data"),
        (["--data", "./no/such/folder"], "no such folder"),
        (["--device", "warp-drive"], "--device"),
        (["--shifts", "-1"], "--shifts"),
    ],
)
def test_bad_arguments_are_exit_2_in_one_line(args, fragment, tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    assert cli.main(["evaluate", str(ckpt), *args]) == 2
    assert fragment in error_line(capsys)


def test_no_command_is_exit_2(capsys):
    assert cli.main([]) == 2
    error_line(capsys)


def test_help_is_exit_0(capsys):
    assert cli.main(["evaluate", "--help"]) == 0
    assert "--episodes" in capsys.readouterr().out


def five_way_argv(tmp_path) -> list[str]:
    """``evaluate`` of a tiny checkpoint on 50 5-way Omniglot episodes (skips without data)."""
    need("omniglot-py", "images_evaluation")
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    return ["evaluate", str(ckpt), "--data", "omniglot-evaluation", "--episodes", "50",
            "--way", "5", "--device", "cpu"]


def test_evaluate_checkpoint_prints_accuracy_with_ci(tmp_path, capsys):
    assert cli.main(five_way_argv(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "5-way 1-shot" in out
    match = ACCURACY.search(out)
    assert match, out
    mean, ci, n = float(match[1]), float(match[2]), int(match[3])
    assert 0 <= mean <= 100
    assert 0 < ci <= 100
    assert n == 50


def test_evaluate_with_test_time_shifts(tmp_path, capsys):
    argv = five_way_argv(tmp_path)
    assert cli.main(argv) == 0
    assert ACCURACY.search(capsys.readouterr().out)
    assert cli.main([*argv, "--shifts", "1"]) == 0
    out = capsys.readouterr().out
    assert "test-time shifts: up to 1 pixel(s), 9 copies per image" in out
    shifted = ACCURACY.search(out)
    assert shifted and int(shifted[3]) == 50


def test_way_larger_than_the_data_set_is_exit_2(tmp_path, capsys):
    need("MNIST", "raw")
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    assert cli.main(["evaluate", str(ckpt), "--data", "mnist-test", "--way", "11"]) == 2
    assert "10 classes" in error_line(capsys)


def test_image_size_mismatch_is_exit_2(tmp_path, capsys):
    need("MNIST", "raw")
    ckpt = tiny_checkpoint(tmp_path / "big.pt", input_size=32)
    assert cli.main(["evaluate", str(ckpt), "--data", "mnist-test", "--episodes", "5"]) == 2
    line = error_line(capsys)
    assert "1x32x32" in line and "1x28x28" in line


# ---------------------------------------------------------------- your own images


def image_folder(root: Path, classes: int = 3, per_class: int = 2, size: int = 28) -> Path:
    """root/c0/0.png ... : random grey images, different in every file (seeded)."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i}.png")
    return root


PREDICTION = re.compile(r"^(\S+)\s+(\S+)\s+D = (\d+\.\d{3})\s+runner-up (\S+), D = (\d+\.\d{3})$")


@pytest.mark.parametrize("extra", [[], ["--invert"], ["--rule", "prototype"]])
def test_classify_names_each_support_image_as_its_own_class(extra, tmp_path, capsys):
    support = image_folder(tmp_path / "support")
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    files = sorted(support.glob("c*/0.png"))
    argv = ["classify", str(ckpt), "--support", str(support), *map(str, files),
            str(support / "c2"), "--device", "cpu", *extra]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "support: " in out and "(3 classes, 6 images, read at 1x28x28)" in out
    rows = [PREDICTION.match(line) for line in out.splitlines()[2:]]
    assert all(rows) and len(rows) == 3 + 2, out  # 3 files, then the 2 images of folder c2
    for row in rows:
        true_class = Path(row[1]).parent.name
        if "prototype" not in extra:  # a support image is 0 from itself: its own class
            assert row[2] == true_class and float(row[3]) == 0.0, row[0]
        assert float(row[3]) <= float(row[5]) and row[4] != row[2]


def test_classify_says_what_is_missing(tmp_path, capsys):
    support = image_folder(tmp_path / "support")
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    (tmp_path / "empty").mkdir()
    cases = [
        ([str(tmp_path / "nope.png")], "image not found"),
        ([str(tmp_path / "empty")], "holds no image file"),
    ]
    for images, fragment in cases:
        assert cli.main(["classify", ckpt, "--support", str(support), *images]) == 2
        assert fragment in error_line(capsys)
    assert cli.main(["classify", ckpt, "--support", str(tmp_path / "nowhere"),
                     str(support / "c0")]) == 2
    assert "support folder not found" in error_line(capsys)
    assert cli.main(["classify", ckpt, str(support / "c0")]) == 2
    assert "--support" in error_line(capsys)


def test_classify_checks_the_support_folder_before_it_loads_a_model(tmp_path, capsys,
                                                                  monkeypatch):
    """A recipe not yet cached would be trained first: a support folder with no images, or
    a query that is not there, must be found before that, not after minutes of training."""
    from siamese_lib import recipes

    def must_not_load(*args, **kwargs):
        pytest.fail("classify loaded (or trained) a model before checking its files")

    monkeypatch.setattr(recipes, "load_model", must_not_load)
    good = image_folder(tmp_path / "good")
    (tmp_path / "no_classes").mkdir()
    (tmp_path / "no_classes" / "stray.png").write_bytes(b"")  # a file, not a class folder
    (tmp_path / "empty_class" / "alice").mkdir(parents=True)
    (tmp_path / "empty_class" / "alice" / "notes.txt").write_text("not an image")
    recipe = next(iter(RECIPES))
    cases = [
        (tmp_path / "no_classes", str(good / "c0"), "has no class subfolders"),
        (tmp_path / "empty_class", str(good / "c0"), "alice of support folder"),
        (good, str(tmp_path / "nope.png"), "image not found"),
    ]
    for support, query, fragment in cases:
        assert cli.main(["classify", recipe, "--support", str(support), query]) == 2
        assert fragment in error_line(capsys)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_export_writes_a_model_that_gives_the_same_embeddings(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "tiny.onnx"
    assert cli.main(["export", str(ckpt), str(out), "--device", "cpu"]) == 0
    assert f"saved ONNX to {out}: float32 images (N, 1, 28, 28)" in capsys.readouterr().out
    net = load_checkpoint(ckpt)[0]
    x = torch.rand(3, 1, 28, 28)
    got = ort.InferenceSession(str(out)).run(None, {"images": x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(got, net.eval()(x).numpy(), atol=1e-5)
    assert cli.main(["export", str(ckpt), str(tmp_path / "tiny.ts"), "--torchscript"]) == 0
    assert torch.jit.load(tmp_path / "tiny.ts")(x).shape == (3, 4)


def test_export_checks_where_it_writes_before_it_loads_a_model(tmp_path, capsys, monkeypatch):
    from siamese_lib import recipes

    monkeypatch.setattr(recipes, "load_model", lambda *a, **k: pytest.fail("loaded a model"))
    recipe = next(iter(RECIPES))
    cases = [(tmp_path / "no" / "such" / "m.onnx", "folder not found"),
             (tmp_path, "is a folder; name the file")]
    for out, fragment in cases:
        assert cli.main(["export", recipe, str(out)]) == 2
        assert fragment in error_line(capsys)
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    assert cli.main(["export", recipe, str(tmp_path / "m.onnx")]) == 2
    assert "pip install onnx" in error_line(capsys)


def test_evaluate_on_a_folder_of_your_own_images(tmp_path, capsys):
    folder = image_folder(tmp_path / "mine", classes=4, per_class=3)
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    argv = ["evaluate", ckpt, "--data", str(folder), "--episodes", "20", "--device", "cpu"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"data: {folder} (12 images, 4 classes)" in out
    assert "4-way 1-shot" in out  # every class of a set smaller than 20
    assert int(ACCURACY.search(out)[3]) == 20
    assert cli.main([*argv, "--shot", "3"]) == 2  # 3 shots + 1 query > 3 images per class
    assert "Lower n_way, k_shot or n_query" in error_line(capsys)


def test_invert_needs_a_folder(tmp_path, capsys):
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    assert cli.main(["evaluate", ckpt, "--data", "mnist-test", "--invert"]) == 2
    assert "--invert applies to a folder" in error_line(capsys)


VERIFY = re.compile(r"^D = (\d+\.\d{3}) between ", re.MULTILINE)


def test_verify_prints_the_distance_and_the_call(tmp_path, capsys):
    folder = image_folder(tmp_path / "mine")
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    a, b = str(folder / "c0" / "0.png"), str(folder / "c1" / "0.png")
    assert cli.main(["verify", ckpt, a, a, "--threshold", "0.5", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert float(VERIFY.search(out)[1]) == 0.0 and "same (D <= threshold 0.500)" in out
    assert cli.main(["verify", ckpt, a, b, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    d = float(VERIFY.search(out)[1])
    assert d > 0 and "pass --threshold T, or --calibrate FOLDER" in out
    assert cli.main(["verify", ckpt, a, b, "--threshold", f"{d / 2:.4f}"]) == 0
    assert "different (D > threshold" in capsys.readouterr().out


def test_verify_calibrates_on_every_pair_of_a_folder(tmp_path, capsys):
    folder = image_folder(tmp_path / "mine", classes=3, per_class=2)
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    a = str(folder / "c0" / "0.png")
    assert cli.main(["verify", ckpt, a, a, "--calibrate", str(folder), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    # 6 images: 15 pairs, 3 of them same-class; D = 0 is below any threshold
    assert re.search(r"^threshold \d+\.\d{3}: the equal error rate \(\d+\.\d%\) of the 15 pairs "
                     r"of .* \(3 same-class\); ROC AUC \d\.\d{3}$", out, re.MULTILINE), out
    assert "same (D <= threshold" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--threshold", "0"], "expected a number > 0"),
        (["--threshold", "1", "--calibrate", "."], "not allowed with argument"),
        (["--calibrate", "nowhere"], "calibration folder not found"),
    ],
)
def test_verify_bad_arguments_are_exit_2(args, fragment, tmp_path, capsys):
    folder = image_folder(tmp_path / "mine")
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    a = str(folder / "c0" / "0.png")
    assert cli.main(["verify", ckpt, a, a, *args]) == 2
    assert fragment in error_line(capsys)


def test_verify_says_what_is_missing(tmp_path, capsys):
    folder = image_folder(tmp_path / "mine", classes=1, per_class=2)
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    a = str(folder / "c0" / "0.png")
    assert cli.main(["verify", ckpt, a, str(tmp_path / "nope.png")]) == 2
    assert "image not found" in error_line(capsys)
    assert cli.main(["verify", ckpt, a, a, "--calibrate", str(folder)]) == 2
    assert "needs at least 2 classes and a class with at least 2 images" in error_line(capsys)


def koch_checkpoint_from_fit(path: Path) -> Path:
    """A tiny Koch model trained two steps with fit(checkpoint=path)."""
    from siamese_lib.losses import KochLoss
    from siamese_lib.pairs import pair_batches
    from siamese_lib.train import fit

    torch.manual_seed(0)
    images, labels = torch.rand(12, 1, 28, 28), torch.arange(3).repeat_interleave(4)
    fit(EmbeddingNet(width=8, embedding_dim=4), KochLoss(4),
        lambda epoch: pair_batches(images, labels, 8, 2, seed=epoch), 1, 2, device="cpu",
        progress=False, checkpoint=path)
    return path


def test_koch_checkpoint_is_scored_by_its_learned_head(tmp_path, capsys):
    folder = image_folder(tmp_path / "mine", classes=4, per_class=3)
    ckpt = str(koch_checkpoint_from_fit(tmp_path / "koch.pt"))
    argv = ["evaluate", ckpt, "--data", str(folder), "--episodes", "5", "--device", "cpu"]
    assert cli.main(argv) == 0
    assert "pairs scored by its learned Koch head" in capsys.readouterr().out
    a = str(folder / "c0" / "0.png")
    assert cli.main(["verify", ckpt, a, a, "--device", "cpu"]) == 2
    assert "learned head (Koch)" in error_line(capsys)  # not a silent Euclidean distance


def rewritten_checkpoint(path: Path, change) -> str:
    """A tiny checkpoint whose stored dict ``change`` has edited."""
    ckpt = torch.load(tiny_checkpoint(path), weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)
    return str(path)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda c: c["config"].update(embedding_dim=8), "weights that do not fit its network"),
        (lambda c: c["state_dict"].pop(next(iter(c["state_dict"]))), "weights that do not fit"),
        (lambda c: c["config"].update(colour="red"), "network config that cannot be built"),
        (lambda c: c["config"].update(name="ResNet"), "network config that cannot be built"),
    ],
)
def test_checkpoint_that_does_not_fit_its_config_is_exit_2(change, fragment, tmp_path, capsys):
    ckpt = rewritten_checkpoint(tmp_path / "edited.pt", change)
    folder = image_folder(tmp_path / "mine")
    assert cli.main(["evaluate", ckpt, "--data", str(folder), "--episodes", "5"]) == 2
    assert fragment in error_line(capsys)


def test_unwritable_out_folder_is_found_before_training(tmp_path, capsys, monkeypatch):
    from siamese_lib import recipes

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(recipes, "load_model", must_not_train)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = ["train", "mnist-contrastive", "--out", str(blocker / "model.pt"), "--no-progress"]
    assert cli.main(argv) == 2
    assert "cannot write a checkpoint in" in error_line(capsys)
    assert cli.main(["train", "mnist-contrastive", "--out", str(tmp_path)]) == 2
    assert "is a folder" in error_line(capsys)


def test_train_out_saves_the_koch_head_and_evaluate_uses_it(tmp_path, capsys, monkeypatch):
    from siamese_lib import recipes
    from siamese_lib.config import CACHE_ENV
    from siamese_lib.train import History

    def train_recipe(recipe, device=None, progress=True):
        torch.manual_seed(0)
        return recipes.TrainedModel(recipe, EmbeddingNet(width=8, embedding_dim=4),
                                    recipes._make_loss(recipe, 4), History(epoch_seconds=[0.1]))

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(recipes, "train_recipe", train_recipe)
    out = tmp_path / "koch.pt"
    assert cli.main(["train", "omniglot-koch", "--out", str(out), "--no-progress"]) == 0
    assert f"saved checkpoint to {out}" in capsys.readouterr().out
    folder = image_folder(tmp_path / "mine", classes=4, per_class=3)
    assert cli.main(["evaluate", str(out), "--data", str(folder), "--episodes", "5",
                     "--device", "cpu"]) == 0
    assert f"model: checkpoint {out}; pairs scored by its learned Koch head" in capsys.readouterr().out
    assert cli.main(["evaluate", "omniglot-koch", "--data", str(folder), "--episodes", "5",
                     "--device", "cpu"]) == 0
    assert "(from the cache); pairs scored by its learned Koch head" in capsys.readouterr().out
