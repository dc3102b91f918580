"""Training: one loop for pair losses, batch losses and plain classifiers.

Taught in chapter 3, "Training a Siamese network on MNIST", which writes the loop by hand
first and then calls :func:`fit` (through the recipes, in every chapter after it).

The batch decides the step: ``(x1, x2, y)`` is a pair batch for a pair loss
(``loss(G(x1), G(x2), y)``); ``(x, labels)`` is a labelled batch for a batch loss or a
classifier (``loss(model(x), labels)``).
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .checkpoint import check_writable, loss_record, save_trained
from .precision import autocast, pick_device, use_channels_last

#: Below this spread (mean distance of a batch's embeddings from their mean, as a share of
#: their mean length) training has collapsed. Every model the book trains keeps 11% or more
#: after every epoch; batch-hard triplets on distorted Omniglot (8x the book's steps) fell
#: below 1% in their second epoch and on to 0.2%, their loss stuck at the margin.
COLLAPSE_SPREAD = 0.02


@dataclass
class History:
    """What a training run measured: loss per step and per epoch, validation, times."""

    step_loss: list[float] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Total training time in seconds (validation excluded)."""
        return sum(self.epoch_seconds)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain data, for a ``weights_only`` checkpoint."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> History:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: list(v) for k, v in d.items()})


def embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's embedding of x: ``model.embed`` for a Siamese network, else ``model(x)``."""
    return model.embed(x) if hasattr(model, "embed") else model(x)


