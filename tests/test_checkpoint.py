"""Checkpoints: exact round trips, atomic writes, config checks, and refusing pickled code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from siamese_lib import checkpoint as ckpt_module
from siamese_lib.checkpoint import (
    check_writable,
    load_checkpoint,
    load_trained,
    save_checkpoint,
    save_trained,
)
from siamese_lib.losses import ContrastiveLoss, KochLoss
from siamese_lib.nets import Classifier, EmbeddingNet, SiameseNetwork
from siamese_lib.train import History


def trained_looking_net(seed: int = 0, width: int = 8) -> EmbeddingNet:
    """A tiny net with non-default weights and BatchNorm statistics."""
    torch.manual_seed(seed)
    net = EmbeddingNet(width=width, embedding_dim=4)
    net.train()
    with torch.no_grad():
        net(torch.rand(8, 1, 28, 28) * 3)  # moves the running mean / var away from 0 / 1
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return net.eval()


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    net = trained_looking_net()
    x = torch.rand(3, 1, 28, 28)
    path = save_checkpoint(tmp_path / "net.pt", net, epoch=3, history={"loss": [1.0, 0.5]})
    assert path == tmp_path / "net.pt" and path.is_file()

    loaded, extra = load_checkpoint(path)
    assert type(loaded) is EmbeddingNet and loaded.config == net.config
    assert extra == {"epoch": 3, "history": {"loss": [1.0, 0.5]}}
    torch.testing.assert_close(loaded.eval()(x), net(x), rtol=0, atol=0)
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    fresh = EmbeddingNet(width=8, embedding_dim=4).eval()
    assert not torch.allclose(fresh(x), net(x))
    same, _ = load_checkpoint(path, model=fresh)
    assert same is fresh
    torch.testing.assert_close(fresh(x), net(x), rtol=0, atol=0)


def test_classifier_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    clf = Classifier(trained_looking_net(1), num_classes=3).eval()
    x = torch.rand(2, 1, 28, 28)
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "clf.pt", clf))
    assert type(loaded) is Classifier
    torch.testing.assert_close(loaded.eval()(x), clf(x), rtol=0, atol=0)


def test_siamese_network_round_trip(tmp_path: Path) -> None:
    siamese = SiameseNetwork(trained_looking_net(2)).eval()
    x = torch.rand(2, 1, 28, 28)
    path = save_checkpoint(tmp_path / "siamese.pt", siamese)
    # rebuilt from the stored config: the embedding net
    rebuilt, _ = load_checkpoint(path)
    torch.testing.assert_close(rebuilt.eval()(x), siamese.embed(x), rtol=0, atol=0)
    # or into a Siamese network / a bare embedding net of the same config
    target = SiameseNetwork(EmbeddingNet(width=8, embedding_dim=4)).eval()
    load_checkpoint(path, model=target)
    torch.testing.assert_close(target.embed(x), siamese.embed(x), rtol=0, atol=0)
    bare = EmbeddingNet(width=8, embedding_dim=4).eval()
    load_checkpoint(path, model=bare)
    torch.testing.assert_close(bare(x), siamese.embed(x), rtol=0, atol=0)
    # and an embedding-net checkpoint loads into a Siamese network
    plain = save_checkpoint(tmp_path / "plain.pt", siamese.embedding_net)
    other = SiameseNetwork(EmbeddingNet(width=8, embedding_dim=4)).eval()
    load_checkpoint(plain, model=other)
    torch.testing.assert_close(other.embed(x), siamese.embed(x), rtol=0, atol=0)


def test_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "a.pt", trained_looking_net())
    save_checkpoint(tmp_path / "a.pt", trained_looking_net(1))  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


def test_save_creates_parent_folders(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "x" / "y" / "a.pt", trained_looking_net())
    assert path.is_file()


def test_failed_save_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = trained_looking_net(0)
    path = save_checkpoint(tmp_path / "a.pt", old)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, trained_looking_net(1))
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]
    loaded, _ = load_checkpoint(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded.eval()(x), old(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("extra", "where", "kind"),
    [
        ({"history": History(step_loss=[1.0])}, r"'history'\]", "History"),
        ({"run": {"folder": Path("runs/a")}}, r"'run'\]\['folder'\]", "PosixPath|WindowsPath"),
        ({"metrics": [0.5, np.float64(0.7)]}, r"'metrics'\]\[1\]", "float64"),
    ],
)
def test_extra_that_would_not_load_is_refused_and_old_file_kept(
    tmp_path: Path, extra: dict, where: str, kind: str
) -> None:
    old = trained_looking_net(0)
    path = save_checkpoint(tmp_path / "a.pt", old, epoch=1)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=rf"extra\[{where} .*({kind}).*plain data"):
        save_checkpoint(path, trained_looking_net(1), **extra)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]
    assert load_checkpoint(path)[1] == {"epoch": 1}


def test_plain_extra_round_trips(tmp_path: Path) -> None:
    net = trained_looking_net()
    extra = {
        "history": History(step_loss=[1.0, 0.5]).to_dict(),
        "loss_state": torch.nn.Linear(2, 1).state_dict(),  # an OrderedDict of tensors
        "recipe": {"batch": [64, 4], "lr": 2e-3, "augment": False, "note": None},
        "shape": (1, 28, 28),
        "wall_seconds": 1.5,
    }
    path = save_checkpoint(tmp_path / "a.pt", net, **extra)
    _, loaded = load_checkpoint(path)
    assert loaded.keys() == extra.keys()
    assert loaded["history"] == extra["history"] and loaded["recipe"] == extra["recipe"]
    assert loaded["shape"] == (1, 28, 28)
    torch.testing.assert_close(dict(loaded["loss_state"]), dict(extra["loss_state"]))


def test_other_config_is_refused_naming_the_difference(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "a.pt", trained_looking_net(width=8))
    other = EmbeddingNet(width=16, embedding_dim=4)
    with pytest.raises(ValueError, match="different architecture") as err:
        load_checkpoint(path, model=other)
    message = str(err.value)
    assert "width" in message and "16" in message and "8" in message
    assert "embedding_dim" not in message  # only what differs


def test_model_without_config_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no .config"):
        save_checkpoint(tmp_path / "a.pt", torch.nn.Linear(2, 2))


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated_file_is_reported(tmp_path: Path, keep: float) -> None:
    path = save_checkpoint(tmp_path / "a.pt", trained_looking_net())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_garbage_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(ValueError, match="truncated or corrupt|refused"):
        load_checkpoint(path)


def test_plain_dict_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="not a siamese_lib checkpoint"):
        load_checkpoint(path)


class Payload:
    """An arbitrary class: unpickling it would import and build it."""

    def __init__(self) -> None:
        self.value = 1


class RunsCode:
    """Unpickling this calls os.system, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_file_with_custom_class_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.pt"
    torch.save({"format": 1, "config": {}, "state_dict": {}, "extra": {"x": Payload()}}, path)
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(path)


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_file_with_code_is_refused_and_not_run(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    obj = {"format": 1, "config": {}, "state_dict": {}, "extra": {"x": RunsCode(marker)}}
    if writer == "torch.save":
        torch.save(obj, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(ValueError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "nothing.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path)  # a folder is not a checkpoint either


# ------------------------------------------------------------------------ trained models


def koch_head(seed: int = 0) -> KochLoss:
    torch.manual_seed(seed)
    koch = KochLoss(4)
    with torch.no_grad():
        koch.head.weight.normal_()  # unlike a fresh head, so a lost state shows
    return koch


def test_save_trained_round_trips_the_loss_recipe_and_history(tmp_path: Path) -> None:
    net, koch = trained_looking_net(), koch_head()
    history = History(step_loss=[1.0, 0.5], epoch_loss=[0.75], epoch_seconds=[2.0])
    recipe = {"name": "toy", "loss": "koch", "data": "mnist"}
    path = save_trained(tmp_path / "m.pt", net, koch, recipe=recipe, history=history, note="x")
    loaded = load_trained(path)
    assert isinstance(loaded.loss_fn, KochLoss) and not loaded.loss_fn.training
    e1, e2 = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(loaded.similarity(e1, e2), koch.similarity(e1, e2))
    assert loaded.recipe == recipe and History.from_dict(loaded.history) == history
    assert loaded.extra == {"note": "x"} and loaded.embedding_net is loaded.model
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded.model(x), net.eval()(x))


def test_distance_model_has_no_similarity(tmp_path: Path) -> None:
    path = save_trained(tmp_path / "m.pt", trained_looking_net(), ContrastiveLoss(2.0))
    loaded = load_trained(path)
    assert loaded.similarity is None and loaded.loss_fn.margin == 2.0
    assert load_trained(save_checkpoint(tmp_path / "plain.pt", trained_looking_net())).loss_fn is None


def test_file_of_the_old_layout_keeps_its_koch_head(tmp_path: Path) -> None:
    """Before save_trained, recipes and `train --out` stored the head as ``loss_state``."""
    net, koch = trained_looking_net(), koch_head()
    path = save_checkpoint(tmp_path / "old.pt", net, loss_state=koch.state_dict(),
                           recipe={"loss": "koch", "loss_kwargs": {}}, history={})
    loaded = load_trained(path)
    e1, e2 = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(loaded.similarity(e1, e2), koch.similarity(e1, e2))


def test_save_trained_refuses_before_writing(tmp_path: Path) -> None:
    path = save_trained(tmp_path / "m.pt", trained_looking_net(), ContrastiveLoss())
    before = path.read_bytes()

    class Mine(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

    with pytest.raises(ValueError, match="Mine has trained parameters"):
        save_trained(path, trained_looking_net(), Mine())
    with pytest.raises(ValueError, match="extra may not use the names \\['loss'\\]"):
        save_trained(path, trained_looking_net(), loss="koch")
    with pytest.raises(ValueError, match="extra\\['when'\\] is a pathlib"):
        save_trained(path, trained_looking_net(), when=tmp_path)
    assert path.read_bytes() == before


def test_damaged_loss_record_is_reported(tmp_path: Path) -> None:
    path = save_trained(tmp_path / "m.pt", trained_looking_net(), koch_head())
    ckpt = torch.load(path, weights_only=True)
    ckpt["extra"]["loss"]["name"] = "arcface"
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="its loss cannot be rebuilt: unknown loss 'arcface'"):
        load_trained(path)
    ckpt["extra"]["loss"] = {"name": "koch", "kwargs": {"embedding_dim": 9}, "state_dict":
                             koch_head().state_dict()}
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="weights that do not fit"):
        load_trained(path)


def test_check_writable(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "new" / "m.pt") == tmp_path / "new" / "m.pt"
    assert (tmp_path / "new").is_dir() and not list((tmp_path / "new").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError, match="cannot write a checkpoint in"):
        check_writable(tmp_path / "file" / "m.pt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        check_writable(tmp_path)


def test_non_finite_weights_are_refused_and_the_old_file_kept(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", trained_looking_net())
    before = path.read_bytes()
    diverged = trained_looking_net()
    with torch.no_grad():
        diverged.head.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="EmbeddingNet's head.weight holds NaN or infinite"):
        save_checkpoint(path, diverged)
    koch = koch_head()
    with torch.no_grad():
        koch.head.bias.fill_(float("inf"))
    with pytest.raises(ValueError, match="KochLoss's head.bias holds NaN or infinite"):
        save_trained(path, trained_looking_net(), koch)
    assert path.read_bytes() == before
