"""Figures the book draws: loss terms, loss curves, pairs, distances, ROC, episodes.

Not taught: every chapter calls these to draw what it teaches.

matplotlib is imported inside each function, so ``import siamese_lib`` works without
it. Every function draws on an ``ax`` (or returns a new figure) and returns it, so the
notebooks can compose them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch

from .evaluate import ROC, accuracy_at_threshold
from .losses import contrastive_loss
from .pairs import to_float

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .train import History

SIMILAR_COLOR, DISSIMILAR_COLOR = "tab:blue", "tab:red"
#: A loss curve spanning more than this ratio (largest to smallest step loss) gets a log axis.
LOG_SCALE_RATIO = 30.0
#: The widest figure in inches that the book's text column shows near its drawn size. At
#: 100 dpi 10 in is about 1,000 px, shown in a 688 px column at x0.69, so 8-pt titles stay
#: readable. Image grids wider than this draw smaller cells instead.
MAX_FIGURE_WIDTH = 10.0


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5, 3.5)) -> Axes:
    import matplotlib.pyplot as plt

    return ax if ax is not None else plt.subplots(figsize=figsize, layout="constrained")[1]


def plot_contrastive_terms(margin: float, ax: Axes | None = None, d_max: float = 4.0) -> Axes:
    """The two terms of the contrastive loss against D: 1/2 D^2 (Y=0) and 1/2 max(0, m-D)^2 (Y=1)."""
    ax = _axes(ax)
    d = torch.linspace(0, d_max, 200)
    similar, dissimilar = (contrastive_loss(d**2, torch.full_like(d, y), margin) for y in (0, 1))
    ax.plot(d, similar, color=SIMILAR_COLOR, label="similar pair (Y=0): ½·D²")
    ax.plot(d, dissimilar, color=DISSIMILAR_COLOR,
            label="dissimilar pair (Y=1): ½·max(0, m−D)²")
    ax.axvline(margin, color="grey", ls="--", lw=1, label=f"margin m = {margin:.2f}")
    ax.set(xlabel="distance D between the embeddings", ylabel="loss", ylim=(0, 0.5 * d_max**2),
           title="Contrastive loss terms")
    ax.legend(loc="upper left", fontsize=8)
    return ax


def _smooth(values: Sequence[float], window: int) -> torch.Tensor:
    x = torch.tensor(values, dtype=torch.float64)
    if window <= 1 or len(x) < window:
        return x
    kernel = torch.ones(1, 1, window, dtype=torch.float64) / window
    return torch.nn.functional.conv1d(x[None, None], kernel)[0, 0]


def plot_loss_curves(
    histories: History | Mapping[str, History], ax: Axes | None = None, smooth: int = 20
) -> Axes:
    """Training loss per step (smoothed) and per epoch, for one run or several (a dict by name)."""
    ax = _axes(ax)
    if not isinstance(histories, Mapping):
        histories = {"training loss": histories}
    for i, (name, h) in enumerate(histories.items()):
        color = f"C{i}"
        y = _smooth(h.step_loss, smooth)
        x = torch.arange(len(y)) + (len(h.step_loss) - len(y)) / 2 + 1
        ax.plot(x, y, color=color, lw=1, label=f"{name} (per step, smoothed)")
        steps_per_epoch = len(h.step_loss) / max(1, len(h.epoch_loss))
        epochs_end = [(e + 1) * steps_per_epoch for e in range(len(h.epoch_loss))]
        ax.plot(epochs_end, h.epoch_loss, "o", color=color, ms=4, label=f"{name} (epoch mean)")
    ax.set(xlabel="step", ylabel="loss", title="Training loss")
    losses = [v for h in histories.values() for v in h.step_loss if v > 0]
    if losses and max(losses) / min(losses) > LOG_SCALE_RATIO:  # falls by orders of magnitude
        ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)")
    ax.legend(fontsize=8)
    return ax


def plot_validation(
    histories: History | Mapping[str, History], ax: Axes | None = None, label: str = "validation"
) -> Axes:
    """The validation metric (an accuracy, shown in %) after each epoch."""
    from matplotlib.ticker import MaxNLocator

    ax = _axes(ax)
    single = not isinstance(histories, Mapping)
    if single:
        histories = {label: histories}
    for i, (name, h) in enumerate(histories.items()):
        values = [100 * v for v in h.val_metric]
        ax.plot(range(1, len(values) + 1), values, "o-", color=f"C{i}", label=name)
    ax.set(xlabel="epoch", ylabel=f"{label} (%)" if single else "validation accuracy (%)",
           title="Validation after each epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    if not single:
        ax.legend(fontsize=8)
    return ax


def _image_grid(n: int, ncols: int, cell: tuple[float, float]) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` image cells, at most ``ncols`` per row, each ``cell`` inches
    (width, height), shrunk to fit :data:`MAX_FIGURE_WIDTH`; cells past ``n`` are hidden.
    Returns the figure and the ``n`` axes, ticks off (their spines stay, for frames)."""
    import matplotlib.pyplot as plt

    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    fit = min(1.0, MAX_FIGURE_WIDTH / (cell[0] * ncols))
    cell = (cell[0] * fit, cell[1] * fit)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell[0] * ncols, cell[1] * nrows),
                             squeeze=False, layout="constrained")
    axes = list(axes.flat)
    for ax in axes[n:]:
        ax.axis("off")
    for ax in axes[:n]:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes[:n]


