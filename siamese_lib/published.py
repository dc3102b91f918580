"""The benchmark measures: what is measured, the target, and published figures to compare.

Taught on the results page, which sets each model beside these published figures;
chapters 5 and 7 quote them too.

Published figures are quoted with their source (a key of the book's bibliography, or a
URL) and the protocol they were measured under; they are the only numbers in the book
not computed by its build.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Published:
    """A published result: the method, its accuracy in %, and where it was reported."""

    method: str
    accuracy: float
    source: str


@dataclass(frozen=True)
class Measure:
    """One row of the accuracy benchmark.

    Attributes:
        key: short name.
        description: what is measured, protocol included.
        recipe: the recipe whose model is measured.
        protocol: a key of :data:`siamese_lib.protocols.PROTOCOLS`.
        target: the accuracy (%) to reach.
        floor: an accuracy (%) never to fall below, if any.
        published: figures to compare with.
    """

    key: str
    description: str
    recipe: str
    protocol: str
    target: float | None
    floor: float | None = None
    published: tuple[Published, ...] = field(default_factory=tuple)

    def verdict(self, ours: float, pixels: float | None = None) -> str:
        """Whether an accuracy (%) meets this measure: "yes", "no", or "no (... floor)".

        A measure without a target asks to beat raw pixels: pass the pixel baseline (%).
        """
        if self.target is None:
            if pixels is None:
                raise ValueError(f"{self.key!r} has no target: pass the pixel accuracy to beat")
            return "yes" if ours > pixels else "no"
        if ours >= self.target:
            return "yes"
        if self.floor is None:
            return "no"
        return f"no ({'above' if ours >= self.floor else 'below'} the {self.floor:g}% floor)"

    def target_text(self) -> str:
        """The target in words, e.g. "≥ 95.5% (never below 92%)"."""
        if self.target is None:
            return "above pixels"
        return f"≥ {self.target:g}%" + (f" (never below {self.floor:g}%)" if self.floor else "")


#: The rows of the accuracy benchmark, in the order the results page shows them.
MEASURES: tuple[Measure, ...] = (
    Measure("vinyals-20way", "Omniglot 20-way 1-shot, Vinyals protocol (28x28, rotations, "
            "class split)", "omniglot-vinyals", "vinyals-20way", 96.0, published=(
                Published("Siamese net (as reported by Vinyals et al.)", 88.0, "vinyals2016matching"),
                Published("Matching Networks", 93.8, "vinyals2016matching"),
                Published("Prototypical Networks", 96.0, "snell2017prototypical"))),
    Measure("lake-runs", "Lake's 20 official runs (20-way 1-shot within an alphabet, 400 "
            "trials)", "omniglot-prototypical", "lake-runs", 95.5, floor=92.0, published=(
                Published("Koch et al. Siamese net", 92.0, "koch2015siamese"),
                Published("humans", 95.5, "lake2015human"),
                Published("Bayesian program learning", 96.7, "lake2015human"),
                Published("pixel 1-nearest-neighbour (as tabulated by Koch et al.)", 21.7, "koch2015siamese"))),
    Measure("vinyals-5way", "Omniglot 5-way 1-shot, Vinyals protocol", "omniglot-vinyals",
            "vinyals-5way", 99.0, published=(
                Published("Siamese net (as reported by Vinyals et al.)", 96.7, "vinyals2016matching"),
                Published("Matching Networks", 98.1, "vinyals2016matching"),
                Published("Prototypical Networks", 98.8, "snell2017prototypical"))),
    Measure("omniglot-to-mnist", "Trained on Omniglot, 10-way 1-shot on MNIST",
            "omniglot-prototypical-thickened", "mnist-10way", 80.0, published=(
                Published("Koch et al. Siamese net", 70.3, "koch2015siamese"),
                Published("1-nearest-neighbour (pixels)", 26.5, "koch2015siamese"))),
    Measure("mnist-verification", "MNIST same/different on test pairs, threshold from "
            "held-out training digits", "mnist-contrastive", "mnist-verification", 99.0,
            published=(Published("Keras contrastive-loss Siamese example", 95.8,
                                 "https://keras.io/examples/vision/siamese_contrastive/"),)),
    Measure("mnist-to-omniglot-20way", "Trained on MNIST, 20-way 1-shot on Omniglot "
            "evaluation alphabets (the article's experiment)", "mnist-contrastive",
            "omniglot-20way", None),
    Measure("mnist-to-omniglot-5way", "Trained on MNIST, 5-way 1-shot on Omniglot "
            "evaluation alphabets", "mnist-contrastive", "omniglot-5way", None),
)
