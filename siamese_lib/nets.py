"""The networks: one embedding net, and the Siamese network that applies it twice.

Taught in chapter 2, "Siamese networks and the contrastive loss" (the sister networks),
chapter 7, "Beyond the contrastive loss" (Koch's learned head), and chapter 8, "Toward
human level" (test-time shifts and ensembles).

A Siamese network is not two networks. It is ONE embedding network G applied to both
images of a pair, so the two "sister networks" share every weight by construction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .augment import shift
from .distances import euclidean
from .pairs import check_whole


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # conv-BN-ReLU-maxpool, with the ReLU after the pooling: the max of ReLUs is the ReLU of
    # the max, so the block computes the same, but the ReLU and its gradient touch a
    # quarter of the pixels (on a CPU a large share of the step is such memory traffic)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
    )


class _ShapeChecked(nn.Module):
    """Checks input shape up front, because a wrong size otherwise fails deep inside."""

    in_channels: int
    input_size: int

    def _check_input(self, x: torch.Tensor) -> None:
        name = type(self).__name__
        if not torch.is_tensor(x):
            raise TypeError(f"{name} takes a tensor batch (N, C, H, W), got a "
                            f"{type(x).__name__}: use torch.as_tensor(...)")
        if not x.is_floating_point():  # else torch's "expected scalar type Byte but found Float"
            raise ValueError(f"{name} takes floating-point images in [0, 1], got {x.dtype}: "
                             "convert uint8 images with siamese_lib.pairs.to_float")
        expected = (self.in_channels, self.input_size, self.input_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"{type(self).__name__} expects a batch of shape (N, {expected[0]}, "
                f"{expected[1]}, {expected[2]}), got {tuple(x.shape)}. Resize the images "
                f"to {expected[1]}x{expected[2]} with {expected[0]} channel(s), or build "
                "the net with matching in_channels/input_size."
            )


def input_shape(net: nn.Module | None) -> tuple[int, int, int] | None:
    """(C, H, W) of the images a net takes, looking through wrappers (ShiftAveraged,
    SiameseNetwork, Classifier); None when the net does not say (or is None)."""
    while net is not None and not hasattr(net, "input_size"):
        net = getattr(net, "embedding_net", None)
    if net is None:
        return None
    size = int(net.input_size)
    return int(getattr(net, "in_channels", 1)), size, size


class EmbeddingNet(_ShapeChecked):
    """Conv-4 embedding network G(x): four conv-BN-ReLU-maxpool blocks, then a linear map.

    The Conv-4 backbone is the one of Vinyals et al. (2016) and Snell et al. (2017).

    Args:
        in_channels: image channels (1 for MNIST and Omniglot).
        input_size: image height = width.
        width: channels of every conv block.
        embedding_dim: size of the output; ``None`` keeps the flattened conv features.
        depth: number of conv blocks (each halves the image).
        normalize: divide each embedding by its length, so it lies on the unit sphere.
            Distances are then bounded, D in [0, 2], and a margin means the same thing
            whatever the scale of the net's output: the contrastive loss can no longer
            shrink or blow up every distance at once instead of sorting the pairs.
        stem_stride: s > 1 folds each s x s patch of pixels into s^2 channels
            (``nn.PixelUnshuffle``) before the first block, so the blocks work on
            ``input_size // s`` pixels: a 56 x 56 image keeps its fine strokes at about the
            compute of a 28 x 28 one. ``input_size`` must be a multiple of s.
    """

    def __init__(
        self,
        in_channels: int = 1,
        input_size: int = 28,
        width: int = 64,
        embedding_dim: int | None = 64,
        depth: int = 4,
        normalize: bool = False,
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        # 17.5 or 0 failed (or built a net that fails) deep inside torch
        for name, value in (("in_channels", in_channels), ("input_size", input_size),
                            ("width", width), ("depth", depth), ("stem_stride", stem_stride)):
            check_whole(name, value)
        if embedding_dim is not None:
            check_whole("embedding_dim", embedding_dim)
        if input_size % stem_stride:
            raise ValueError(f"input_size {input_size} is not a multiple of stem_stride "
                             f"{stem_stride}: resize the images or pick another stride")
        inner_size = input_size // stem_stride
        if inner_size < 2**depth:
            raise ValueError(f"input_size {input_size} is too small for {depth} pooling blocks"
                             + (f" after a stem of stride {stem_stride}" if stem_stride > 1 else ""))
        self.in_channels, self.input_size = in_channels, input_size
        self.config: dict[str, Any] = dict(
            name="EmbeddingNet", in_channels=in_channels, input_size=input_size,
            width=width, embedding_dim=embedding_dim, depth=depth,
        )
        # only when on, so that the configs of older checkpoints still match
        if normalize:
            self.config["normalize"] = True
        if stem_stride > 1:
            self.config["stem_stride"] = stem_stride
        self.normalize = normalize
        stem = [nn.PixelUnshuffle(stem_stride)] if stem_stride > 1 else []
        first = in_channels * stem_stride**2
        blocks = [_conv_block(first if i == 0 else width, width) for i in range(depth)]
        self.features = nn.Sequential(*stem, *blocks, nn.Flatten())
        n_features = width * (inner_size // 2**depth) ** 2
        self.head = nn.Identity() if embedding_dim is None else nn.Linear(n_features, embedding_dim)
        self.output_dim = n_features if embedding_dim is None else embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch (N, C, H, W) of images in [0, 1] -> (N, output_dim)."""
        self._check_input(x)
        e = self.head(self.features(x))
        # in float32 under bfloat16 autocast too: the unit length must be exact
        return nn.functional.normalize(e.float(), dim=1) if self.normalize else e