def show_images(
    images: torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8,
    scale: float = 1.2, cmap: str = "gray",
) -> Figure:
    """A grid of images (N, C, H, W), uint8 or float, with optional titles."""
    fig, axes = _image_grid(len(images), ncols, (scale, scale + 0.2))
    for i, ax in enumerate(axes):
        ax.axis("off")
        ax.imshow(to_float(images[i]).permute(1, 2, 0).squeeze(-1), cmap=cmap)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


def show_pairs(
    x1: torch.Tensor, x2: torch.Tensor, d: torch.Tensor | None = None,
    y: torch.Tensor | None = None, n: int = 8, ncols: int = 4,
) -> Figure:
    """Pairs side by side with their dissimilarity D and their label Y, each if given (as in the article).

    At most ``ncols`` pairs per row, so that the figure fits a page's text column at a
    size where its titles can be read.
    """
    n = min(n, len(x1))
    fig, axes = _image_grid(n, ncols, (1.8, 1.45))
    for i, ax in enumerate(axes):
        ax.axis("off")
        pair = torch.cat([to_float(x1[i]), to_float(x2[i])], dim=-1)
        ax.imshow(pair.permute(1, 2, 0).squeeze(-1), cmap="gray")
        parts = [] if d is None else [f"D={float(d[i]):.2f}"]
        if y is not None:
            parts.append("similar" if int(y[i]) == 0 else "dissimilar")
        ax.set_title(" ".join(parts), fontsize=9)
    return fig


def plot_distance_histograms(
    d: torch.Tensor, y: torch.Tensor, threshold: float | None = None, ax: Axes | None = None,
    bins: int = 40,
) -> Axes:
    """Histograms of D for similar (Y=0) and dissimilar (Y=1) pairs, with the threshold."""
    ax = _axes(ax)
    edges = torch.linspace(0, float(d.max()) * 1.02, bins + 1)
    ax.hist(d[y == 0], bins=edges, alpha=0.6, color=SIMILAR_COLOR, label="similar (Y=0)")
    ax.hist(d[y == 1], bins=edges, alpha=0.6, color=DISSIMILAR_COLOR, label="dissimilar (Y=1)")
    if threshold is not None:
        ax.axvline(threshold, color="black", lw=1.5, label=f"threshold {threshold:.2f}")
    ax.set(xlabel="distance D", ylabel="pairs", title="Distances of test pairs")
    ax.legend(fontsize=8)
    return ax


