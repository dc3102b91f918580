"""The GPU code paths, on a CPU-only machine: the ``meta`` device stands in for the GPU.

A ``meta`` tensor has a shape, a dtype and a device but no values, and an operation that
mixes it with a CPU tensor raises the device-mismatch error that CUDA mixed with the CPU
raises. Two ways to reach the GPU paths without a GPU:

- put the inputs (or a learned head) on ``meta`` and check that the results stay there;
  where a function ends by reading a value (``float``), which needs a real device, the
  test records the tensor it reads instead;
- keep the inputs on the CPU and make ``meta`` the default device: a tensor the code
  creates without naming its inputs' device then lands on ``meta``, as such a tensor
  lands on the CPU next to CUDA embeddings, and mixing the two raises. The values can
  still be checked, since the inputs are real.
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import siamese_lib
from siamese_lib import evaluate, precision
from siamese_lib.augment import RandomAffine, RandomThickening, shift
from siamese_lib.classifier import predict_classes
from siamese_lib.data import ImageSet
from siamese_lib.episodes import EpisodeSampler
from siamese_lib.evaluate import (
    Accuracy,
    accuracy_at_threshold,
    best_threshold,
    classify_queries,
    lake_runs_accuracy,
    one_shot_accuracy,
    roc_curve,
)
from siamese_lib.imageset import gather as rows
from siamese_lib.losses import ContrastiveLoss, KochLoss
from siamese_lib.nets import Classifier, EmbeddingNet, ShiftAveraged, SiameseNetwork
from siamese_lib.pairs import all_pairs, class_balanced_batches, pair_batches
from siamese_lib.precision import (
    BF16_ENV,
    CHANNELS_LAST_ENV,
    autocast,
    autocast_dtype,
    memory_format,
    pick_device,
    use_channels_last,
)
from siamese_lib.protocols import evaluate_protocols
from siamese_lib.recipes import RECIPES, TrainingData, _validator
from siamese_lib.train import fit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not installed
    sys.path.insert(0, str(ROOT))

from benchmarks import compute, defaults, evaluation, pipeline, speed, timing, training  # noqa: E402

META = torch.device("meta")


@pytest.fixture
def read_values(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """The per-episode (or per-trial) accuracies the evaluation reads its result from.

    ``mean_ci95`` reads values, which meta tensors do not have: it records its input
    and returns a made-up accuracy of 0.25.
    """
    seen: list[torch.Tensor] = []

    def record(values: torch.Tensor) -> Accuracy:
        seen.append(values)
        return Accuracy(0.25, 0.0, len(values))

    monkeypatch.setattr(evaluate, "mean_ci95", record)
    return seen


def _embeddings(n_classes: int = 6, per_class: int = 4, d: int = 8):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    return torch.randn(len(labels), d, generator=g), labels


def _images(n: int = 24, size: int = 28) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)


# ------------------------------------------------------- evaluation: labels follow the data


def test_one_shot_accuracy_builds_its_answers_where_the_embeddings_are() -> None:
    emb, labels = _embeddings()
    episodes = EpisodeSampler(labels, 5, 1, 2, 30, seed=0).sample()
    expected = one_shot_accuracy(emb, episodes)
    head = KochLoss(emb.shape[1])
    expected_koch = one_shot_accuracy(emb, episodes, head.similarity)
    with torch.device(META):  # a tensor made without the embeddings' device lands here
        assert one_shot_accuracy(emb, episodes) == expected
        assert one_shot_accuracy(emb, episodes, head.similarity) == expected_koch


def test_one_shot_accuracy_keeps_device_embeddings_on_their_device(read_values) -> None:
    emb, labels = _embeddings()
    episodes = EpisodeSampler(labels, 5, 1, 2, 30, seed=0).sample()
    assert one_shot_accuracy(emb.to(META), episodes, chunk=7).mean == 0.25
    (per_episode,) = read_values
    assert per_episode.device == META and per_episode.shape == (30,)


def test_lake_runs_answers_follow_the_images(read_values) -> None:
    # pixels (model=None) stay on the images' device: 3 runs of 4 classes on the meta device
    runs = [SimpleNamespace(train=_images(4).to(META), test=_images(4).to(META),
                            answers=torch.tensor([2, 0, 3, 1])) for _ in range(3)]
    assert lake_runs_accuracy(None, runs).mean == 0.25
    (trials,) = read_values
    assert trials.device == META and trials.shape == (12,)


@pytest.mark.parametrize("rule", ["nearest", "prototype"])
def test_predict_classes_makes_its_tensors_where_the_embeddings_are(rule: str) -> None:
    support, labels = _images(12), torch.arange(4).repeat(3)
    queries = _images(5)
    head = KochLoss(28 * 28)
    expected = predict_classes(None, support, labels, queries, rule=rule)
    expected_koch = predict_classes(None, support, labels, queries, head.similarity, rule)
    with torch.device(META):
        got = predict_classes(None, support, labels, queries, rule=rule)
        got_koch = predict_classes(None, support, labels, queries, head.similarity, rule)
    for g, e in ((got, expected), (got_koch, expected_koch)):
        assert g.labels.device.type == "cpu"
        assert torch.equal(g.labels, e.labels) and torch.equal(g.scores, e.scores)


def test_verification_makes_its_tensors_where_the_distances_are() -> None:
    g = torch.Generator().manual_seed(2)
    y = torch.arange(40) % 2
    d = torch.rand(40, generator=g) + y  # dissimilar pairs (Y = 1) are farther on average
    threshold, roc, acc = best_threshold(d, y), roc_curve(d, y), accuracy_at_threshold(d, y, 1.0)
    with torch.device(META):
        assert best_threshold(d, y) == threshold
        assert accuracy_at_threshold(d, y, 1.0) == acc
        got = roc_curve(d, y)
    assert torch.equal(got.tpr, roc.tpr) and torch.equal(got.thresholds, roc.thresholds)
    assert (got.auc, got.eer, got.eer_threshold) == (roc.auc, roc.eer, roc.eer_threshold)


@pytest.mark.parametrize("verify", [
    lambda d, y: accuracy_at_threshold(d, y, 1.0), best_threshold, roc_curve,
], ids=["accuracy_at_threshold", "best_threshold", "roc_curve"])
def test_verification_moves_the_pair_labels_to_the_distances(verify) -> None:
    # the pair sampler's labels are on the CPU, the distances of GPU embeddings are not:
    # the only error left must be reading a value, which a real device has
    d, y = torch.rand(40).to(META), torch.arange(40) % 2
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        verify(d, y)


# --------------------------------------------------------- a learned head on another device


def test_classify_queries_scores_on_the_heads_device() -> None:
    emb, labels = _embeddings()
    episodes = EpisodeSampler(labels, 5, 1, 2, 3, seed=0).sample()
    head = KochLoss(emb.shape[1]).to(META)  # as fit() leaves it: on the training device
    support = rows(emb, episodes.support)
    query = rows(emb, episodes.query.flatten(1))
    for rule in ("nearest", "prototype"):
        pred = classify_queries(support, query, head.similarity, rule)
        assert pred.device == META and pred.shape == (3, 10)


def test_predict_classes_scores_on_the_heads_device() -> None:
    head = KochLoss(28 * 28).to(META)
    pred = predict_classes(None, _images(12), torch.arange(4).repeat(3), _images(5),
                           head.similarity)
    assert pred.labels.device == META and pred.labels.shape == (5,)
    assert pred.scores.shape == (5, 4)


def test_koch_validator_scores_cpu_embeddings_with_the_training_devices_head(
    tiny_net, read_values
) -> None:
    """omniglot-koch stopped after its first epoch on CUDA: the validator gave the CPU
    embeddings of embed_images to the head fit() keeps on the GPU."""
    images, labels = _images(40), torch.arange(10).repeat(4)
    data = TrainingData(images, labels, images, labels, 10)
    loss_fn = KochLoss(tiny_net.output_dim).to(META)
    validate = _validator(RECIPES["omniglot-koch"], data, loss_fn)
    assert validate(tiny_net) == 0.25
    (per_episode,) = read_values
    assert per_episode.device == META and per_episode.dim() == 1 and len(per_episode) > 0
    # the head stays where training needs it (its optimiser state is there)
    assert loss_fn.head.weight.device == META


def test_protocols_score_with_a_head_on_another_device(monkeypatch, read_values) -> None:
    from siamese_lib import protocols

    labels = torch.arange(6).repeat_interleave(4)
    small = ImageSet(_images(24), labels, [f"c{i}" for i in range(6)])
    monkeypatch.setattr(protocols.datasets, "load_omniglot", lambda subset: small)
    head = KochLoss(28 * 28).to(META)
    acc = evaluate_protocols(None, ["omniglot-5way"], head.similarity, n_episodes=8,
                             seed=[0, 1])["omniglot-5way"]
    assert acc.mean == 0.25 and acc.n == 16
    assert [v.device for v in read_values] == [META, META]


# ------------------------------------------------------------ samplers, augmentation, nets


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return RandomThickening()(RandomAffine()(x, g), g)


@pytest.mark.parametrize("augment", [None, _augment], ids=["plain", "augmented"])
def test_pair_batches_stay_on_the_images_device(augment) -> None:
    images, labels = _images().to(META), torch.arange(6).repeat(4)
    x1, x2, y = next(pair_batches(images, labels, 8, 1, augment=augment))
    assert [t.device for t in (x1, x2, y)] == [META] * 3
    assert x1.shape == x2.shape == (8, 1, 28, 28) and x1.dtype == torch.float32
    # an explicit device still wins
    cpu = next(pair_batches(_images(), labels, 8, 1, augment=augment, device=META))
    assert [t.device for t in cpu] == [META] * 3


@pytest.mark.parametrize("augment", [None, _augment], ids=["plain", "augmented"])
def test_class_balanced_batches_stay_on_the_images_device(augment) -> None:
    images, labels = _images().to(META), torch.arange(6).repeat(4)
    x, batch_labels = next(class_balanced_batches(images, labels, 3, 2, 1, augment=augment))
    assert x.device == batch_labels.device == META
    assert x.shape == (6, 1, 28, 28) and batch_labels.shape == (6,)


def test_all_pairs_are_on_the_labels_device() -> None:
    i, j, y = all_pairs(torch.arange(5).to(META))
    assert i.device == j.device == y.device == META and i.shape == y.shape == (10,)


def test_rows_gathers_on_the_data_device_with_a_cpu_index() -> None:
    x = torch.zeros(6, 3, device=META)
    assert rows(x, torch.tensor([[0, 5], [2, 2]])).device == META


@pytest.mark.parametrize("transform", [
    lambda x: RandomAffine()(x, torch.Generator().manual_seed(0)),
    lambda x: RandomAffine(p=0.5)(x),
    lambda x: RandomThickening()(x, torch.Generator().manual_seed(0)),
    lambda x: shift(x, 2, -1),
], ids=["affine", "affine-some", "thickening", "shift"])
def test_augmentation_stays_on_the_batch_device(transform) -> None:
    x = torch.zeros(4, 1, 28, 28, device=META)
    out = transform(x)
    assert out.device == META and out.shape == x.shape and out.dtype == x.dtype


def test_nets_stay_on_their_device() -> None:
    net = EmbeddingNet(width=8, embedding_dim=4).to(META)
    x = torch.zeros(3, 1, 28, 28, device=META)
    siamese = SiameseNetwork(net)
    outputs = [net(x), *siamese(x, x), siamese.distance(x, x), ShiftAveraged(net)(x),
               Classifier(net, 5).to(META)(x)]
    assert [o.device for o in outputs] == [META] * 6
    assert [tuple(o.shape) for o in outputs] == [(3, 4), (3, 4), (3, 4), (3,), (3, 4), (3, 5)]


# ------------------------------------------------------------ the device and precision policy

CPU = torch.device("cpu")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with neither CUDA nor Apple MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "_mps_available", lambda: False)


def test_pick_device_chooses_the_cpu_without_a_gpu_and_takes_what_is_asked_for(no_gpu) -> None:
    assert pick_device() == CPU
    assert pick_device("cpu") == pick_device(CPU) == CPU
    assert pick_device("meta") == META  # a device type that needs no hardware passes through
    # the old home of the name and the top level are the same function
    assert siamese_lib.pick_device is pick_device
    from siamese_lib.config import pick_device as from_config
    assert from_config is pick_device


@pytest.mark.parametrize(("device", "message"), [
    ("cuda", "'cuda' asked for, but CUDA is not available on this machine"),
    ("cuda:1", "'cuda:1' asked for, but CUDA is not available on this machine"),
    ("mps", "'mps' asked for, but Apple MPS is not available on this machine"),
    ("gpu", "unknown device 'gpu'; use cpu, cuda, cuda:N or mps"),
])
def test_pick_device_refuses_a_device_this_machine_lacks(no_gpu, device: str, message: str) -> None:
    """torch.device("cuda") on a CPU-only machine failed only at the first tensor moved
    there, deep inside fit() or embed_images()."""
    with pytest.raises(ValueError, match=message):
        siamese_lib.pick_device(device)


def test_pick_device_refuses_a_cuda_index_past_the_last_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pick_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"'cuda:2' asked for, but this machine has 2 CUDA "
                                         r"device\(s\): cuda:0 to cuda:1"):
        siamese_lib.pick_device("cuda:2")


@pytest.mark.parametrize("device", [0, 1.5, torch.float32])
def test_pick_device_says_what_a_device_is_when_given_something_else(device) -> None:
    with pytest.raises(TypeError, match="device must be a string such as 'cpu' or 'cuda', a "
                                        "torch.device or None, got"):
        siamese_lib.pick_device(device)


@pytest.mark.parametrize(("env", "expected"), [("0", None), ("1", torch.bfloat16)])
def test_autocast_dtype_override(monkeypatch: pytest.MonkeyPatch, env: str, expected) -> None:
    monkeypatch.setenv(BF16_ENV, env)
    assert autocast_dtype(CPU) == expected
    assert autocast_dtype(torch.device("cuda")) is None  # float32 on GPUs: not measured there


def test_autocast_dtype_follows_the_cpus_bfloat16_instructions(monkeypatch) -> None:
    monkeypatch.delenv(BF16_ENV, raising=False)
    for native, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda n=native: n)
        assert autocast_dtype(CPU) == expected
    with autocast(CPU):  # float32: autocast is off
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    with autocast(CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


@pytest.mark.parametrize(("amx", "avx512_bf16", "units"), [
    (True, True, ("AMX", "AVX512-BF16")),  # Intel Sapphire Rapids and later
    (False, True, ("AVX512-BF16",)),  # AMD Zen 4: bfloat16 without AMX still pays
    (False, False, ()),
])
def test_the_bfloat16_units_are_read_from_torchs_cpu_probes(monkeypatch, amx, avx512_bf16,
                                                            units) -> None:
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16,
                        raising=False)
    precision.cpu_bf16_units.cache_clear()
    try:
        assert precision.cpu_bf16_units() == units
        assert precision.cpu_has_native_bf16() == bool(units)
    finally:
        precision.cpu_bf16_units.cache_clear()  # the real CPU's answer for later tests


def test_channels_last_is_the_cpu_default_and_can_be_switched(monkeypatch) -> None:
    monkeypatch.delenv(CHANNELS_LAST_ENV, raising=False)
    assert use_channels_last(CPU) and memory_format(CPU) == torch.channels_last
    assert not use_channels_last(META) and memory_format(META) == torch.contiguous_format
    monkeypatch.setenv(CHANNELS_LAST_ENV, "0")
    assert memory_format(CPU) == torch.contiguous_format
    monkeypatch.setenv(CHANNELS_LAST_ENV, "1")
    assert memory_format(META) == torch.channels_last


def test_the_policy_takes_a_device_name_as_well_as_a_device(monkeypatch) -> None:
    """autocast("cpu") failed with "'str' object has no attribute 'type'"."""
    monkeypatch.setenv(BF16_ENV, "1")
    monkeypatch.delenv(CHANNELS_LAST_ENV, raising=False)
    assert autocast_dtype("cpu") == torch.bfloat16 and autocast_dtype("cuda:0") is None
    assert use_channels_last("cpu") and memory_format("cpu") == torch.channels_last
    with autocast("cpu"):
        assert torch.is_autocast_enabled("cpu")


def test_fit_and_embed_images_refuse_a_missing_gpu_before_any_work(no_gpu, tiny_net) -> None:
    """fit(device="cuda") on a CPU-only machine failed inside torch, at the first tensor
    moved there, with an error that named neither the argument nor what to pass."""
    with pytest.raises(ValueError, match="'cuda' asked for, but CUDA is not available"):
        fit(tiny_net, ContrastiveLoss(), lambda epoch: iter(()), 1, 1, device="cuda",
            progress=False)
    with pytest.raises(ValueError, match="'cuda:0' asked for, but CUDA is not available"):
        evaluate.embed_images(tiny_net, _images(2), device="cuda:0")


@pytest.mark.parametrize("env", [BF16_ENV, CHANNELS_LAST_ENV])
@pytest.mark.parametrize("value", ["yes", "true", "off", ""])
def test_a_switch_set_to_neither_0_nor_1_is_an_error(monkeypatch, env: str, value: str) -> None:
    """SIAMESE_LIB_BF16=yes silently meant float32 (only "1" switched it on)."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=f"{env}={value!r}: set it to 0 \\(off\\) or 1 \\(on\\)"):
        autocast_dtype(CPU) if env == BF16_ENV else use_channels_last(CPU)


