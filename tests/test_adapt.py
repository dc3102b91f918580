"""Chapter 8's levers: trials scored one by one, test-time adaptation, ensembles."""

from __future__ import annotations

import pytest
import torch

from siamese_lib.adapt import adapt_to_support
from siamese_lib.data import LakeRun
from siamese_lib.episodes import EpisodeSampler
from siamese_lib.evaluate import (
    embed_images,
    episode_trials,
    lake_runs_accuracy,
    one_shot_accuracy,
    trials_accuracy,
)
from siamese_lib.nets import EmbeddingEnsemble, EmbeddingNet


def _glyphs(n_classes: int, per_class: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy copies of random 28x28 uint8 "glyphs", ``per_class`` of each class."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, 1, 28, 28, generator=g)
    x = protos.repeat_interleave(per_class, 0) + 0.3 * torch.rand(n_classes * per_class, 1, 28,
                                                                     28, generator=g)
    return (x.clamp(0, 1) * 255).to(torch.uint8), torch.arange(n_classes).repeat_interleave(per_class)


def test_trials_of_episodes_score_as_one_shot_accuracy_does(tiny_net) -> None:
    images, labels = _glyphs(6, 3)
    episodes = EpisodeSampler(labels, 5, 1, 2, 12, seed=3).sample()
    by_trials = trials_accuracy(tiny_net, episode_trials(images, episodes))
    by_embedding = one_shot_accuracy(embed_images(tiny_net, images), episodes)
    assert by_trials.mean == pytest.approx(by_embedding.mean)
    assert by_trials.n == 12 * 5 * 2  # every query is a trial


def test_episode_trials_want_one_shot_episodes() -> None:
    images, labels = _glyphs(4, 3)
    episodes = EpisodeSampler(labels, 3, 2, 1, 2, seed=0).sample()
    with pytest.raises(ValueError, match="1-shot episodes, got K=2"):
        next(episode_trials(images, episodes))


def test_no_trials_say_so(tiny_net) -> None:
    with pytest.raises(ValueError, match="no trials to score"):
        trials_accuracy(tiny_net, [])


def test_adapt_is_called_once_per_trial_with_its_support_set(tiny_net) -> None:
    images, _ = _glyphs(5, 2)
    runs = [LakeRun(images[0::2], images[1::2], torch.arange(5)) for _ in range(3)]
    seen = []

    def adapt(net, support):
        seen.append(support)
        return net

    plain = lake_runs_accuracy(tiny_net, runs)
    adapted = lake_runs_accuracy(tiny_net, runs, adapt=adapt)
    assert adapted.mean == plain.mean
    assert len(seen) == 3 and all(torch.equal(s, images[0::2]) for s in seen)


def test_adaptation_tunes_a_copy_and_leaves_the_net_alone(tiny_net) -> None:
    images, _ = _glyphs(5, 1)
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    adapted = adapt_to_support(tiny_net, images, steps=3, lr=1e-2, copies=2)
    after = tiny_net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original is untouched
    changed = [k for k, v in adapted.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed)  # the copy learned
    # batch norm kept the statistics of training: one trial's images would move them
    assert not any(k.endswith(("running_mean", "running_var")) for k in changed)
    assert not adapted.training


def test_adaptation_teaches_the_net_to_recognise_distorted_support_images() -> None:
    from siamese_lib.augment import RandomAffine
    from siamese_lib.pairs import to_float

    torch.manual_seed(0)
    net = EmbeddingNet(width=8, embedding_dim=8)
    images, _ = _glyphs(6, 1, seed=1)
    g = torch.Generator().manual_seed(99)  # distortions the adaptation never drew
    queries = RandomAffine()(to_float(images).repeat(5, 1, 1, 1), g)

    def named_right(model) -> float:  # share of distorted copies nearest their own original
        d = torch.cdist(embed_images(model, queries), embed_images(model, images))
        return float((d.argmin(1) == torch.arange(6).repeat(5)).float().mean())

    assert named_right(net) < 0.3
    assert named_right(adapt_to_support(net, images, steps=40, lr=1e-2, copies=4)) > 0.7


def test_adaptation_is_seeded(tiny_net) -> None:
    images, _ = _glyphs(4, 1)
    a, b = (adapt_to_support(tiny_net, images, steps=2, lr=1e-2, seed=7) for _ in range(2))
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


@pytest.mark.parametrize("support, message", [
    (torch.zeros(1, 1, 28, 28), "at least 2 images"),
    (torch.zeros(3, 28, 28), "at least 2 images"),
])
def test_adaptation_says_what_is_wrong_with_the_support(tiny_net, support, message) -> None:
    with pytest.raises(ValueError, match=message):
        adapt_to_support(tiny_net, support)


def test_adaptation_refuses_counts_that_are_not_whole(tiny_net) -> None:
    with pytest.raises(ValueError, match="steps must be a whole number >= 0, got 2.5"):
        adapt_to_support(tiny_net, torch.zeros(2, 1, 28, 28), steps=2.5)


def test_an_ensemble_averages_its_members_squared_distances() -> None:
    torch.manual_seed(0)
    members = [EmbeddingNet(width=8, embedding_dim=4), EmbeddingNet(width=8, embedding_dim=6)]
    for m in members:
        m.eval()
    ensemble = EmbeddingEnsemble(members).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        e = ensemble(x)
        units = [torch.nn.functional.normalize(m(x), dim=1) for m in members]
    assert e.shape == (5, 10) and ensemble.output_dim == 10
    assert torch.allclose(e.norm(dim=1), torch.ones(5), atol=1e-5)
    expected = sum(torch.cdist(u, u) ** 2 for u in units) / 2
    assert torch.allclose(torch.cdist(e, e) ** 2, expected, atol=1e-5)


def test_an_ensemble_needs_members() -> None:
    with pytest.raises(ValueError, match="at least one embedding net"):
        EmbeddingEnsemble([])