def _step_loss(
    model: nn.Module, loss_fn: nn.Module, batch: Any, device, channels_last
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one batch, and the batch's embeddings (both sides of a pair batch)."""
    def prep(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device, non_blocking=True)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def embed_fp32(x: torch.Tensor) -> torch.Tensor:
        # the net may run in bfloat16; distances and losses are always float32
        with autocast(device):
            return embed(model, prep(x)).float()

    if len(batch) == 3:
        x1, x2, y = batch
        embeddings = embed_fp32(torch.cat([x1, x2]))
        e1, e2 = embeddings.chunk(2)
        return loss_fn(e1, e2, y.to(device)), embeddings
    if len(batch) == 2:
        x, labels = batch
        embeddings = embed_fp32(x)
        return loss_fn(embeddings, labels.to(device)), embeddings
    raise ValueError(
        f"a batch must be (x1, x2, y) for a pair loss or (x, labels) for a batch loss, "
        f"got a {type(batch).__name__} of {len(batch)} items"
    )


def _cosine(total_steps: int, warmup: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


def fit(
    model: nn.Module,
    loss_fn: nn.Module,
    batches: Callable[[int], Iterable],
    epochs: int,
    steps_per_epoch: int,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    schedule: str | None = "cosine",
    device: str | torch.device | None = None,
    validate: Callable[[nn.Module], float] | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` with ``loss_fn`` on the batches ``batches(epoch)`` yields; return the history.

    Args:
        model: an embedding net, a :class:`~siamese_lib.nets.SiameseNetwork` or a classifier.
        loss_fn: a pair loss, a batch loss or ``nn.CrossEntropyLoss``; its own parameters
            (e.g. :class:`~siamese_lib.losses.KochLoss`'s head) are trained too.
        batches: ``epoch -> iterable`` of ``steps_per_epoch`` batches, so each epoch can be
            seeded on its own (at least one, and never more: the schedule is sized by it).
        epochs: passes over ``batches``.
        steps_per_epoch: batches per epoch (for the learning-rate schedule).
        lr: peak learning rate of Adam(W).
        weight_decay: AdamW weight decay.
        schedule: "cosine" (short warm-up, then cosine decay to 0) or None (constant).
        device: where to train; by default CUDA, then MPS, then CPU.
        validate: ``model -> metric`` run after every epoch (model in eval mode).
        checkpoint: path written atomically after every epoch with
            :func:`~siamese_lib.checkpoint.save_trained` (the net, the loss with its
            trained parameters, the history and the epoch); read it back with
            :func:`~siamese_lib.checkpoint.load_trained`. Its folder is checked to be
            writable before the first step.
        progress: show a tqdm progress bar.
        desc: the progress bar's label.

    Raises:
        FloatingPointError: the loss became NaN or infinite; says at which step and why.
        ValueError: an epoch's batches were none, or more than ``steps_per_epoch``; or,
            with ``checkpoint``, a loss of your own with parameters that a checkpoint
            could not rebuild (before training).
        OSError: ``checkpoint``'s folder cannot be written (before training).
        RuntimeError: training collapsed: at the end of an epoch, the embeddings of the
            last batch all lie within :data:`COLLAPSE_SPREAD` of their length of one point
            although its images differ (checked once per epoch, on that batch only).
    """
    if checkpoint is not None:  # found now, not after the first epoch's training
        check_writable(checkpoint)
        loss_record(loss_fn)
    device = pick_device(device)
    channels_last = use_channels_last(device)
    model.to(device)
    loss_fn.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for m in (model, loss_fn) for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * steps_per_epoch
    sched = None
    if schedule == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(total, max(1, total // 50)))
    elif schedule is not None:
        raise ValueError(f"schedule must be 'cosine' or None, got {schedule!r}")

    history = History()
    bar = _progress_bar()(total=total, desc=desc, disable=not progress, leave=True)
    step = 0
    for epoch in range(epochs):
        model.train()
        loss_fn.train()
        t0, losses = time.perf_counter(), []
        last: tuple[Any, torch.Tensor] | None = None  # the epoch's last batch, its embeddings
        for batch in batches(epoch):
            if len(losses) == steps_per_epoch:
                bar.close()
                raise ValueError(
                    f"batches({epoch}) yielded more than steps_per_epoch={steps_per_epoch} "
                    f"batches in epoch {epoch + 1} (batch {steps_per_epoch + 1} arrived), so "
                    "training would run past the end of the learning-rate schedule; make it "
                    "yield steps_per_epoch batches, or pass steps_per_epoch=<its count>"
                )
            ts = time.perf_counter()
            loss, embeddings = _step_loss(model, loss_fn, batch, device, channels_last)
            value = float(loss.detach())
            if not math.isfinite(value):
                bar.close()
                raise FloatingPointError(_diagnose(value, step, epoch, batch, model, lr))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(value)
            last = (batch, embeddings.detach())
            if device.type == "cuda":  # CUDA runs the backward pass and step asynchronously
                torch.cuda.synchronize(device)
            history.step_seconds.append(time.perf_counter() - ts)
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{value:.4f}")
        if last is None:
            bar.close()
            raise ValueError(
                f"batches({epoch}) yielded no batches for epoch {epoch + 1}: an epoch's loss "
                f"needs at least one; yield steps_per_epoch={steps_per_epoch} batches per epoch"
            )
        spread = _spread(last[1])
        if spread < COLLAPSE_SPREAD and _images_differ(last[0]):
            bar.close()
            raise RuntimeError(
                f"training collapsed in epoch {epoch + 1}: the embeddings of the last batch all "
                f"lie within {spread:.2%} of their length of one point although its images "
                f"differ (loss stuck at {losses[-1]:.4g}), so the net hardly tells images apart. "
                f"With lr={lr:g} the steps may be too large: lower the learning rate (e.g. 10x) "
                "and train again; if it still collapses, make the task easier (fewer or milder "
                "augmentations, a softer loss)"
            )
        history.epoch_seconds.append(time.perf_counter() - t0)
        history.step_loss.extend(losses)
        history.epoch_loss.append(sum(losses) / len(losses))
        if validate is not None:
            model.eval()
            with torch.no_grad():
                history.val_metric.append(float(validate(model)))
            # a validator may move the model or change its layout; training goes on as set up
            model.to(device)
            if channels_last:
                model.to(memory_format=torch.channels_last)
            bar.set_postfix(epoch=epoch + 1, val=f"{history.val_metric[-1]:.4f}")
        if checkpoint is not None:
            save_trained(checkpoint, _unwrap(model), loss_fn, history=history, epoch=epoch + 1)
    bar.close()
    model.eval()
    if channels_last:
        model.to(memory_format=torch.contiguous_format)
    return history


def _progress_bar() -> type:
    """A widget bar where a notebook front end can show one (Jupyter server, Colab, VS Code),
    else a text bar: a kernel run by the book build has no front end, and a widget bar
    would leave an empty box on the page."""
    front_end = ("google.colab" in sys.modules or "JPY_SESSION_NAME" in os.environ
                 or "VSCODE_PID" in os.environ)
    if front_end:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    return tqdm


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "embedding_net", model) if not hasattr(model, "config") else model


def _spread(embeddings: torch.Tensor) -> float:
    """How far a batch's embeddings lie from their mean, as a share of their length (0 when
    they are all one point)."""
    embeddings = embeddings.float()
    length = embeddings.norm(dim=1).mean()
    if length == 0:
        return 0.0
    return float((embeddings - embeddings.mean(0)).norm(dim=1).mean() / length)


def _images_differ(batch: Any) -> bool:
    """Whether a batch holds at least two different images: a batch of one image repeated
    embeds to one point without the net having collapsed."""
    images = torch.cat([t.reshape(len(t), -1) for t in batch[:-1]])  # all but the labels
    return bool((images != images[:1]).any())


def _diagnose(value: float, step: int, epoch: int, batch: Any, model: nn.Module, lr: float) -> str:
    inputs_finite = all(torch.isfinite(t.float()).all() for t in batch if torch.is_tensor(t))
    params_finite = all(torch.isfinite(p).all() for p in model.parameters())
    if not inputs_finite:
        cause = "the batch itself holds NaN or inf values: check the data and the augmentation"
    elif not params_finite:
        cause = "the weights diverged in an earlier step: lower the learning rate"
    else:
        cause = f"the loss overflowed with finite inputs and weights: lower the learning rate ({lr})"
    return f"loss became {value} at step {step} (epoch {epoch + 1}); {cause}"