# ------------------------------------------------------------------- the speed benchmark


def test_benchmark_clock_waits_for_cuda_only(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    timing.clock(torch.device("cpu"))
    assert waited == []
    timing.clock(torch.device("cuda", 1))
    assert waited == [torch.device("cuda", 1)]


@pytest.mark.parametrize("module", [timing, pipeline, training, evaluation, defaults, speed,
                                    compute], ids=lambda m: m.__name__)
def test_every_benchmark_timer_reads_the_clock(module) -> None:
    tree = ast.parse(inspect.getsource(module))
    clocks = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "clock"]
    inside = {id(n) for c in clocks for n in ast.walk(c)}
    timers = [n.lineno for n in ast.walk(tree)
              if isinstance(n, ast.Attribute) and n.attr in ("perf_counter", "time", "monotonic")
              and id(n) not in inside]
    assert timers == [], f"{module.__file__} reads a timer outside clock() at lines {timers}"


def test_training_timings_come_from_the_clock(monkeypatch, tiny_net) -> None:
    """Each step's data wait and compute are intervals of the (synchronising) clock."""
    ticks = iter(range(1000))
    monkeypatch.setattr(pipeline, "clock", lambda device: next(ticks))
    images, labels = _images(), torch.arange(6).repeat(4)
    timed = pipeline.Pipeline("p", tiny_net, ContrastiveLoss(),
                              pair_batches(images, labels, 4, 100), 4, torch.device("cpu"))
    timed.train_block(3, record=True)
    assert timed.data == [1, 1, 1] and timed.compute == [1, 1, 1]
    timed.data_block(2, record=True)
    assert timed.alone == [1, 1]
