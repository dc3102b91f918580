"""N-way K-shot episodes: shapes, disjoint support and query, classes, groups, seeding, errors."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from siamese_lib.episodes import Episodes, EpisodeSampler, split_episode

N_CLASSES, PER_CLASS = 10, 6


def make_labels(seed: int = 0) -> torch.Tensor:
    labels = torch.arange(N_CLASSES).repeat_interleave(PER_CLASS)
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def check_episodes(ep: Episodes, labels: torch.Tensor) -> None:
    e, n, k, q = ep.shape
    for s, qu in zip(ep.support, ep.query, strict=True):
        flat = torch.cat([s.flatten(), qu.flatten()]).tolist()
        assert len(set(flat)) == n * (k + q)  # support and query disjoint, no repeats
        row_labels = torch.cat([labels[s], labels[qu]], dim=1)  # (N, K+Q)
        assert (row_labels == row_labels[:, :1]).all()  # one class per row
        assert len(set(row_labels[:, 0].tolist())) == n  # N different classes


def test_episode_shapes_and_guarantees() -> None:
    labels = make_labels()
    ep = EpisodeSampler(labels, n_way=3, k_shot=2, n_query=3, n_episodes=7, seed=0).sample()
    assert ep.support.shape == (7, 3, 2)
    assert ep.query.shape == (7, 3, 3)
    assert ep.shape == (7, 3, 2, 3)
    check_episodes(ep, labels)


def test_sample_with_explicit_count() -> None:
    sampler = EpisodeSampler(make_labels(), n_way=5, n_episodes=100)
    assert sampler.sample(4).shape == (4, 5, 1, 1)
    assert sampler.sample().shape == (100, 5, 1, 1)


@pytest.mark.parametrize("n", [0, -3])
def test_sample_refuses_fewer_than_one_episode(n: int) -> None:
    # sample(0) used to fall back to n_episodes and draw 100 episodes
    sampler = EpisodeSampler(make_labels(), n_way=5, n_episodes=100)
    with pytest.raises(ValueError, match=rf"at least one episode, got n_episodes={n}"):
        sampler.sample(n)


def test_only_classes_with_enough_images_are_drawn() -> None:
    labels = torch.tensor([0] * 5 + [1] * 2 + [2] * 5 + [3] * 4 + [4] * 1)
    ep = EpisodeSampler(labels, n_way=3, k_shot=2, n_query=2, n_episodes=50, seed=0).sample()
    check_episodes(ep, labels)
    drawn = set(labels[ep.support].flatten().tolist())
    assert drawn == {0, 2, 3}


def groups_of(labels: torch.Tensor) -> torch.Tensor:
    return labels // 5  # classes 0-4 in group 0, 5-9 in group 1


def test_same_group_keeps_episodes_inside_one_group() -> None:
    labels = make_labels(1)
    groups = groups_of(labels)
    sampler = EpisodeSampler(
        labels, n_way=3, n_episodes=60, groups=groups, same_group=True, seed=0
    )
    ep = sampler.sample()
    check_episodes(ep, labels)
    episode_groups = groups[torch.cat([ep.support, ep.query], -1).flatten(1)]  # (E, N*(K+Q))
    assert (episode_groups == episode_groups[:, :1]).all()
    assert set(episode_groups[:, 0].tolist()) == {0, 1}  # both groups get their turn
    # without the constraint, 3 of 10 classes would often straddle the two groups
    free = EpisodeSampler(labels, n_way=3, n_episodes=60, seed=0).sample()
    free_groups = groups[free.support.flatten(1)]
    assert (free_groups != free_groups[:, :1]).any()


def test_same_group_skips_groups_with_too_few_classes() -> None:
    labels = torch.arange(6).repeat_interleave(2)
    groups = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])  # 3, 2 and 1 classes
    ep = EpisodeSampler(labels, 3, n_episodes=20, groups=groups, same_group=True).sample()
    assert set(labels[ep.support].flatten().tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="no group has 4 classes"):
        EpisodeSampler(labels, 4, groups=groups, same_group=True)


def test_seeded_reproducibility() -> None:
    labels = make_labels()
    a = EpisodeSampler(labels, 4, 1, 2, n_episodes=10, seed=5).sample()
    b = EpisodeSampler(labels, 4, 1, 2, n_episodes=10, seed=5).sample()
    c = EpisodeSampler(labels, 4, 1, 2, n_episodes=10, seed=6).sample()
    assert torch.equal(a.support, b.support) and torch.equal(a.query, b.query)
    assert not (torch.equal(a.support, c.support) and torch.equal(a.query, c.query))


def test_iter_yields_flat_episodes_in_class_major_layout() -> None:
    labels = make_labels()
    sampler = EpisodeSampler(labels, 3, 2, 1, n_episodes=4, seed=2)
    reference = EpisodeSampler(labels, 3, 2, 1, n_episodes=4, seed=2).sample()
    flat = list(sampler)
    assert len(flat) == len(sampler) == 4
    for e, idx in enumerate(flat):
        expected = [
            *reference.support[e, 0].tolist(), *reference.query[e, 0].tolist(),
            *reference.support[e, 1].tolist(), *reference.query[e, 1].tolist(),
            *reference.support[e, 2].tolist(), *reference.query[e, 2].tolist(),
        ]
        assert idx == expected


class LabelledImages(Dataset):
    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.images = labels.float()[:, None, None, None].expand(-1, 1, 3, 3)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i]


def test_works_as_dataloader_batch_sampler() -> None:
    ds = LabelledImages(make_labels())
    n, k, q = 4, 2, 3
    loader = DataLoader(ds, batch_sampler=EpisodeSampler(ds, n, k, q, n_episodes=5, seed=0))
    batches = list(loader)
    assert len(batches) == 5
    for x, y in batches:
        assert x.shape == (n * (k + q), 1, 3, 3)
        support, query = split_episode(x, n, k, q)
        s_lab, q_lab = split_episode(y, n, k, q)
        assert support.shape == (n, k, 1, 3, 3) and query.shape == (n, q, 1, 3, 3)
        assert (s_lab == s_lab[:, :1]).all() and (q_lab == s_lab[:, :1]).all()
        assert len(set(s_lab[:, 0].tolist())) == n
        torch.testing.assert_close(support[:, :, 0, 0, 0], s_lab.float())


def test_split_episode_layout() -> None:
    n, k, q = 3, 2, 4
    x = torch.arange(n * (k + q))
    support, query = split_episode(x, n, k, q)
    assert support.tolist() == [[0, 1], [6, 7], [12, 13]]
    assert query.tolist() == [[2, 3, 4, 5], [8, 9, 10, 11], [14, 15, 16, 17]]


def test_errors() -> None:
    labels = make_labels()
    with pytest.raises(ValueError, match=r"11-way .* need 11 classes .* 10 of 10 classes qualify"):
        EpisodeSampler(labels, n_way=11)
    with pytest.raises(ValueError, match=r"K\+Q=7 images; 0 of 10 classes qualify \(the largest has 6\)"):
        EpisodeSampler(labels, n_way=2, k_shot=4, n_query=3)
    with pytest.raises(ValueError, match="empty"):
        EpisodeSampler(torch.tensor([], dtype=torch.long), n_way=2)
    with pytest.raises(ValueError, match=r"same_group=True needs the group of every image"):
        EpisodeSampler(labels, n_way=2, same_group=True)
    with pytest.raises(ValueError, match="n_way >= 2, k_shot >= 1, n_query >= 1"):
        EpisodeSampler(labels, n_way=1)
    with pytest.raises(ValueError, match="n_way >= 2, k_shot >= 1, n_query >= 1"):
        EpisodeSampler(labels, n_way=2, k_shot=0)


@contextmanager
def time_limit(seconds: int):
    """Turn a hang into a test failure (Unix main thread only; elsewhere no limit)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def fail(*_):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_many_episodes_over_large_classes() -> None:
    # 300 episodes x 2 classes x 5000 images: the sampler's path for large classes
    labels = torch.arange(2).repeat_interleave(5000)
    with time_limit(30):
        ep = EpisodeSampler(labels, 2, 5, 5, n_episodes=300, seed=0).sample()
    check_episodes(ep, labels)