def plot_confusion(
    d: torch.Tensor, y: torch.Tensor, threshold: float, ax: Axes | None = None
) -> Axes:
    """The 2x2 confusion matrix of "similar if D <= threshold"."""
    ax = _axes(ax, (3.2, 3))
    called_similar = d <= threshold
    similar = y == 0
    m = torch.tensor([[int((similar & called_similar).sum()), int((similar & ~called_similar).sum())],
                      [int((~similar & called_similar).sum()), int((~similar & ~called_similar).sum())]])
    ax.imshow(m, cmap="Blues")
    for (i, j), v in zip([(0, 0), (0, 1), (1, 0), (1, 1)], m.flatten().tolist(), strict=True):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=11)
    ax.set_xticks([0, 1], ["called similar", "called dissimilar"], fontsize=8)
    ax.set_yticks([0, 1], ["similar", "dissimilar"], fontsize=8)
    acc = accuracy_at_threshold(d, y, threshold)
    ax.set_title(f"accuracy {100 * acc:.1f}%", fontsize=10)
    return ax


def plot_roc(roc: ROC, threshold: float | None = None, ax: Axes | None = None) -> Axes:
    """The ROC curve ("similar" positive), with the operating point of a threshold.

    The false-positive axis is logarithmic: a good verifier's curve hugs the top-left
    corner on a linear axis, and the low false-positive rates that matter in practice
    (one wrong "same" in a hundred, in a thousand) are where curves differ.
    """
    ax = _axes(ax, (3.5, 3.5))
    ax.plot(roc.fpr, roc.tpr, color="C0", label=f"AUC = {roc.auc:.3f}")
    # the log axis starts at half the smallest false-positive rate the pairs can show
    seen = roc.fpr[roc.fpr > 0]
    floor = float(seen.min()) / 2 if len(seen) else 1e-3
    ax.plot([floor, 1], [floor, 1], color="grey", ls=":", lw=1)
    if threshold is not None:
        k = int(torch.searchsorted(roc.thresholds.contiguous(), torch.tensor(threshold,
                dtype=roc.thresholds.dtype), right=True)) - 1
        k = max(0, min(k, len(roc.fpr) - 1))
        ax.plot(roc.fpr[k], roc.tpr[k], "o", color="black", label=f"threshold {threshold:.2f}")
    ax.set_xscale("log")
    ax.set(xlabel="false positive rate (log scale)", ylabel="true positive rate",
           title="ROC curve", xlim=(floor, 1))
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_embedding_2d(
    embeddings: torch.Tensor, labels: torch.Tensor, ax: Axes | None = None, max_points: int = 3000
) -> Axes:
    """Embeddings projected on their first two principal components, coloured by class."""
    ax = _axes(ax, (5, 4.5))
    emb, labels = embeddings[:max_points].double(), labels[:max_points]
    centred = emb - emb.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = centred @ v[:2].T
    scatter = ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap="tab10", s=4)
    ax.legend(*scatter.legend_elements(), fontsize=7, title="class", loc="best", markerscale=0.8)
    ax.set(title="Embeddings (first two principal components)", xticks=[], yticks=[])
    return ax


def show_episode(
    support: torch.Tensor, query: torch.Tensor, scores: torch.Tensor, answer: int | None = None,
    ncols: int = 7,
) -> Figure:
    """One N-way 1-shot trial: the query, then the N support images with their distance/score.

    The model's choice (highest score) is framed in green if right, red if wrong. At most
    ``ncols`` images per row, the query first, so that a 20-way trial fits a text column.
    """
    fig, axes = _image_grid(len(support) + 1, ncols, (1.05, 1.25))
    axes[0].imshow(to_float(query).squeeze(0), cmap="gray")
    axes[0].set_title("query", fontsize=9, fontweight="bold")
    choice = int(scores.argmax())
    for i, ax in enumerate(axes[1:]):
        ax.imshow(to_float(support[i]).squeeze(0), cmap="gray")
        ax.set_title(f"{float(scores[i]):.2f}", fontsize=9)
        if i == choice:
            right = answer is None or choice == answer
            for spine in ax.spines.values():
                spine.set(color="green" if right else "red", lw=3)
    return fig
