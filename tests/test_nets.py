"""Networks: one set of weights in a Siamese net, output shapes, input checks, rebuilding."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from siamese_lib.augment import shift
from siamese_lib.evaluate import embed_images
from siamese_lib.nets import (
    Classifier,
    EmbeddingNet,
    KochNet,
    ShiftAveraged,
    SiameseNetwork,
    build_net,
)


def test_siamese_network_has_one_set_of_weights(tiny_net: EmbeddingNet) -> None:
    siamese = SiameseNetwork(tiny_net)
    own = list(siamese.parameters())
    inner = list(tiny_net.parameters())
    assert len(own) == len(inner)
    assert sum(p.numel() for p in own) == sum(p.numel() for p in inner)
    assert [id(p) for p in own] == [id(p) for p in inner]


def test_siamese_branches_are_identical(tiny_net: EmbeddingNet) -> None:
    siamese = SiameseNetwork(tiny_net)
    x = torch.rand(3, 1, 28, 28)
    e1, e2 = siamese(x, x)
    assert e1.shape == e2.shape == (3, 4)
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    siamese.eval()
    torch.testing.assert_close(siamese(x, x)[0], tiny_net(x))


def test_changing_a_weight_changes_both_branches(tiny_net: EmbeddingNet) -> None:
    siamese = SiameseNetwork(tiny_net).eval()
    x1, x2 = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    before1, before2 = siamese(x1, x2)
    with torch.no_grad():
        tiny_net.head.weight.add_(0.5)
    after1, after2 = siamese(x1, x2)
    assert not torch.allclose(before1, after1)
    assert not torch.allclose(before2, after2)
    # and the new outputs are those of the (single) modified net
    torch.testing.assert_close(after1, tiny_net(x1))
    torch.testing.assert_close(after2, tiny_net(x2))


def test_both_branches_send_gradients_to_the_same_weights(tiny_net: EmbeddingNet) -> None:
    siamese = SiameseNetwork(tiny_net)
    x1, x2 = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    e1, _ = siamese(x1, x2)
    e1.sum().backward()
    grad_first = tiny_net.head.weight.grad.clone()
    tiny_net.zero_grad()
    e1, e2 = siamese(x1, x2)
    (e1.sum() + e2.sum()).backward()
    assert not torch.allclose(grad_first, tiny_net.head.weight.grad)


def test_siamese_distance_and_shape_check(tiny_net: EmbeddingNet) -> None:
    siamese = SiameseNetwork(tiny_net).eval()
    x1, x2 = torch.rand(2, 1, 28, 28), torch.rand(2, 1, 28, 28)
    expected = torch.linalg.norm(tiny_net(x1) - tiny_net(x2), dim=1)
    torch.testing.assert_close(siamese.distance(x1, x2), expected)
    with pytest.raises(ValueError, match="same shape"):
        siamese(x1, torch.rand(3, 1, 28, 28))
    assert siamese.config == tiny_net.config


@pytest.mark.parametrize(
    ("input_size", "embedding_dim", "expected_dim"),
    [
        (28, 4, 4),
        (105, 4, 4),
        (28, None, 8 * 1 * 1),  # 28 -> 14 -> 7 -> 3 -> 1
        (105, None, 8 * 6 * 6),  # 105 -> 52 -> 26 -> 13 -> 6
    ],
)
def test_embedding_net_output_shapes(input_size: int, embedding_dim, expected_dim: int) -> None:
    net = EmbeddingNet(input_size=input_size, width=8, embedding_dim=embedding_dim)
    out = net(torch.rand(2, 1, input_size, input_size))
    assert out.shape == (2, expected_dim)
    assert net.output_dim == expected_dim


def test_embedding_net_channels_and_depth() -> None:
    net = EmbeddingNet(in_channels=3, input_size=32, width=4, embedding_dim=None, depth=3)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 4 * 4 * 4)


@pytest.mark.parametrize(
    "shape", [(2, 1, 32, 32), (2, 3, 28, 28), (1, 28, 28), (2, 1, 28, 27)]
)
def test_embedding_net_rejects_wrong_input(tiny_net: EmbeddingNet, shape) -> None:
    with pytest.raises(ValueError, match=r"expects a batch of shape \(N, 1, 28, 28\)") as err:
        tiny_net(torch.rand(*shape))
    assert str(tuple(shape)) in str(err.value)


def test_embedding_net_rejects_too_small_input_size() -> None:
    with pytest.raises(ValueError, match="too small"):
        EmbeddingNet(input_size=8, depth=4)


def test_koch_net_output() -> None:
    torch.manual_seed(0)
    net = KochNet()
    assert 37e6 < sum(p.numel() for p in net.parameters()) < 40e6
    with pytest.raises(ValueError, match=r"\(N, 1, 105, 105\)"):
        net(torch.rand(2, 1, 28, 28))
    with torch.no_grad():
        out = net(torch.rand(2, 1, 105, 105))
    assert out.shape == (2, 4096)
    assert ((out > 0) & (out < 1)).all()  # the final sigmoid layer


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(width=8, embedding_dim=4),
        dict(in_channels=3, input_size=64, width=4, embedding_dim=None, depth=3),
        dict(width=8, embedding_dim=4, normalize=True),
        dict(input_size=56, width=8, embedding_dim=4, stem_stride=2),
    ],
)
def test_build_net_round_trip(kwargs) -> None:
    torch.manual_seed(1)
    net = EmbeddingNet(**kwargs).eval()
    rebuilt = build_net(net.config).eval()
    assert type(rebuilt) is EmbeddingNet
    assert rebuilt.config == net.config
    rebuilt.load_state_dict(net.state_dict())  # same parameter names and shapes
    x = torch.rand(2, net.in_channels, net.input_size, net.input_size)
    torch.testing.assert_close(rebuilt(x), net(x))


def test_build_net_classifier_round_trip() -> None:
    clf = Classifier(EmbeddingNet(width=8, embedding_dim=4), num_classes=3)
    rebuilt = build_net(clf.config)
    assert type(rebuilt) is Classifier and rebuilt.config == clf.config
    rebuilt.load_state_dict(clf.state_dict())
    assert rebuilt(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_build_net_koch_config_only() -> None:
    net = build_net(dict(name="KochNet", in_channels=1, input_size=105, embedding_dim=16))
    assert type(net) is KochNet and net.output_dim == 16


def test_build_net_does_not_mutate_config() -> None:
    config = EmbeddingNet(width=8, embedding_dim=4).config
    copy = dict(config)
    build_net(config)
    assert config == copy


def test_build_net_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown network 'ResNet'"):
        build_net(dict(name="ResNet"))


def test_shift_averaged_is_the_mean_over_every_shift(tiny_net: EmbeddingNet) -> None:
    tiny_net.eval()
    x = torch.rand(3, 1, tiny_net.input_size, tiny_net.input_size)
    with torch.no_grad():
        expected = torch.stack([tiny_net(shift(x, dx, dy)) for dx in (-1, 0, 1)
                                for dy in (-1, 0, 1)]).mean(0)
        got = ShiftAveraged(tiny_net, pixels=1)(x)
    torch.testing.assert_close(got, expected)
    assert not torch.allclose(got, tiny_net(x))  # the shifts change the embedding


def test_shift_averaged_by_zero_pixels_is_the_net(tiny_net: EmbeddingNet) -> None:
    tiny_net.eval()
    x = torch.rand(2, 1, tiny_net.input_size, tiny_net.input_size)
    with torch.no_grad():
        torch.testing.assert_close(ShiftAveraged(tiny_net, pixels=0)(x), tiny_net(x))
    with pytest.raises(ValueError, match="pixels"):
        ShiftAveraged(tiny_net, pixels=-1)


def test_shift_averaged_embeds_like_any_net(tiny_net: EmbeddingNet) -> None:
    images = torch.randint(0, 255, (5, 1, tiny_net.input_size, tiny_net.input_size),
                           dtype=torch.uint8)
    wrapped = ShiftAveraged(tiny_net)
    e = embed_images(wrapped, images, batch_size=2)
    assert e.shape == (5, wrapped.output_dim) == (5, tiny_net.output_dim)


def test_normalized_embeddings_lie_on_the_unit_sphere() -> None:
    torch.manual_seed(0)
    x = torch.rand(5, 1, 28, 28)
    net = EmbeddingNet(width=8, embedding_dim=4, normalize=True).eval()
    torch.testing.assert_close(net(x).norm(dim=1), torch.ones(5))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # exact unit length under bfloat16 too
        e = net(x)
    assert e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=1), torch.ones(5))
    plain = EmbeddingNet(width=8, embedding_dim=4)
    assert "normalize" not in plain.config  # older checkpoints' configs still match
    assert not torch.allclose(plain(x).norm(dim=1), torch.ones(5))


@pytest.mark.parametrize(("images", "error", "message"), [
    # before: torch's "expected scalar type Byte but found Float" from inside the convolution
    (torch.zeros(2, 1, 16, 16, dtype=torch.uint8), ValueError,
     r"EmbeddingNet takes floating-point images in \[0, 1\], got torch.uint8: convert uint8 "
     "images with siamese_lib.pairs.to_float"),
    (torch.zeros(2, 1, 16, 16, dtype=torch.long), ValueError,
     r"EmbeddingNet takes floating-point images .* got torch.int64"),
    # before: "'list' object has no attribute 'dim'"
    ([[0.0]], TypeError, r"EmbeddingNet takes a tensor batch \(N, C, H, W\), got a list"),
])
def test_nets_say_when_the_images_are_not_a_float_tensor(images, error, message) -> None:
    net = EmbeddingNet(input_size=16, width=4, embedding_dim=3, depth=2)
    with pytest.raises(error, match=message):
        net(images)


@pytest.mark.parametrize(("build", "message"), [
    # before: torch's "type must be tuple of ints, but got float" from nn.Linear
    (lambda: EmbeddingNet(input_size=17.5), "input_size must be a whole number >= 1, got 17.5"),
    # before: built, and failed in forward ("mat1 and mat2 shapes cannot be multiplied")
    (lambda: EmbeddingNet(input_size=4, depth=0), "depth must be a whole number >= 1, got 0"),
    # before: built nets with empty layers
    (lambda: EmbeddingNet(width=0), "width must be a whole number >= 1, got 0"),
    (lambda: EmbeddingNet(embedding_dim=0), "embedding_dim must be a whole number >= 1, got 0"),
    (lambda: Classifier(EmbeddingNet(), 0), "num_classes must be a whole number >= 1, got 0"),
    # before: "'float' object cannot be interpreted as an integer" at the first forward
    (lambda: ShiftAveraged(EmbeddingNet(), 1.5), "pixels must be a whole number >= 0, got 1.5"),
])
def test_nets_want_whole_numbers(build, message) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_a_stride_2_stem_sees_every_pixel_at_the_blocks_of_half_the_size() -> None:
    torch.manual_seed(0)
    big = EmbeddingNet(input_size=56, width=8, embedding_dim=4, stem_stride=2).eval()
    small = EmbeddingNet(input_size=28, width=8, embedding_dim=4).eval()
    # the blocks run at 28 x 28, on the 4 pixels of every 2 x 2 patch as channels
    assert big.features[1][0].in_channels == 4
    assert big.head.in_features == small.head.in_features
    x = torch.rand(1, 1, 56, 56)
    moved = x.clone()
    moved[..., 0, 0] += 0.5  # one pixel of the 56 x 56 image: a 28 x 28 net could not see it
    assert not torch.allclose(big(x), big(moved))
    with pytest.raises(ValueError, match="not a multiple of stem_stride 2"):
        EmbeddingNet(input_size=57, stem_stride=2)
    with pytest.raises(ValueError, match="after a stem of stride 4"):
        EmbeddingNet(input_size=56, stem_stride=4, depth=4)


def test_the_relu_after_the_pooling_computes_the_textbook_block() -> None:
    """conv-BN-ReLU-maxpool as the papers draw it: same output, same gradients."""
    torch.manual_seed(0)
    net = EmbeddingNet(width=8, embedding_dim=4).train()
    textbook = EmbeddingNet(width=8, embedding_dim=4).train()
    textbook.load_state_dict(net.state_dict())
    for block in textbook.features[:4]:
        conv, bn, pool, relu = block
        assert isinstance(pool, nn.MaxPool2d) and isinstance(relu, nn.ReLU)
        block[2], block[3] = relu, pool  # back to the order of the papers
    x = torch.randn(6, 1, 28, 28)
    out, ref = net(x), textbook(x)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    out.square().sum().backward()
    ref.square().sum().backward()
    for (name, p), q in zip(net.named_parameters(), textbook.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, rtol=0, atol=0, msg=name)
