"""Tests for exporting an embedding net: the exported model gives the same embeddings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from siamese_lib import export
from siamese_lib.export import export_onnx, export_torchscript
from siamese_lib.nets import EmbeddingNet, ShiftAveraged

NETS = {
    "plain": lambda: EmbeddingNet(width=8, embedding_dim=4, input_size=16),
    "normalize": lambda: EmbeddingNet(width=8, embedding_dim=4, input_size=16, normalize=True),
    "shift-averaged": lambda: ShiftAveraged(EmbeddingNet(width=8, embedding_dim=4,
                                                         input_size=16), 1),
}


def seeded(name: str) -> nn.Module:
    torch.manual_seed(0)
    return NETS[name]().eval()


def expected(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


@pytest.mark.parametrize("name", NETS)
def test_onnx_gives_the_same_embeddings_at_any_batch_size(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = seeded(name)
    path = export_onnx(net, tmp_path / "net.onnx")
    assert path == tmp_path / "net.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (1, 5):  # traced on one image: the batch axis is dynamic
        x = torch.rand(batch, 1, 16, 16)
        got = session.run(["embeddings"], {"images": x.numpy()})[0]
        assert torch.allclose(torch.from_numpy(got), expected(net, x), atol=1e-5)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_gives_the_same_embeddings(name: str, tmp_path: Path) -> None:
    net = seeded(name)
    loaded = torch.jit.load(export_torchscript(net, tmp_path / "net.pt"))
    x = torch.rand(5, 1, 16, 16)
    assert torch.allclose(loaded(x), expected(net, x), atol=1e-5)


def test_export_leaves_the_net_as_it_was(tmp_path: Path) -> None:
    net = seeded("plain").train().to(memory_format=torch.channels_last)  # as fit() leaves it
    export_onnx(net, tmp_path / "net.onnx")
    assert net.training
    assert net.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_a_failed_export_leaves_the_old_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(b"the old model")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(export.torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_onnx(seeded("plain"), path)
    assert path.read_bytes() == b"the old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]  # no temp file left


def test_input_shape_for_a_net_that_does_not_say(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    with pytest.raises(ValueError, match=r"does not say what images it takes: pass input_shape"):
        export_onnx(net, tmp_path / "net.onnx")
    with pytest.raises(ValueError, match=r"input_shape must be \(channels, height, width\)"):
        export_onnx(net, tmp_path / "net.onnx", input_shape=(4, 4))
    path = export_onnx(net, tmp_path / "net.onnx", input_shape=(1, 4, 4))
    x = torch.rand(2, 1, 4, 4)
    got = ort.InferenceSession(str(path)).run(None, {"images": x.numpy()})[0]
    assert torch.allclose(torch.from_numpy(got), expected(net, x), atol=1e-5)


def test_without_onnx_the_error_says_what_to_install(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match="needs the onnx package: pip install onnx"):
        export_onnx(seeded("plain"), tmp_path / "net.onnx")
    assert not (tmp_path / "net.onnx").exists()


def test_import_siamese_lib_does_not_import_onnx() -> None:
    code = "import sys, siamese_lib; print(sorted(m for m in sys.modules if 'onnx' in m " \
           "and not m.startswith('torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