class KochNet(_ShapeChecked):
    """The embedding net of Koch, Zemel and Salakhutdinov (2015) for 105x105 images.

    Conv 64@10x10, pool, 128@7x7, pool, 128@4x4, pool, 256@4x4, then a 4096-unit
    sigmoid layer. About 38 M parameters: meant for a GPU. BatchNorm is added after
    each convolution because it trains far faster than the paper's plain SGD set-up.
    """

    def __init__(self, in_channels: int = 1, input_size: int = 105, embedding_dim: int = 4096):
        super().__init__()
        self.in_channels, self.input_size = in_channels, input_size
        self.config: dict[str, Any] = dict(
            name="KochNet", in_channels=in_channels, input_size=input_size,
            embedding_dim=embedding_dim,
        )

        def block(c_in: int, c_out: int, k: int, pool: bool) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k), nn.BatchNorm2d(c_out), nn.ReLU()]
            return layers + [nn.MaxPool2d(2)] if pool else layers

        self.features = nn.Sequential(
            *block(in_channels, 64, 10, True), *block(64, 128, 7, True),
            *block(128, 128, 4, True), *block(128, 256, 4, False), nn.Flatten(),
        )
        with torch.no_grad():
            n_features = self.features(torch.zeros(1, in_channels, input_size, input_size)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_features, embedding_dim), nn.Sigmoid())
        self.output_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed a batch (N, C, 105, 105) -> (N, embedding_dim)."""
        self._check_input(x)
        return self.head(self.features(x))


class SiameseNetwork(nn.Module):
    """Two sister networks with one set of weights: ONE embedding net applied to both inputs.

    ``forward(x1, x2)`` returns the two embeddings; ``distance(x1, x2)`` returns D.
    Both images go through the net in one batch, which is faster than two calls and
    gives BatchNorm the statistics of the whole pair batch.
    """

    def __init__(self, embedding_net: nn.Module) -> None:
        super().__init__()
        self.embedding_net = embedding_net

    @property
    def config(self) -> dict[str, Any]:
        """The embedding net's configuration (what a checkpoint stores)."""
        return self.embedding_net.config

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """G(x) for a batch of images."""
        return self.embedding_net(x)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed both images of every pair -> (G(x1), G(x2))."""
        if x1.shape != x2.shape:
            raise ValueError(
                f"both inputs of a pair batch must have the same shape, got "
                f"{tuple(x1.shape)} and {tuple(x2.shape)}"
            )
        return self.embedding_net(torch.cat([x1, x2])).chunk(2)

    def distance(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """D = ||G(x1) - G(x2)||, one distance per pair."""
        # in float32 even when the net ran in bfloat16 (autocast): D's last digits decide ties
        e1, e2 = self(x1, x2)
        return euclidean(e1.float(), e2.float())


class Classifier(nn.Module):
    """A standard classifier: an embedding net followed by a linear layer over known classes.

    Its ``embedding_net`` doubles as a feature extractor for the one-shot baseline.
    """

    def __init__(self, embedding_net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.embedding_net = embedding_net
        check_whole("num_classes", num_classes)
        self.classifier = nn.Linear(embedding_net.output_dim, num_classes)
        self.config: dict[str, Any] = dict(
            name="Classifier", embedding=embedding_net.config, num_classes=num_classes
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, num_classes)."""
        return self.classifier(torch.relu(self.embedding_net(x)))


