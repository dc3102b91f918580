"""Shared fixtures for the siamese_lib core tests: tiny nets and small random data only."""

from __future__ import annotations

import pytest
import torch

from siamese_lib.config import anchor_environment
from siamese_lib.nets import EmbeddingNet

# `SIAMESE_LIB_DATA=../shared/data pytest` means ../shared/data from where pytest was typed,
# also in the subprocesses and temporary folders of the tests.
anchor_environment()

# The nets in these tests are tiny: one thread is far faster than several OpenMP threads
# fighting over a shared machine's cores (measured 100x on 2 busy cores).
torch.set_num_threads(1)


@pytest.fixture
def tiny_net() -> EmbeddingNet:
    """A seeded Conv-4 net small enough for a test: 8 channels, 4-d embeddings, 28x28 input."""
    torch.manual_seed(0)
    return EmbeddingNet(width=8, embedding_dim=4)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never download: a loader that would fetch a missing file gets an offline error."""
    import urllib.error

    from siamese_lib import download

    def offline(url: str, timeout: float = 0.0) -> bytes:
        raise urllib.error.URLError(f"tests never use the network (asked for {url})")

    monkeypatch.setattr(download, "fetch_bytes", offline)
