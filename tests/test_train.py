"""fit(): a short real run learns, is reproducible, fails loudly on NaN, and checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from siamese_lib.checkpoint import load_checkpoint
from siamese_lib.config import seed_everything
from siamese_lib.losses import BatchContrastiveLoss, ContrastiveLoss, KochLoss
from siamese_lib.nets import Classifier, EmbeddingNet, SiameseNetwork
from siamese_lib.pairs import class_balanced_batches, pair_batches
from siamese_lib.train import History, fit

SIZE = 16


def separable_data(n_per_class: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of constant images (0.2 and 0.8) plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(2).repeat_interleave(n_per_class)
    level = torch.tensor([0.2, 0.8])[labels][:, None, None, None]
    noise = 0.05 * torch.randn(len(labels), 1, SIZE, SIZE, generator=g)
    return (level + noise).clamp(0, 1), labels


def tiny(seed: int = 0) -> EmbeddingNet:
    seed_everything(seed)
    return EmbeddingNet(input_size=SIZE, width=8, embedding_dim=4)


def pair_source(images, labels, steps: int, batch: int = 16):
    return lambda epoch: pair_batches(images, labels, batch, steps, seed=epoch)


def run_pairs(model: nn.Module, loss_fn: nn.Module, epochs: int = 3, steps: int = 10, **kw) -> History:
    images, labels = separable_data()
    return fit(
        model, loss_fn, pair_source(images, labels, steps), epochs, steps,
        lr=kw.pop("lr", 1e-2), device="cpu", progress=False, **kw,
    )


def test_short_run_loss_falls() -> None:
    history = run_pairs(tiny(), ContrastiveLoss(1.0))
    assert len(history.step_loss) == 30 and len(history.epoch_loss) == 3
    assert len(history.epoch_seconds) == 3 and len(history.step_seconds) == 30
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    # epoch means are the means of their steps
    assert history.epoch_loss[0] == pytest.approx(sum(history.step_loss[:10]) / 10)
    assert history.seconds == pytest.approx(sum(history.epoch_seconds))


def test_same_seed_same_history() -> None:
    a = run_pairs(tiny(0), ContrastiveLoss(1.0), epochs=2, steps=5)
    b = run_pairs(tiny(0), ContrastiveLoss(1.0), epochs=2, steps=5)
    c = run_pairs(tiny(1), ContrastiveLoss(1.0), epochs=2, steps=5)
    assert a.step_loss == b.step_loss
    assert a.step_loss != c.step_loss


def test_siamese_network_trains_and_checkpoints(tmp_path: Path) -> None:
    model = SiameseNetwork(tiny())
    path = tmp_path / "siamese.pt"
    history = run_pairs(model, ContrastiveLoss(1.0), epochs=2, steps=5, checkpoint=path)
    loaded, extra = load_checkpoint(path)
    assert extra["epoch"] == 2 and extra["history"] == history.to_dict()
    x = torch.rand(3, 1, SIZE, SIZE)
    torch.testing.assert_close(loaded.eval()(x), model.eval().embed(x))


def test_checkpoint_argument_writes_loadable_file(tmp_path: Path) -> None:
    net = tiny()
    path = tmp_path / "run" / "net.pt"
    history = run_pairs(net, ContrastiveLoss(1.0), epochs=2, steps=4, checkpoint=path)
    loaded, extra = load_checkpoint(path)
    assert extra["epoch"] == 2
    assert History.from_dict(extra["history"]) == history
    x = torch.rand(3, 1, SIZE, SIZE)
    torch.testing.assert_close(loaded.eval()(x), net.eval()(x))
    assert [p.name for p in path.parent.iterdir()] == ["net.pt"]


def test_labelled_batches_with_batch_loss() -> None:
    images, labels = separable_data()
    net = tiny()
    history = fit(
        net, BatchContrastiveLoss(1.0),
        lambda epoch: class_balanced_batches(images, labels, 2, 6, n_batches=8, seed=epoch),
        epochs=2, steps_per_epoch=8, lr=1e-2, device="cpu", progress=False,
    )
    assert len(history.step_loss) == 16
    assert all(v == v and v >= 0 for v in history.step_loss)
    assert history.epoch_loss[-1] < history.epoch_loss[0]


def test_labelled_batches_with_classifier() -> None:
    images, labels = separable_data()
    model = Classifier(tiny(), num_classes=2)
    history = fit(
        model, nn.CrossEntropyLoss(),
        lambda epoch: class_balanced_batches(images, labels, 2, 8, n_batches=6, seed=epoch),
        epochs=2, steps_per_epoch=6, lr=1e-2, device="cpu", progress=False,
    )
    assert history.epoch_loss[-1] < history.epoch_loss[0]
    assert not model.training  # fit leaves the model in eval mode


def test_validate_runs_after_every_epoch_in_eval_mode() -> None:
    modes = []

    def validate(model: nn.Module) -> float:
        modes.append(model.training)
        return 0.25 * len(modes)

    history = run_pairs(tiny(), ContrastiveLoss(1.0), epochs=3, steps=2, validate=validate)
    assert history.val_metric == [0.25, 0.5, 0.75]
    assert modes == [False, False, False]


def test_koch_loss_head_is_trained() -> None:
    loss_fn = KochLoss(embedding_dim=4)
    before = [p.detach().clone() for p in loss_fn.parameters()]
    history = run_pairs(tiny(), loss_fn, epochs=1, steps=5)
    assert len(history.step_loss) == 5
    for old, new in zip(before, loss_fn.parameters(), strict=True):
        assert not torch.equal(old, new.detach())


def test_nan_in_data_raises_with_step_and_cause() -> None:
    images, labels = separable_data()
    images[:] = float("nan")
    with pytest.raises(FloatingPointError, match=r"at step 0 \(epoch 1\).*batch itself holds NaN"):
        fit(tiny(), ContrastiveLoss(1.0), pair_source(images, labels, 5), 1, 5,
            device="cpu", progress=False)


def test_nan_at_a_later_step_names_that_step() -> None:
    images, labels = separable_data()

    def batches(epoch: int):
        for i, (x1, x2, y) in enumerate(pair_batches(images, labels, 8, 5, seed=epoch)):
            if epoch == 1 and i == 2:
                x1 = x1.clone()
                x1[0, 0, 0, 0] = float("nan")
            yield x1, x2, y

    with pytest.raises(FloatingPointError, match=r"at step 7 \(epoch 2\).*NaN or inf values"):
        fit(tiny(), ContrastiveLoss(1.0), batches, 2, 5, device="cpu", progress=False)


def test_huge_learning_rate_raises_with_advice() -> None:
    with pytest.raises(FloatingPointError, match=r"at step [1-9]\d* .*lower the learning rate") as err:
        run_pairs(tiny(), ContrastiveLoss(1.0), epochs=2, steps=5, lr=1e30, schedule=None)
    assert "became" in str(err.value) and "batch itself" not in str(err.value)


def test_huge_learning_rate_that_collapses_the_embedding_raises() -> None:
    # lr=1e10 leaves every embedding identical with a finite, stuck loss: no NaN to catch
    with pytest.raises(RuntimeError, match=r"training collapsed in epoch 1.*within 0\.00% .*one "
                       r"point.*lr=1e\+10.*lower the learning rate"):
        run_pairs(tiny(), ContrastiveLoss(1.0), epochs=2, steps=5, lr=1e10, schedule=None)


class AroundOnePoint(nn.Module):
    """A net's embeddings shrunk by ``scale`` around a fixed point of length 2."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.net, self.scale = tiny(), scale
        self.register_buffer("point", torch.ones(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point + self.scale * self.net(x)


@pytest.mark.parametrize("scale, collapsed", [(1e-3, True), (1.0, False)])
def test_embeddings_shrunk_around_one_point_are_a_collapse(scale: float, collapsed: bool) -> None:
    # what batch-hard triplets did on distorted Omniglot: distinct embeddings, but so close
    # together (0.2% of their length) that the loss sat at its margin
    def train() -> History:
        return run_pairs(AroundOnePoint(scale), ContrastiveLoss(1.0), epochs=1, steps=2, lr=0.0)

    if collapsed:
        with pytest.raises(RuntimeError, match=r"collapsed in epoch 1.*within 0\.\d\d% of their "
                           r"length.*fewer or milder augmentations"):
            train()
    else:
        assert len(train().epoch_loss) == 1


def test_identical_inputs_are_not_a_collapse() -> None:
    # a batch of one image repeated embeds to one point without the net having collapsed
    x = torch.rand(1, 1, SIZE, SIZE).expand(4, 1, SIZE, SIZE)
    batch = (x, torch.tensor([0, 0, 1, 1]))
    history = fit(tiny(), BatchContrastiveLoss(1.0), lambda epoch: [batch], 1, 1,
                  device="cpu", progress=False)
    assert len(history.step_loss) == 1


def test_epoch_without_batches_raises() -> None:
    images, labels = separable_data()

    def batches(epoch: int):
        return pair_batches(images, labels, 8, 0 if epoch == 1 else 3, seed=epoch)

    with pytest.raises(ValueError, match=r"no batches for epoch 2.*steps_per_epoch=3"):
        fit(tiny(), ContrastiveLoss(1.0), batches, 2, 3, device="cpu", progress=False)


def test_more_batches_than_steps_per_epoch_raises() -> None:
    images, labels = separable_data()
    source = pair_source(images, labels, steps=6)
    with pytest.raises(ValueError, match=r"more than steps_per_epoch=4 batches.*epoch 1"):
        fit(tiny(), ContrastiveLoss(1.0), source, 2, 4, device="cpu", progress=False)


@pytest.mark.parametrize("n_items", [1, 4])
def test_bad_batch_shape(n_items: int) -> None:
    x = torch.rand(4, 1, SIZE, SIZE)
    bad = tuple([x] * n_items)
    with pytest.raises(ValueError, match=rf"must be \(x1, x2, y\) .* or \(x, labels\).*{n_items} items"):
        fit(tiny(), ContrastiveLoss(), lambda epoch: [bad], 1, 1, device="cpu", progress=False)


def test_bad_schedule() -> None:
    with pytest.raises(ValueError, match="schedule must be 'cosine' or None"):
        fit(tiny(), ContrastiveLoss(), lambda epoch: [], 1, 1, schedule="step",
            device="cpu", progress=False)


def test_history_dict_round_trip() -> None:
    h = History(step_loss=[1.0, 2.0], epoch_loss=[1.5], val_metric=[0.5])
    assert History.from_dict(h.to_dict()) == h


def test_training_stays_channels_last_after_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAMESE_LIB_CHANNELS_LAST", "1")
    images, labels = separable_data()
    model = tiny()
    conv = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)
    layouts = []

    def batches(epoch: int):
        layouts.append(conv.is_contiguous(memory_format=torch.channels_last)
                       and not conv.is_contiguous())
        return pair_batches(images, labels, 16, 2, seed=epoch)

    def validate(m: nn.Module) -> float:
        m.to(memory_format=torch.contiguous_format)  # a validator that changes the layout
        return 0.0

    fit(model, ContrastiveLoss(1.0), batches, 3, 2, device="cpu", progress=False,
        validate=validate)
    assert layouts == [True, True, True]


def test_bfloat16_training_is_reproducible_and_learns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAMESE_LIB_BF16", "1")
    first = run_pairs(tiny(), ContrastiveLoss(1.0))
    second = run_pairs(tiny(), ContrastiveLoss(1.0))
    assert first.step_loss == second.step_loss
    assert first.epoch_loss[-1] < first.epoch_loss[0]


def test_koch_checkpoint_keeps_the_learned_head(tmp_path: Path) -> None:
    """fit(checkpoint=) saved the net alone: a Koch model came back without its head, and
    the CLI then scored it by Euclidean distance."""
    from siamese_lib.checkpoint import load_trained

    net, koch, path = tiny(), KochLoss(4), tmp_path / "koch.pt"
    run_pairs(net, koch, epochs=1, steps=4, checkpoint=path)
    loaded = load_trained(path)
    assert loaded.similarity is not None, "a Koch model must be scored by its learned head"
    e1, e2 = torch.randn(5, 4), torch.randn(5, 4)
    torch.testing.assert_close(loaded.similarity(e1, e2), koch.cpu().similarity(e1, e2))
    assert loaded.extra["epoch"] == 1 and len(loaded.history["step_loss"]) == 4


def test_unwritable_checkpoint_folder_is_found_before_training(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    drawn: list[int] = []

    def batches(epoch: int):
        drawn.append(epoch)
        return pair_source(*separable_data(), 2)(epoch)

    with pytest.raises(OSError) as raised:
        fit(tiny(), ContrastiveLoss(1.0), batches, 1, 2, device="cpu", progress=False,
            checkpoint=blocker / "net.pt")
    assert drawn == [], "the folder must be checked before the first epoch"
    assert "cannot write a checkpoint in" in str(raised.value)


def test_loss_of_your_own_with_parameters_is_refused_before_training(tmp_path: Path) -> None:
    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))

        def forward(self, e1, e2, y):
            return self.scale * ContrastiveLoss(1.0)(e1, e2, y)

    with pytest.raises(ValueError, match="Scaled has trained parameters"):
        run_pairs(tiny(), Scaled(), epochs=1, steps=2, checkpoint=tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
