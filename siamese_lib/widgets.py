"""Interactive explorers: the margin of the contrastive loss, the decision threshold.

Taught in chapter 2 (the margin) and chapter 4 (the threshold).

Each explorer is one ``draw(axes, value)`` function shown in one of two modes:

- ``"live"``: an ipywidgets slider that redraws as you move it; it needs a running
  kernel (Jupyter, Colab).
- ``"static"``: every slider position drawn in advance into a self-contained HTML slider
  (a range input, its value beside it, and the frames as PNG images) that works in a
  static page such as the rendered book, with no kernel and no network.

The default, ``"auto"``, is static when the environment variable ``SIAMESE_LIB_WIDGETS``
is ``static`` (the book build sets it) and live otherwise, so a chapter calls each
explorer once and the reader gets the right kind wherever the notebook runs.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .evaluate import accuracy_at_threshold, best_threshold, roc_curve

WIDGETS_ENV = "SIAMESE_LIB_WIDGETS"
MODES = ("auto", "live", "static")

Draw = Callable[[dict[str, Any], float], None]


def resolve_mode(mode: str) -> str:
    """``"live"`` or ``"static"``: ``mode`` itself, or what ``"auto"`` means here.

    Raises:
        ValueError: ``mode`` is not one of "auto", "live", "static".
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if mode == "auto":
        return "static" if os.environ.get(WIDGETS_ENV, "").strip() == "static" else "live"
    return mode


def slider_positions(values: Sequence[float], start: float) -> list[float]:
    """The sorted, distinct slider positions, with ``start`` exactly among them.

    Raises:
        ValueError: no values, or a value (or ``start``) that is not a finite number.
    """
    positions = [float(v) for v in values]
    if not positions:
        raise ValueError("an explorer needs at least one slider position; got none")
    if not bool(torch.isfinite(torch.tensor(positions + [float(start)])).all()):
        raise ValueError(f"slider positions and start must be finite numbers, got "
                         f"{positions} and start={start}")
    # Rounding merges positions that differ only by float noise (0.1 * 3 vs 0.3).
    return sorted({round(v, 9) for v in positions} - {round(start, 9)} | {float(start)})


def _new_figure(figsize: tuple[float, float], mosaic: list[list[str]]) -> tuple[Any, dict]:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize, layout="constrained")
    return fig, fig.subplot_mosaic(mosaic)


def _frame(fig: Any, axes: dict[str, Any], draw: Draw, value: float, dpi: int) -> str:
    """``draw`` at ``value`` on the cleared axes, as a PNG in base64: one slider position."""
    for ax in axes.values():
        ax.clear()
    draw(axes, value)
    return _png_base64(fig, dpi)


def _png_base64(fig: Any, dpi: int) -> str:
    """The figure as a PNG with a 64-colour palette (a plot needs no more), in base64."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    buffer = io.BytesIO()
    image.quantize(colors=64).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


# The static slider's page code: a range input picks the frame and the value shown beside it.
_STATIC_SCRIPT = """(function () {
  var root = document.getElementById(%(id)s);
  var frames = %(frames)s, labels = %(labels)s;
  var slider = root.querySelector("input"), readout = root.querySelector("output");
  var image = root.querySelector("img");
  root.explorerFrames = frames;
  function show() {
    var i = Number(slider.value);
    image.src = "data:image/png;base64," + frames[i];
    readout.textContent = labels[i];
  }
  slider.addEventListener("input", show);
  show();
})();"""


def _static_html(
    draw: Draw, positions: list[float], start_index: int, label: str, fmt: str,
    figsize: tuple[float, float], mosaic: list[list[str]], dpi: int = 100,
) -> str:
    """Every position drawn once, packed with a range input into one HTML block."""
    import matplotlib.pyplot as plt

    fig, axes = _new_figure(figsize, mosaic)
    frames = [_frame(fig, axes, draw, value, dpi) for value in positions]
    plt.close(fig)
    labels = [format(v, fmt) for v in positions]
    element_id = f"explorer-{uuid.uuid4().hex[:12]}"
    script = _STATIC_SCRIPT % {
        "id": json.dumps(element_id), "frames": json.dumps(frames), "labels": json.dumps(labels)}
    return (
        f'<div class="siamese-explorer" id="{element_id}" data-positions="{len(positions)}">'
        f'<label style="display:flex;align-items:center;gap:0.75em;max-width:36em">'
        f'<span>{html.escape(label)}</span>'
        f'<input type="range" min="0" max="{len(positions) - 1}" step="1" '
        f'value="{start_index}" style="flex:1" aria-label="{html.escape(label)}">'
        f'<output style="min-width:4em;font-family:monospace">{labels[start_index]}</output>'
        f'</label>'
        f'<img alt="{html.escape(label)} explorer" style="max-width:100%;height:auto" '
        f'width="{round(figsize[0] * dpi)}">'
        f'<script>{script}</script></div>'
    )


def _live_widget(
    draw: Draw, positions: list[float], start_index: int, label: str, fmt: str,
    figsize: tuple[float, float], mosaic: list[list[str]], dpi: int = 100,
) -> Any:
    """A slider over ``positions`` whose every move redraws the figure below it."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    out = widgets.Output()
    slider = widgets.SelectionSlider(
        options=[(format(v, fmt), v) for v in positions], value=positions[start_index],
        description=label, continuous_update=True, layout=widgets.Layout(width="480px"),
        style={"description_width": "initial"},
    )
    fig, axes = _new_figure(figsize, mosaic)
    plt.close(fig)  # drawn into the Output below, never shown by the notebook's backend

    def redraw(value: float) -> None:
        # The frame goes straight into the Output's outputs: the same PNG as a static
        # frame, with no dependence on the notebook's matplotlib backend.
        out.outputs = ({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": _frame(fig, axes, draw, value, dpi),
                                 "text/plain": f"{label} = {format(value, fmt)}"}},)

    slider.observe(lambda change: redraw(change["new"]), names="value")
    redraw(slider.value)
    return widgets.VBox([slider, out])


