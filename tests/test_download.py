"""Missing files are downloaded, checked against their checksum, and written atomically.

The network is replaced by a function that serves the real files from the data folder
(``tests/conftest.py`` makes every other test offline).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from siamese_lib import data, download
from siamese_lib.config import data_root


def need(*parts: str) -> Path:
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    return path


def serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> list[str]:
    """Answer fetch_bytes(url) from ``files``; returns the URLs asked for."""
    asked: list[str] = []

    def fetch(url: str, timeout: float = 0.0) -> bytes:
        asked.append(url)
        return files[url]

    monkeypatch.setattr(download, "fetch_bytes", fetch)
    return asked


def test_lake_runs_are_downloaded_when_missing(tmp_path: Path, monkeypatch) -> None:
    real = need("omniglot-official-small", "all_runs.zip").read_bytes()
    asked = serve(monkeypatch, {download.LAKE_RUNS_URL: real})
    runs = data.load_lake_runs(root=tmp_path)
    assert len(runs) == 20 and asked == [download.LAKE_RUNS_URL]
    assert (tmp_path / "omniglot-official-small" / "all_runs.zip").read_bytes() == real
    data.load_lake_runs(root=tmp_path)  # now on disk: no second download
    assert len(asked) == 1


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path: Path, monkeypatch) -> None:
    serve(monkeypatch, {download.LAKE_RUNS_URL: b"not the zip"})
    with pytest.raises(FileNotFoundError, match="md5 is .*expected e8996dae"):
        data.load_lake_runs(root=tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # no partial file


def test_offline_error_names_the_folder_and_the_url(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        data.load_lake_runs(root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "omniglot-official-small") in message
    assert download.LAKE_RUNS_URL in message and "tests never use the network" in message


def test_vinyals_split_is_downloaded_and_checked(tmp_path: Path, monkeypatch) -> None:
    real = need("omniglot-splits", "vinyals", "test.txt").read_bytes()
    (tmp_path / "omniglot-py").symlink_to(need("omniglot-py"))
    url = download.VINYALS_URL.format(split="test")
    serve(monkeypatch, {url: real})
    ds = data.load_omniglot_vinyals("test", root=tmp_path)
    assert ds.num_classes == 423 * 4
    assert (tmp_path / "omniglot-splits" / "vinyals" / "test.txt").read_bytes() == real


def faces_archive(source: Path, keep: int | None = None) -> bytes:
    """A zip laid out like the article's repository: <repo>-master/data/faces/<split>/sNN."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("repo-master/README.md", "the article's code")
        pgms = sorted(source.rglob("*.pgm"))[:keep]
        for pgm in pgms:
            archive.write(pgm, f"repo-master/data/faces/{pgm.relative_to(source)}")
    return buffer.getvalue()


def test_att_faces_are_downloaded_when_missing(tmp_path: Path, monkeypatch) -> None:
    source = need("att_faces")
    serve(monkeypatch, {download.ATT_FACES_URL: faces_archive(source)})
    faces = data.load_att_faces("all", root=tmp_path)
    assert len(faces) == 400 and faces.num_classes == 40
    assert sorted(p.name for p in (tmp_path / "att_faces").iterdir()) == ["testing", "training"]


def test_att_faces_archive_without_the_faces_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    source = need("att_faces")
    serve(monkeypatch, {download.ATT_FACES_URL: faces_archive(source, keep=15)})
    with pytest.raises(FileNotFoundError, match="does not hold the 400 faces"):
        data.load_att_faces("training", root=tmp_path)
    assert not (tmp_path / "att_faces" / "training").exists()


# --------------------------------------------------------------- download-or-explain, once

_REAL_FETCH = download.fetch_bytes  # before conftest replaces it with an offline stand-in


def test_download_or_explain_fetches_only_what_is_missing() -> None:
    calls = []
    download.download_or_explain(lambda: True, lambda: calls.append(1), True, "missing")
    assert calls == []
    done = []
    download.download_or_explain(lambda: bool(done), lambda: done.append(1), True, "missing")
    assert done == [1]


def test_download_or_explain_says_what_is_missing_and_why() -> None:
    def fail() -> None:
        raise OSError("no route to host")

    with pytest.raises(FileNotFoundError, match="Put it there. The download failed: .*no route"):
        download.download_or_explain(lambda: False, fail, True, "X is missing. Put it there.")
    with pytest.raises(FileNotFoundError, match=r"^X is missing\.$"):
        download.download_or_explain(lambda: False, fail, False, "X is missing.")
    with pytest.raises(FileNotFoundError, match="The download from https://x.org/y failed"):
        download.download_or_explain(lambda: False, fail, True, "X.", source="https://x.org/y")


def test_fetch_bytes_passes_its_timeout_to_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket
    import urllib.request

    seen = []

    class Response(io.BytesIO):
        def __enter__(self):
            return self

    def urlopen(url: str, timeout: float | None = None):
        seen.append((url, timeout, socket.getdefaulttimeout()))
        return Response(b"body")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    assert _REAL_FETCH("https://example.org/x") == b"body"
    ((url, timeout, process_wide),) = seen
    assert timeout == download.TIMEOUT_S and process_wide is None


def test_mnist_is_downloaded_checked_and_unpacked_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = need("MNIST", "raw")
    files = {download.MNIST_MIRRORS[0] + name: (raw / name).read_bytes()
             for name in download.MNIST_MD5}
    asked = serve(monkeypatch, files)
    test = data.load_mnist(train=False, root=tmp_path)
    assert len(test) == 10000 and sorted(asked) == sorted(files)
