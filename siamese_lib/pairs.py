"""Pairs and class-balanced batches, drawn from any labelled set by index.

Taught in chapter 2, "Siamese networks and the contrastive loss", which draws the first
similar and dissimilar pairs; chapter 3 trains on :func:`pair_batches`, and chapter 7's
batch losses train (through the recipes) on class-balanced batches.

Samplers work on labels only and return indices, so they serve a tensor held in
memory (the fast path: index a uint8 tensor, on the GPU if there is one) as well as
any ``Dataset`` that exposes ``.labels`` or ``.targets`` (through a ``DataLoader``).
All randomness comes from a seeded ``torch.Generator``.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from .imageset import gather, indices_by_label


def labels_of(source: Any) -> torch.Tensor:
    """The class labels of a tensor, list or dataset (``.labels`` or ``.targets``) as int64."""
    for attr in ("labels", "targets"):
        if hasattr(source, attr):
            source = getattr(source, attr)
            break
    labels = torch.as_tensor(source)
    if labels.dim() != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {tuple(labels.shape)}")
    if len(labels) == 0:
        raise ValueError("the labelled set is empty: there is nothing to draw pairs from")
    check_integer_labels(labels)
    return labels.long().cpu()


def check_integer_labels(labels: torch.Tensor) -> None:
    """Refuse class labels that are not whole numbers (0.5 and 0.7 would both become class 0).

    Float labels with integer values (0.0, 1.0, ...) are accepted.
    """
    if not labels.is_floating_point():
        return
    bad = ~torch.isfinite(labels) | (labels != labels.round())
    if bad.any():
        raise ValueError(
            f"class labels must be integers, got {labels[bad][:5].tolist()}: map each class "
            "to an integer id (e.g. with labels.unique(return_inverse=True))"
        )


def check_pair_labels(y: torch.Tensor, name: str = "pair labels") -> None:
    """Refuse pair labels other than 0 (similar) and 1 (dissimilar): a 2 or a 0.5 would
    silently count as dissimilar."""
    bad = (y != 0) & (y != 1)
    if bad.any():
        raise ValueError(
            f"{name} must be 0 (similar) or 1 (dissimilar), got {y[bad][:5].tolist()}"
        )


def check_whole(name: str, value: int, minimum: int | None = 1) -> int:
    """``value`` as an int when it is a whole number >= ``minimum`` (any whole number for
    None); 2.5 would otherwise be truncated to 2 or fail deep inside torch, True become 1."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and (
            minimum is None or value >= minimum):
        return int(value)
    at_least = "" if minimum is None else f" >= {minimum}"
    raise ValueError(f"{name} must be a whole number{at_least}, got {value!r}")


#: Added to a batch source's seed to seed its augmentation (see :func:`augmentation_seed`):
#: half of a generator's 32-bit seed space, plus one to make it odd.
AUGMENT_SEED_OFFSET = 2**31 + 1


def augmentation_seed(seed: int) -> int:
    """The seed of the augmentation generator of a batch source seeded with ``seed``.

    A CPU ``torch.Generator`` keeps only the low 32 bits of its seed, so two seeds give
    the same stream exactly when they agree modulo 2**32. Half that space away from
    ``seed``, the augmentation stream differs from the sampling stream of every seed t
    with ``|t - seed| < 2**31 - 1``, such as the neighbouring epochs' (recipes seed epoch
    e with ``recipe.seed * 1000 + e``). ``seed + 1``, used before, made the augmentation
    of epoch e replay the sampling draws of epoch e + 1.
    """
    return (seed + AUGMENT_SEED_OFFSET) % 2**32


