"""Interactive explorers: the margin of the contrastive loss, the decision threshold.

Each explorer is one function with two modes drawn by the same code:

- ``mode="live"``: an ipywidgets slider that redraws as you move it; it needs a running
  kernel (Jupyter, Colab).
- ``mode="static"``: the same figure precomputed for every slider position and packed
  into a self-contained HTML animation (matplotlib's ``to_jshtml``) whose slider works
  in a static page, such as the rendered book, with no kernel and no network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from .evaluate import accuracy_at_threshold, best_threshold, roc_curve


def _explorer(
    draw: Callable[[Any, float], None],
    values: Sequence[float],
    start: float,
    label: str,
    mode: str,
    figsize: tuple[float, float],
    ncols: int = 1,
) -> Any:
    """Drive ``draw(axes, value)`` with a live slider or as a scrubbable static animation."""
    import matplotlib.pyplot as plt

    values = [float(v) for v in values]
    if mode == "live":
        import ipywidgets as widgets
        from IPython.display import display

        out = widgets.Output()
        slider = widgets.SelectionSlider(
            options=[(f"{v:.2f}", v) for v in values], value=min(values, key=lambda v: abs(v - start)),
            description=label, continuous_update=True, layout=widgets.Layout(width="420px"),
        )

        def redraw(value: float) -> None:
            with out:
                out.clear_output(wait=True)
                fig, axes = plt.subplots(1, ncols, figsize=figsize, layout="constrained")
                draw(axes, value)
                display(fig)
                plt.close(fig)

        slider.observe(lambda change: redraw(change["new"]), names="value")
        redraw(slider.value)
        return widgets.VBox([slider, out])
    if mode == "static":
        from IPython.display import HTML
        from matplotlib import animation

        fig, axes = plt.subplots(1, ncols, figsize=figsize, layout="constrained")

        def frame(i: int) -> list:
            for ax in (axes.flat if hasattr(axes, "flat") else [axes]):
                ax.clear()
            draw(axes, values[i])
            fig.suptitle(f"{label} = {values[i]:.2f}  (drag the slider under the figure)",
                         fontsize=10)
            return []

        anim = animation.FuncAnimation(fig, frame, frames=len(values), blit=False)
        html = anim.to_jshtml(fps=4, default_mode="once")
        plt.close(fig)
        return HTML(html)
    raise ValueError(f"mode must be 'live' or 'static', got {mode!r}")


def margin_explorer(
    margins: Sequence[float] | None = None, mode: str = "live", start: float = 1.0
) -> Any:
    """Explore how the margin m shapes the contrastive loss.

    Plots ``1/2 D^2`` (similar pairs, Y=0) and ``1/2 max(0, m - D)^2`` (dissimilar
    pairs, Y=1) against D for the chosen m.

    Args:
        margins: the slider's positions; default 0.25 to 3 in steps of 0.25.
        mode: "live" (ipywidgets, needs a kernel) or "static" (works in a static page).
        start: the initial margin.
    """
    from .plots import plot_contrastive_terms

    margins = margins if margins is not None else [0.25 * i for i in range(1, 13)]
    return _explorer(lambda ax, m: plot_contrastive_terms(m, ax=ax), margins, start,
                     "margin m", mode, (6, 3.6))


def threshold_explorer(
    d: torch.Tensor,
    y: torch.Tensor,
    thresholds: Sequence[float] | None = None,
    mode: str = "live",
    start: float | None = None,
) -> Any:
    """Explore the decision threshold of a verifier: "similar" if D <= threshold.

    Shows the distance histograms with the threshold, the confusion matrix with the
    accuracy, and the operating point on the ROC curve.

    Args:
        d: distances of test pairs.
        y: their labels (Y=0 similar, Y=1 dissimilar).
        thresholds: the slider's positions; default 16 values over the range of d.
        mode: "live" (ipywidgets, needs a kernel) or "static" (works in a static page).
        start: the initial threshold; default the accuracy-maximising one on (d, y).
    """
    from .plots import plot_confusion, plot_distance_histograms, plot_roc

    if thresholds is None:
        lo, hi = float(d.min()), float(d.max())
        thresholds = [lo + (hi - lo) * (i + 1) / 17 for i in range(16)]
    start = best_threshold(d, y) if start is None else start
    roc = roc_curve(d, y)

    def draw(axes: Any, t: float) -> None:
        plot_distance_histograms(d, y, t, ax=axes[0])
        plot_confusion(d, y, t, ax=axes[1])
        plot_roc(roc, t, ax=axes[2])
        axes[1].set_title(f"accuracy {100 * accuracy_at_threshold(d, y, t):.1f}%", fontsize=10)

    return _explorer(draw, thresholds, start, "threshold", mode, (12, 3.6), ncols=3)
