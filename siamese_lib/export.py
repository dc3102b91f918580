"""A trained embedding net as a file that other programs run: ONNX, or TorchScript.

Taught on the page "Your own images" (its last step); the file runs without this
library or Python.

The file holds the embedding net G only: images in, embeddings out. A one-shot
classifier or a verifier built on it compares the embeddings as the library does
(:class:`~siamese_lib.classifier.OneShotClassifier`, the Euclidean distance D); a learned
similarity head (Koch's) is not part of the file.

Both formats take float32 images (N, C, H, W) in [0, 1] (uint8 pixels divided by 255),
at the size the net was trained on, with any batch size N, and return (N, d) embeddings.

Nothing here runs at ``import siamese_lib``: ``torch.onnx`` needs the ``onnx`` package only
when a model is exported, and the check with ``onnxruntime`` is the user's (or a test's).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from .files import atomic_write
from .nets import input_shape as _net_input_shape

#: The name of the exported model's input, float32 images (N, C, H, W) in [0, 1].
INPUT_NAME = "images"
#: The name of the exported model's output, the (N, d) embeddings.
OUTPUT_NAME = "embeddings"


def export_onnx(
    net: nn.Module, path: str | os.PathLike, input_shape: Sequence[int] | None = None
) -> Path:
    """Save an embedding net as an ONNX model with a dynamic batch axis; returns the path.

    Args:
        net: the trained embedding net (e.g. ``EmbeddingNet``, or a ``ShiftAveraged`` one).
            It is copied to the CPU in eval mode; the net itself is left as it was.
        path: the ``.onnx`` file to write, atomically: a failed export leaves the old file.
        input_shape: (C, H, W) of one image; default: the net's ``in_channels`` and
            ``input_size``.

    Returns:
        The path written. Its input is named ``"images"``, its output ``"embeddings"``.

    Raises:
        ValueError: no ``input_shape`` and the net does not say what it takes.
        ModuleNotFoundError: the ``onnx`` package is not installed (see :func:`require_onnx`).
    """
    require_onnx()
    net, example = _prepared(net, input_shape)
    buffer = io.BytesIO()
    with _quiet_tracing():
        # the TorchScript-based exporter (dynamo=False): it works offline with torch alone
        # on torch 2.x, for every net of the library (ShiftAveraged included), where the
        # dynamo exporter needs onnxscript and changes from release to release
        torch.onnx.export(
            net, (example,), buffer, dynamo=False, input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def require_onnx() -> None:
    """Raise ModuleNotFoundError, saying what to install, when ``onnx`` is missing.

    The ONNX exporter of ``torch`` writes its file with the ``onnx`` package, and fails
    deep inside without it; the command line checks this before it loads a model.
    """
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ModuleNotFoundError("exporting to ONNX needs the onnx package: pip install onnx "
                                  "(and onnxruntime to run the file), or export TorchScript "
                                  "instead") from None


def export_torchscript(
    net: nn.Module, path: str | os.PathLike, input_shape: Sequence[int] | None = None
) -> Path:
    """Save an embedding net as TorchScript (``torch.jit.load`` reads it, from Python or C++).

    The net is traced on one example image; the traced convolutions and layers take any
    batch size. Arguments, return value and errors as for :func:`export_onnx`.
    """
    net, example = _prepared(net, input_shape)
    with _quiet_tracing():
        traced = torch.jit.trace(net, example)
        return atomic_write(path, lambda f: torch.jit.save(traced, f))


def _prepared(
    net: nn.Module, input_shape: Sequence[int] | None
) -> tuple[nn.Module, torch.Tensor]:
    """(a CPU, eval-mode, contiguous copy of the net, one example image of its size)."""
    if not isinstance(net, nn.Module):
        raise TypeError(f"export needs an embedding net (a torch.nn.Module), got "
                        f"{type(net).__name__}")
    shape = tuple(input_shape) if input_shape is not None else _net_input_shape(net)
    if shape is None:
        raise ValueError(f"{type(net).__name__} does not say what images it takes: pass "
                         "input_shape=(channels, height, width)")
    if len(shape) != 3 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of one image, "
                         f"got {shape}")
    # a copy: fit() leaves the weights channels-last, and the caller's net keeps its mode
    net = copy.deepcopy(net).cpu().eval().to(memory_format=torch.contiguous_format)
    return net, torch.zeros(1, *shape)


# notices of the exporters, not about the net: the TorchScript-based ONNX exporter's
# deprecation, torch.jit.trace's and save's, and constant folding of ShiftAveraged's slices
_EXPORTER_NOTICES = (
    "You are using the legacy TorchScript-based ONNX export",
    "The feature will be removed",
    r"`torch\.jit\.(trace|save)",
    "Constant folding - Only steps=1",
)


@contextlib.contextmanager
def _quiet_tracing() -> Iterator[None]:
    """Silence what tracing says about the nets' up-front shape checks (Python ``if``
    statements on the example's shape, which rightly become constants of the trace)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        for message in _EXPORTER_NOTICES:
            warnings.filterwarnings("ignore", message=message)
        yield