class ClassIndex:
    """Positions grouped by class, for samplers that draw members of given classes.

    Classes are the distinct labels in increasing order, numbered 0..C-1 (so labels need
    not be dense); ``order[start[c] : start[c] + count[c]]`` are the positions of class c,
    in their original order (from :func:`~siamese_lib.imageset.indices_by_label`).

    Args:
        labels: int64 (N,) class labels, as :func:`labels_of` returns them.

    Attributes:
        classes: the distinct labels, (C,).
        order: all N positions, class by class.
        count: (C,) images per class.
        start: (C,) where each class begins in ``order``.
    """

    def __init__(self, labels: torch.Tensor) -> None:
        self.classes, dense = labels.unique(return_inverse=True)
        members = indices_by_label(dense, len(self.classes))
        self.order = torch.cat(members)
        self.count = torch.tensor([len(m) for m in members], dtype=torch.long)
        self.start = torch.cumsum(self.count, 0) - self.count

    def group_of_classes(self, groups: Any) -> torch.Tensor:
        """The group of each class (C,), from the group of every image (N,): that of the
        class's first image, as a class lies within one group (an Omniglot character
        within its alphabet).

        Raises:
            ValueError: no groups, or not one group per image.
        """
        if groups is None:
            raise ValueError("drawing classes by group needs the group of every image (groups=...)")
        groups = labels_of(groups)
        if len(groups) != len(self.order):
            raise ValueError(f"got {len(groups)} groups for {len(self.order)} labels: give one "
                             "group per image")
        return groups[self.order[self.start]]

    def pick(self, cls: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """The ``offset``-th member of each class in ``cls`` (same shapes) -> positions."""
        return gather(self.order, gather(self.start, cls) + offset)

    def random_member(self, cls: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One uniformly drawn member of each class in ``cls`` (1-D) -> positions."""
        u = torch.rand(len(cls), generator=g)
        return self.pick(cls, (u * gather(self.count, cls)).long())

    def distinct_members(self, cls: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
        """m different images of each class in ``cls`` (any shape) -> indices ``(*cls.shape, m)``."""
        sizes = gather(self.count, cls)
        if int(sizes.max()) * sizes.numel() <= 2**22:
            return self.pick(cls[..., None], _smallest_keys(sizes, m, g))
        # large classes: draw with replacement, redraw the rare rows with a repeat. A row
        # of a class with fewer than m^2 images would repeat too often (a class of exactly
        # m images almost never comes out distinct), so those rows take random keys instead.
        offsets = torch.empty(*cls.shape, m, dtype=torch.long)
        few = sizes < m * m
        if few.any():
            offsets[few] = _smallest_keys(sizes[few], m, g)
        many = ~few
        offsets[many] = (torch.rand(int(many.sum()), m, generator=g) * sizes[many][:, None]).long()
        while True:
            s = offsets.sort(dim=-1).values
            dup = (s[..., 1:] == s[..., :-1]).any(-1)
            if not dup.any():
                break
            redraw = torch.rand(int(dup.sum()), m, generator=g) * sizes[dup][:, None]
            offsets[dup] = redraw.long()
        return self.pick(cls[..., None], offsets)


def _smallest_keys(sizes: torch.Tensor, m: int, g: torch.Generator) -> torch.Tensor:
    """m distinct offsets in [0, size) per entry of ``sizes``: the m smallest random keys."""
    keys = torch.rand(*sizes.shape, int(sizes.max()), generator=g)
    keys[torch.arange(keys.shape[-1]) >= sizes[..., None]] = 2.0
    return keys.argsort(dim=-1)[..., :m]


class PairSampler:
    """Balanced similar/dissimilar pairs of indices, drawn in vectorised batches.

    Similar pairs (Y = 0): a class is chosen uniformly among those with at least two
    images, then two *different* images of it (or possibly the same image if
    ``allow_same_image``). Dissimilar pairs (Y = 1): two different classes, uniformly,
    then one image of each. Classes are chosen uniformly, not by size, as in Koch et al.

    Args:
        labels: class labels, or a dataset exposing ``.labels`` / ``.targets``.
        similar_fraction: share of similar pairs in each batch.
        allow_same_image: let a similar pair be an image with itself.
        seed: seeds the sampler's own generator.
    """

    def __init__(
        self,
        labels: Any,
        similar_fraction: float = 0.5,
        allow_same_image: bool = False,
        seed: int = 0,
    ) -> None:
        self.index = ClassIndex(labels_of(labels))
        if len(self.index.classes) < 2:
            raise ValueError(
                f"dissimilar pairs need at least 2 classes, the set has "
                f"{len(self.index.classes)}"
            )
        if isinstance(similar_fraction, bool) or not isinstance(similar_fraction, numbers.Real) \
                or not 0 <= similar_fraction <= 1:
            raise ValueError(f"similar_fraction must be in [0, 1], got {similar_fraction!r}")
        min_size = 1 if allow_same_image else 2
        self.similar_classes = torch.nonzero(self.index.count >= min_size).flatten()
        if similar_fraction > 0 and len(self.similar_classes) == 0:
            raise ValueError(
                "similar pairs need a class with at least 2 images and every class has one; "
                "add images, set allow_same_image=True, or use similar_fraction=0"
            )
        self.similar_fraction = similar_fraction
        self.allow_same_image = allow_same_image
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw n pairs -> (first indices, second indices, Y) with Y = 0 similar, 1 dissimilar."""
        n = check_whole("the number of pairs n", n, minimum=0)
        g, idx = self.generator, self.index
        n_sim = round(n * self.similar_fraction)
        n_dis = n - n_sim
        # similar: two distinct offsets inside one class
        # (high >= 1 even when no class can give a similar pair: similar_fraction=0 then)
        high = len(self.similar_classes) or 1
        cls = gather(self.similar_classes, torch.randint(high, (n_sim,), generator=g))
        size = gather(idx.count, cls)
        first = (torch.rand(n_sim, generator=g) * size).long()
        if self.allow_same_image:
            second = (torch.rand(n_sim, generator=g) * size).long()
        else:
            shift = 1 + (torch.rand(n_sim, generator=g) * (size - 1)).long()
            second = (first + shift) % size
        # dissimilar: a second class that differs from the first by a non-zero shift
        n_classes = len(idx.classes)
        c1 = torch.randint(n_classes, (n_dis,), generator=g)
        c2 = (c1 + torch.randint(1, n_classes, (n_dis,), generator=g)) % n_classes
        i = torch.cat([idx.pick(cls, first), idx.random_member(c1, g)])
        j = torch.cat([idx.pick(cls, second), idx.random_member(c2, g)])
        y = torch.cat([torch.zeros(n_sim, dtype=torch.long), torch.ones(n_dis, dtype=torch.long)])
        perm = torch.randperm(n, generator=g)
        return gather(i, perm), gather(j, perm), gather(y, perm)

    def batches(self, batch_size: int, n_batches: int) -> Iterator[tuple[torch.Tensor, ...]]:
        """Yield ``n_batches`` index batches ``(i, j, y)`` of ``batch_size`` pairs."""
        check_whole("batch_size", batch_size, minimum=0)
        for _ in range(check_whole("n_batches", n_batches, minimum=0)):
            yield self.sample(batch_size)


class ClassBalancedBatchSampler(Sampler[list[int]]):
    """P classes x K images per batch, so every batch holds many similar and dissimilar pairs.

    Usable as a DataLoader ``batch_sampler`` over any dataset that exposes its labels
    (the easyfsl style). Batches are class-major: K images of the first class, then K
    of the second, and so on. Images are drawn without replacement within a batch.

    Args:
        labels: class labels, or a dataset exposing ``.labels`` / ``.targets``.
        n_classes: P, classes per batch.
        n_per_class: K, images per class.
        n_batches: batches per pass.
        seed: seeds the sampler's own generator.
        groups: the group of every image (Omniglot's alphabet), for ``classes_per_group``.
        classes_per_group: draw a batch's P classes a group at a time, this many from each
            randomly chosen group (all of a smaller group's), so that most of a class's
            rivals in the batch are its siblings: the harder task of Lake's within-alphabet
            trials. None: the P classes come from anywhere.
    """

    def __init__(
        self, labels: Any, n_classes: int, n_per_class: int, n_batches: int, seed: int = 0,
        groups: Any = None, classes_per_group: int | None = None,
    ) -> None:
        self.index = ClassIndex(labels_of(labels))
        n_classes = check_whole("n_classes", n_classes, minimum=None)
        n_per_class = check_whole("n_per_class", n_per_class, minimum=None)
        self.eligible = torch.nonzero(self.index.count >= n_per_class).flatten()
        if n_classes < 1 or n_per_class < 1:
            raise ValueError(f"P and K must be positive, got P={n_classes}, K={n_per_class}")
        if len(self.eligible) < n_classes:
            raise ValueError(
                f"a batch needs {n_classes} classes with at least {n_per_class} images each, "
                f"but only {len(self.eligible)} classes have that many; lower n_classes or "
                "n_per_class"
            )
        self.p, self.k = n_classes, n_per_class
        self.n_batches = check_whole("n_batches", n_batches, minimum=0)
        self.generator = torch.Generator().manual_seed(seed)
        self.per_group, self.by_group = None, []
        if classes_per_group is not None:
            self.per_group = check_whole("classes_per_group", classes_per_group)
            self.by_group = self._eligible_by_group(groups)

    def _eligible_by_group(self, groups: Any) -> list[torch.Tensor]:
        """The eligible classes (indices into ``index.classes``) of each group."""
        of_class = self.index.group_of_classes(groups)[self.eligible]
        by_group = [self.eligible[of_class == g] for g in of_class.unique()]
        reachable = sum(min(len(c), self.per_group) for c in by_group)
        if reachable < self.p:
            raise ValueError(f"{self.per_group} classes from each of {len(by_group)} groups make "
                             f"{reachable}, fewer than P={self.p}: raise classes_per_group or "
                             "lower n_classes")
        return by_group

    def __len__(self) -> int:
        return self.n_batches

    def sample(self) -> torch.Tensor:
        """One batch of P*K indices, class-major."""
        g = self.generator
        if self.per_group is None:
            cls = self.eligible[torch.randperm(len(self.eligible), generator=g)[: self.p]]
        else:
            cls = self._classes_group_by_group(g)
        return self.index.distinct_members(cls, self.k, g).flatten()

    def _classes_group_by_group(self, g: torch.Generator) -> torch.Tensor:
        """P distinct classes, up to ``per_group`` from each group, groups in random order."""
        picked, n_picked = [], 0
        for i in torch.randperm(len(self.by_group), generator=g).tolist():
            members = self.by_group[i]
            picked.append(members[torch.randperm(len(members), generator=g)[: self.per_group]])
            n_picked += len(picked[-1])
            if n_picked >= self.p:
                break
        return torch.cat(picked)[: self.p]

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.n_batches):
            yield self.sample().tolist()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images in [0, 255] -> float32 in [0, 1]; float images pass through.

    Raises:
        TypeError: ``images`` is not a tensor.
        ValueError: it holds integers other than uint8 (int64 pixels 0..255 would pass as
            floats 255 times too bright).
    """
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a tensor (N, C, H, W), got a {type(images).__name__}: "
                        "use torch.as_tensor(...)")
    if not (images.is_floating_point() or images.dtype in (torch.uint8, torch.bool)):
        raise ValueError(f"images must be uint8 (0..255) or floating-point (0..1), got "
                        f"{images.dtype}: convert 0..255 pixels with .to(torch.uint8)")
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pair_batches(
    images: torch.Tensor,
    labels: Any,
    batch_size: int,
    n_batches: int,
    seed: int = 0, augment: Augment | None = None, device: str | torch.device | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield image pair batches ``(x1, x2, y)`` for a pair loss, straight from a tensor.

    ``images`` (N, C, H, W), uint8 or float, may live on the GPU; indexing it is the
    whole cost of a batch (no per-item Python or PIL work). The batches go to ``device``,
    by default the images' device. ``seed`` seeds the pair sampler; ``augment`` draws from
    a generator of its own, seeded with :func:`augmentation_seed` of it.
    """
    sampler = PairSampler(labels, seed=seed)
    load = _batch_loader(images, sampler.index, seed, augment, device)
    for i, j, y in sampler.batches(batch_size, n_batches):
        x1, x2 = load(i), load(j)
        yield x1, x2, y.to(x1.device)


def class_balanced_batches(
    images: torch.Tensor,
    labels: Any,
    n_classes: int,
    n_per_class: int,
    n_batches: int,
    seed: int = 0, augment: Augment | None = None, device: str | torch.device | None = None,
    groups: Any = None, classes_per_group: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield P x K batches ``(x, labels)`` for a batch loss, straight from a tensor.

    The batches go to ``device``, by default the images' device, and ``augment`` draws
    from its own generator (see :func:`pair_batches`). ``groups`` and
    ``classes_per_group`` draw the classes a group at a time (see
    :class:`ClassBalancedBatchSampler`).
    """
    labels = labels_of(labels)
    sampler = ClassBalancedBatchSampler(labels, n_classes, n_per_class, n_batches, seed=seed,
                                        groups=groups, classes_per_group=classes_per_group)
    load = _batch_loader(images, sampler.index, seed, augment, device)
    for _ in range(n_batches):
        idx = sampler.sample()
        x = load(idx)
        yield x, gather(labels, idx).to(x.device)


def _batch_loader(
    images: torch.Tensor, index: ClassIndex, seed: int, augment: Augment | None,
    device: str | torch.device | None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``index -> float images`` (augmented, on ``device``) for the batch sources above,
    which draw from the labels in ``index``.

    The augmentation draws from a generator of its own, seeded with
    :func:`augmentation_seed`, and in the order the batches are loaded.
    """
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a tensor (N, C, H, W), got a {type(images).__name__}: "
                        "use torch.as_tensor(...)")
    # more labels than images failed inside index_select; fewer silently left images out
    if len(images) != len(index.order):
        raise ValueError(f"got {len(images)} images but {len(index.order)} labels: give one "
                         "label per image")
    device = images.device if device is None else device
    g = torch.Generator().manual_seed(augmentation_seed(seed))

    def load(idx: torch.Tensor) -> torch.Tensor:
        x = to_float(gather(images, idx))
        return (x if augment is None else augment(x, g)).to(device)

    return load


def all_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every pair (i < j) of a batch -> (i, j, Y) with Y = 0 where the labels match.

    All three are on the labels' device.
    """
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    return i, j, (labels[i] != labels[j]).long()
