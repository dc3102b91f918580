"""Downloads of the book's data files, and the one place that explains a failed one.

Taught on the set-up page (where the data folder comes from). Each file is checked
against the checksum of the copy the book was built with before it is written, and
written atomically, so a failed or tampered download leaves nothing behind. Every fetch
goes through :func:`fetch_bytes`, which bounds the wait with a time-out of its own (no
process-wide socket setting). :func:`download_or_explain` runs a download only when
something is missing and, if it fails, says where to put the files by hand. Nothing here
runs in the tests or the book build, which read the files from ``SIAMESE_LIB_DATA``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .files import atomic_write

TIMEOUT_S = 20.0

LAKE_RUNS_URL = ("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
                 "one-shot-classification/all_runs.zip")
LAKE_RUNS_MD5 = "e8996daecdf12afeeb4a53a179f06b19"

VINYALS_URL = ("https://raw.githubusercontent.com/jakesnell/prototypical-networks/master/"
               "data/omniglot/splits/vinyals/{split}.txt")
VINYALS_SHA256 = {
    "train": "984522c194c30fb678ce53304a160a42faf5403ad4f9a67010f32dd3a35738e0",
    "val": "11f99e54faee3e26f53d3231c1cceac5bf7b8730e9be31cb6dab256551dc0c1a",
    "test": "845264cc5c156180828ccf17915668b17ee21424d0170df6e7d81676aa5d1204",
    "trainval": "5276ae50c755596d0bff7f2284e85625695549a85ee6e36b6491ad1e5d1cc26a",
}

#: Where MNIST's four archives are found (tried in this order).
MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "http://yann.lecun.com/exdb/mnist/")
#: MNIST's four archives, with the md5 torchvision checks them against.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

#: Omniglot's two official archives, with the md5 torchvision checks them against.
OMNIGLOT_URL = ("https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
                "images_{subset}.zip")
OMNIGLOT_MD5 = {
    "background": "68d2efa1b9178cc56df9314c21c6e718",
    "evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}

# The AT&T (ORL) faces in the layout of the article's code: data/faces/{training,testing}/sNN
ATT_FACES_URL = ("https://github.com/harveyslash/Facial-Similarity-with-Siamese-Networks-in-"
                 "Pytorch/archive/refs/heads/master.zip")


def fetch_bytes(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """The body of ``url`` (the only function here that touches the network)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def download(
    url: str,
    path: str | os.PathLike,
    md5: str | None = None,
    sha256: str | None = None,
) -> Path:
    """Download ``url`` to ``path``, checked against ``md5`` or ``sha256``, written atomically.

    Raises:
        OSError: the download failed (no network, time-out, HTTP error) or the folder is
            not writable.
        ValueError: the file's checksum is not the expected one (nothing is written).
    """
    data = fetch_bytes(url)
    check_checksum(data, url, md5=md5, sha256=sha256)
    return atomic_write(path, lambda f: f.write(data))


def download_or_explain(
    present: Callable[[], bool], fetch: Callable[[], object], allowed: bool, missing: str,
    source: str | None = None,
) -> None:
    """Make sure something is on disk: nothing to do if ``present()``, else ``fetch()`` it.

    Whatever goes wrong in the download (offline, a time-out, a read-only data folder, a
    changed file) the advice is the same, so every failure becomes one FileNotFoundError.

    Args:
        present: whether the files are already in place (checked again after the fetch).
        fetch: downloads them; it may raise anything.
        allowed: whether to try ``fetch`` at all (the loaders' ``download`` argument).
        missing: what is missing and how to put it there by hand (one or two sentences).
        source: where ``fetch`` downloads from, for the message (an HTTP error alone does
            not say).

    Raises:
        FileNotFoundError: ``missing``, plus why the download failed, if the files are
            still not in place.
    """
    if present():
        return
    cause = None
    if allowed:
        try:
            fetch()
        except Exception as err:
            cause = err
        if present():
            return
    where = f" from {source}" if source else ""
    raise FileNotFoundError(
        missing + (f" The download{where} failed: {cause!r}" if cause is not None else "")
    ) from cause


def ensure_file(path: Path, url: str, allowed: bool, missing: str,
                md5: str | None = None, sha256: str | None = None) -> Path:
    """``path``, downloaded from ``url`` (and checked) first if it is missing.

    Raises:
        FileNotFoundError: as for :func:`download_or_explain`.
    """
    download_or_explain(path.is_file, lambda: download(url, path, md5, sha256), allowed, missing,
                        source=url)
    return path


def check_checksum(data: bytes, name: str, md5: str | None = None,
                   sha256: str | None = None) -> None:
    """Raise ValueError if ``data`` does not have the expected md5 / sha256."""
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is None:
            continue
        got = hashlib.new(algorithm, data).hexdigest()
        if got != expected:
            raise ValueError(
                f"{name}: {algorithm} is {got}, expected {expected}; the file was not saved. "
                "The source may have changed: download it by hand and check it."
            )