def _explorer(
    draw: Draw, values: Sequence[float], start: float, label: str, mode: str, fmt: str,
    figsize: tuple[float, float], mosaic: list[list[str]],
) -> Any:
    """Show ``draw(axes, value)`` with a live slider or as a precomputed static one."""
    positions = slider_positions(values, start)
    start_index = positions.index(float(start))
    args = (draw, positions, start_index, label, fmt, figsize, mosaic)
    if resolve_mode(mode) == "live":
        return _live_widget(*args)
    from IPython.display import HTML

    return HTML(_static_html(*args))


def margin_explorer(
    margins: Sequence[float] | None = None, mode: str = "auto", start: float = 1.0
) -> Any:
    """Explore how the margin m shapes the contrastive loss.

    Plots ``1/2 D^2`` (similar pairs, Y=0) and ``1/2 max(0, m - D)^2`` (dissimilar
    pairs, Y=1) against D for the chosen m.

    Args:
        margins: the slider's positions; default 0.1 to 4 in steps of 0.1.
        mode: "auto", "live" (ipywidgets, needs a kernel) or "static" (works in a
            static page); see the module's docstring.
        start: the margin the slider opens at; added to the positions if missing.
    """
    from .plots import plot_contrastive_terms

    margins = margins if margins is not None else [i / 10 for i in range(1, 41)]
    return _explorer(lambda axes, m: plot_contrastive_terms(m, ax=axes["loss"]), margins, start,
                     "margin m", mode, ".2f", (7.0, 3.6), [["loss"]])


def threshold_positions(d: torch.Tensor, y: torch.Tensor, n: int = 40) -> list[float]:
    """Slider positions for a threshold: half across the whole range of ``d``, half where
    the similar and dissimilar distances overlap, where a small move changes the errors.

    Raises:
        ValueError: ``d`` is empty or not finite, or ``y`` lacks one of the two classes.
    """
    d, y = torch.as_tensor(d, dtype=torch.float64).flatten(), torch.as_tensor(y).flatten()
    if d.numel() == 0 or not bool(torch.isfinite(d).all()):
        raise ValueError("the distances must be a non-empty tensor of finite numbers")
    if not ((y == 0).any() and (y == 1).any()):
        raise ValueError("the labels must hold both similar (Y=0) and dissimilar (Y=1) pairs")
    lo, hi = float(d.min()), float(d.max())
    overlap_lo = float(torch.quantile(d[y == 1], 0.01))
    overlap_hi = float(torch.quantile(d[y == 0], 0.99))
    if overlap_lo >= overlap_hi:  # separable: look closely at the gap between the classes
        overlap_lo, overlap_hi = overlap_hi, overlap_lo
    whole = torch.linspace(lo, hi, n // 2).tolist()
    close = torch.linspace(overlap_lo, overlap_hi, n - n // 2).tolist()
    return sorted(whole + close)


def threshold_explorer(
    d: torch.Tensor,
    y: torch.Tensor,
    thresholds: Sequence[float] | None = None,
    mode: str = "auto",
    start: float | None = None,
) -> Any:
    """Explore the decision threshold of a verifier: "similar" if D <= threshold.

    Shows the distance histograms with the threshold, the confusion matrix with the
    accuracy, and the operating point on the ROC curve.

    Args:
        d: distances of test pairs.
        y: their labels (Y=0 similar, Y=1 dissimilar).
        thresholds: the slider's positions; default :func:`threshold_positions`.
        mode: "auto", "live" (ipywidgets, needs a kernel) or "static" (works in a
            static page); see the module's docstring.
        start: the threshold the slider opens at (added to the positions if missing),
            e.g. one chosen on validation pairs; default the accuracy-maximising
            threshold on ``(d, y)``.
    """
    from .plots import plot_confusion, plot_distance_histograms, plot_roc

    thresholds = list(thresholds) if thresholds is not None else threshold_positions(d, y)
    start = best_threshold(d, y) if start is None else start
    roc = roc_curve(d, y)

    def draw(axes: dict[str, Any], t: float) -> None:
        plot_distance_histograms(d, y, t, ax=axes["histograms"])
        plot_confusion(d, y, t, ax=axes["confusion"])
        axes["confusion"].set_title(f"accuracy {100 * accuracy_at_threshold(d, y, t):.1f}%",
                                    fontsize=10)
        plot_roc(roc, t, ax=axes["roc"])

    return _explorer(draw, thresholds, start, "threshold τ", mode, ".3f", (7.5, 6.2),
                     [["histograms", "histograms"], ["confusion", "roc"]])