def test_large_and_exactly_full_classes_together() -> None:
    # a class of exactly K+Q images next to large classes must not stall the draw
    labels = torch.cat([torch.zeros(5000), torch.ones(5000), torch.full((20,), 2.0)]).long()
    with time_limit(30):
        ep = EpisodeSampler(labels, 3, 5, 15, n_episodes=300, seed=0).sample()
    check_episodes(ep, labels)
    rows = ep.support.shape[0]
    small = torch.cat([ep.support, ep.query], -1)[labels[ep.support[:, :, 0]] == 2]
    assert small.shape == (rows, 20)
    assert (small.sort(-1).values == torch.arange(10000, 10020)).all()


def test_a_seeded_episode_draw_is_pinned_to_the_numbers_of_the_first_release() -> None:
    """Protocols compare models on the same episodes: the draw for a seed must not move."""
    labels = torch.tensor([4, 4, 9, 9, 9, 2, 2, 4, 2, 9, 7, 7])
    episodes = EpisodeSampler(labels, 3, 1, 1, 2, seed=5).sample()
    assert episodes.support.tolist() == [[[4], [7], [6]], [[0], [2], [10]]]
    assert episodes.query.tolist() == [[[2], [1], [5]], [[7], [9], [11]]]


@pytest.mark.parametrize(("draw", "message"), [
    # before: "slice indices must be integers or None" from inside
    (lambda: EpisodeSampler(make_labels(), n_way=2.5), "n_way must be a whole number, got 2.5"),
    (lambda: EpisodeSampler(make_labels(), 2, k_shot=1.5), "k_shot must be a whole number, got 1.5"),
    # before: 1.7 episodes were silently cut to 1
    (lambda: EpisodeSampler(make_labels(), 2).sample(1.7),
     "n_episodes must be a whole number, got 1.7"),
    # before: an IndexError from inside ("index 8 is out of bounds for dimension 0 with size 5")
    (lambda: EpisodeSampler(make_labels(), 2, groups=torch.zeros(5, dtype=torch.long),
                            same_group=True),
     "groups must give the group of every image: got 5 groups for 60 labels"),
    # before: torch's "shape '[2, 3, 3]' is invalid for input of size 21"
    (lambda: split_episode(torch.randn(7, 3), 2, 1, 2),
     "a 2-way 1-shot 2-query episode holds 6 items, got a batch of 7: split it with the "
     "sampler's n_way, k_shot and n_query"),
])
def test_episodes_say_what_is_wrong(draw, message) -> None:
    with pytest.raises(ValueError, match=message):
        draw()