class ShiftAveraged(nn.Module):
    """Test-time augmentation: G(x) averaged over copies of x shifted by up to ``pixels``.

    Each image is embedded at every translation (dx, dy) with ``|dx|, |dy| <= pixels``,
    (2 * pixels + 1)**2 copies, and the embeddings are averaged. A one-shot test then does
    not hinge on where in the frame a single example was drawn. It costs that many forward
    passes per image and changes no weight; wrap a trained net for evaluation only.

    Args:
        embedding_net: the trained embedding net G.
        pixels: the largest shift in each direction (1 gives 9 copies).
    """

    def __init__(self, embedding_net: nn.Module, pixels: int = 1) -> None:
        super().__init__()
        check_whole("pixels", pixels, minimum=0)
        self.embedding_net, self.pixels = embedding_net, pixels
        self.output_dim = embedding_net.output_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean embedding of the shifted copies of a batch (N, C, H, W) -> (N, d)."""
        layout = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                  else torch.contiguous_format)
        offsets = range(-self.pixels, self.pixels + 1)
        # one forward per shift, not one huge batch: the memory of a single batch suffices
        total = sum(self.embedding_net(shift(x, dx, dy).contiguous(memory_format=layout)).float()
                    for dx in offsets for dy in offsets)
        return total / len(offsets) ** 2


class EmbeddingEnsemble(nn.Module):
    """Several trained embedding nets as one: their unit-length embeddings, side by side.

    Each member's embedding is divided by its length, so that members trained with
    different losses (and so at different scales) weigh the same, and the concatenation is
    divided by the square root of their number: it has unit length too, and its squared
    distance is the mean of the members' squared distances. A one-shot test then names a
    query after the support image that the members, on average, find nearest. For
    distance models only: a learned similarity (Koch's head) scores one member's embeddings.

    Args:
        embedding_nets: the trained members, each taking the same images.
    """

    def __init__(self, embedding_nets: list[nn.Module]) -> None:
        super().__init__()
        if len(embedding_nets) < 1:
            raise ValueError("an ensemble needs at least one embedding net")
        self.members = nn.ModuleList(embedding_nets)
        self.output_dim = sum(net.output_dim for net in embedding_nets)
        self.embedding_net = embedding_nets[0]  # input_shape() looks through it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' embeddings of a batch (N, C, H, W), each of unit length -> (N, d)."""
        parts = [nn.functional.normalize(net(x).float(), dim=1) for net in self.members]
        return torch.cat(parts, dim=1) / len(parts) ** 0.5


_NETS = {"EmbeddingNet": EmbeddingNet, "KochNet": KochNet}


def build_net(config: dict[str, Any]) -> nn.Module:
    """Rebuild a network from its ``config`` dict (as stored in a checkpoint)."""
    config = dict(config)
    name = config.pop("name", None)
    if name == "Classifier":
        return Classifier(build_net(config["embedding"]), config["num_classes"])
    if name not in _NETS:
        raise ValueError(f"unknown network {name!r}; known: {sorted(_NETS) + ['Classifier']}")
    return _NETS[name](**config)
