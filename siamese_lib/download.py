"""Downloads of the files torchvision does not fetch: Lake's runs, the Vinyals splits, faces.

Each file is checked against the checksum of the copy the book was built with before it
is written, and written atomically, so a failed or tampered download leaves nothing
behind. Used only when a file is missing from the data folder; nothing here runs in the
tests or the book build, which read the files from ``SIAMESE_LIB_DATA``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
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
