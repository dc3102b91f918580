"""N-way K-shot episodes: the test of one-shot learning.

Taught in chapter 1 (Standard vs one-shot classification), which defines an episode.
An episode picks N classes the model never trained on, shows it K labelled images
of each (the support set) and asks it to name Q more images of each (the queries).
:class:`EpisodeSampler` draws episodes from any labelled set; like easyfsl's
``TaskSampler`` it yields index lists, so it also works as a DataLoader
``batch_sampler``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Sampler

from .pairs import ClassIndex, check_whole, labels_of


@dataclass
class Episodes:
    """A stack of E episodes as index tensors into the labelled set.

    Attributes:
        support: (E, N, K) indices of the support images; class n of episode e is
            ``support[e, n]``.
        query: (E, N, Q) indices of the query images; their answer is n.
    """

    support: torch.Tensor
    query: torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(episodes, n_way, k_shot, n_query)."""
        e, n, k = self.support.shape
        return e, n, k, self.query.shape[2]


class EpisodeSampler(Sampler[list[int]]):
    """Seeded N-way K-shot Q-query episodes from any labelled set.

    Args:
        labels: class labels, or a dataset exposing ``.labels`` / ``.targets``.
        n_way: N, classes per episode.
        k_shot: K, support images per class.
        n_query: Q, query images per class.
        n_episodes: episodes per pass.
        groups: optional group of every image (e.g. Omniglot's alphabet).
        same_group: draw all N classes of an episode from one group (the Lake/Koch
            within-alphabet protocol); needs ``groups``.
        seed: seeds the sampler's own generator.
    """

    def __init__(
        self,
        labels: Any,
        n_way: int,
        k_shot: int = 1,
        n_query: int = 1,
        n_episodes: int = 1000,
        groups: Any = None,
        same_group: bool = False,
        seed: int = 0,
    ) -> None:
        labels = labels_of(labels)
        # 2.5 classes failed deep inside torch; the range checks below say what is too small
        n_way, k_shot, n_query = (check_whole(name, value, minimum=None) for name, value in
                                  (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)))
        if n_way < 2 or k_shot < 1 or n_query < 1:
            raise ValueError(
                f"an episode needs n_way >= 2, k_shot >= 1, n_query >= 1; got "
                f"N={n_way}, K={k_shot}, Q={n_query}"
            )
        self.index = ClassIndex(labels)
        self.n_way, self.k_shot, self.n_query, self.n_episodes = n_way, k_shot, n_query, n_episodes
        per_class = k_shot + n_query
        self.eligible = torch.nonzero(self.index.count >= per_class).flatten()
        if len(self.eligible) < n_way:
            biggest = int(self.index.count.max())
            raise ValueError(
                f"{n_way}-way {k_shot}-shot {n_query}-query episodes need {n_way} classes with "
                f"at least K+Q={per_class} images; {len(self.eligible)} of "
                f"{len(self.index.classes)} classes qualify (the largest has {biggest}). "
                "Lower n_way, k_shot or n_query."
            )
        self.class_groups = None
        if same_group:
            if groups is None:
                raise ValueError("same_group=True needs the group of every image (groups=...)")
            groups = labels_of(groups)
            if len(groups) != len(labels):
                raise ValueError(f"groups must give the group of every image: got {len(groups)} "
                                 f"groups for {len(labels)} labels")
            self.class_groups = self._groups_of_classes(groups, labels)
        self.generator = torch.Generator().manual_seed(seed)

    def _groups_of_classes(self, groups: torch.Tensor, labels: torch.Tensor) -> list[torch.Tensor]:
        first = self.index.order[self.index.start]
        class_group = groups[first]
        pools = [self.eligible[class_group[self.eligible] == g] for g in class_group.unique()]
        pools = [p for p in pools if len(p) >= self.n_way]
        if not pools:
            raise ValueError(
                f"no group has {self.n_way} classes with enough images for a within-group episode"
            )
        return pools

    def __len__(self) -> int:
        return self.n_episodes

    def _classes(self, g: torch.Generator) -> torch.Tensor:
        if self.class_groups is None:
            pool = self.eligible
        else:
            pool = self.class_groups[int(torch.randint(len(self.class_groups), (1,), generator=g))]
        return pool[torch.randperm(len(pool), generator=g)[: self.n_way]]

    def sample(self, n_episodes: int | None = None) -> Episodes:
        """Draw ``n_episodes`` episodes (by default the sampler's ``n_episodes``) as index tensors.

        See :class:`Episodes`. A count below 1 is an error rather than an empty stack:
        what callers do with episodes (an accuracy and its confidence interval) has no
        value for zero episodes, and 0 used to fall back to the default count silently.

        Raises:
            ValueError: ``n_episodes`` (given, or the sampler's) is not a whole number >= 1.
        """
        # check_whole, not int(): 2.7 episodes were silently cut to 2
        n = check_whole("n_episodes", self.n_episodes if n_episodes is None else n_episodes,
                        minimum=None)
        if n < 1:
            raise ValueError(
                f"sample() draws at least one episode, got n_episodes={n}; pass n_episodes >= 1 "
                "(or None for the sampler's own count)"
            )
        g, per_class = self.generator, self.k_shot + self.n_query
        cls = torch.stack([self._classes(g) for _ in range(n)])
        idx = self.index.distinct_members(cls, per_class, g)  # (E, N, K+Q)
        return Episodes(support=idx[..., : self.k_shot], query=idx[..., self.k_shot :])

    def __iter__(self) -> Iterator[list[int]]:
        """Yield each episode as one flat list: per class, K support then Q query indices."""
        episodes = self.sample()
        flat = torch.cat([episodes.support, episodes.query], dim=-1).flatten(1)
        yield from flat.tolist()


def split_episode(
    x: torch.Tensor, n_way: int, k_shot: int, n_query: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a batch laid out as :class:`EpisodeSampler` yields it -> support (N, K, ...), query (N, Q, ...).

    Raises:
        ValueError: ``x`` does not hold N * (K + Q) items (a batch of another episode shape).
    """
    if len(x) != n_way * (k_shot + n_query):
        raise ValueError(f"a {n_way}-way {k_shot}-shot {n_query}-query episode holds "
                         f"{n_way * (k_shot + n_query)} items, got a batch of {len(x)}: split it "
                         "with the sampler's n_way, k_shot and n_query")
    x = x.reshape(n_way, k_shot + n_query, *x.shape[1:])
    return x[:, :k_shot], x[:, k_shot:]
