"""Tests for siamese_lib.data.

Most tests read the real files under ``config.data_root()`` (set ``SIAMESE_LIB_DATA``);
they are skipped, with the reason, when a data set is not there. Tests that build their
own data root use an isolated cache so nothing keyed by a temporary path is left behind.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import socket
import time
import urllib.error
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from siamese_lib import cli, data, download
from siamese_lib.config import CACHE_ENV, data_root

SMALL_ALPHABET = "Ojibwe_(Canadian_Aboriginal_Syllabics)"  # 14 characters, 280 images
CORNERS = ([0, 0, -1, -1], [0, -1, 0, -1])


def need(*parts: str) -> Path:
    """The path under the data root, or skip the test if it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    return path


def copy_files(source: Path, target: Path, pattern: str) -> list[Path]:
    """Copy the files matching ``pattern``, without the read-only modes of the source."""
    copies = []
    for file in sorted(source.rglob(pattern)):
        copy = target / file.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, copy)
        copies.append(copy)
    return copies


def assert_glyphs_inverted(images: torch.Tensor) -> None:
    """Ink bright on a black background: dark corners, and ink covers a minority."""
    assert images.dtype == torch.uint8
    assert images[:, 0, CORNERS[0], CORNERS[1]].float().mean() < 5
    ink = (images > 127).float().mean()
    assert 0.02 < ink < 0.5


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def small_root(tmp_path: Path, isolated_cache: Path) -> Path:
    """A data root holding one small real background alphabet."""
    source = need("omniglot-py", "images_background", SMALL_ALPHABET)
    root = tmp_path / "data"
    copy_files(source, root / "omniglot-py" / "images_background" / SMALL_ALPHABET, "*.png")
    return root


@pytest.fixture(scope="module")
def background28() -> data.ImageSet:
    need("omniglot-py", "images_background")
    return data.load_omniglot("background", 28)


# ---------------------------------------------------------------------------------------
# MNIST


@pytest.mark.slow
@pytest.mark.parametrize(("train", "n"), [(True, 60000), (False, 10000)])
def test_mnist_counts_shapes_and_labels(train: bool, n: int) -> None:
    need("MNIST", "raw")
    ds = data.load_mnist(train)
    assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64 and ds.classes == [str(d) for d in range(10)]
    assert torch.bincount(ds.labels, minlength=11)[:10].min() > n // 20
    assert ds.labels.max() == 9
    # Bright digits on black average about 0.13 (MNIST's well-known mean).
    assert abs(ds.float().mean().item() - 0.1307) < 0.005


def test_mnist_from_read_only_root_unpacks_into_the_cache(
    tmp_path: Path, isolated_cache: Path
) -> None:
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    copy_files(need("MNIST", "raw"), raw, "*.gz")
    for folder in (raw, raw.parent, root):
        folder.chmod(0o555)
    try:
        ds = data.load_mnist(train=False, root=root)
    finally:
        for folder in (root, raw.parent, raw):
            folder.chmod(0o755)
    assert len(ds) == 10000
    assert sorted(p.name for p in raw.iterdir()) == sorted(f"{n}.gz" for n in data.MNIST_FILES)
    assert (isolated_cache / "data" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_mnist_writable_root_is_used_in_place(tmp_path: Path, isolated_cache: Path) -> None:
    raw = tmp_path / "data" / "MNIST" / "raw"
    copy_files(need("MNIST", "raw"), raw, "*.gz")
    ds = data.load_mnist(train=False, root=tmp_path / "data")
    assert len(ds) == 10000
    assert (raw / "t10k-images-idx3-ubyte").is_file()
    assert not (isolated_cache / "data" / "MNIST").exists()


# ---------------------------------------------------------------------------------------
# Omniglot


@pytest.mark.slow
@pytest.mark.parametrize(
    ("subset", "alphabets", "characters"), [("background", 30, 964), ("evaluation", 20, 659)]
)
def test_omniglot_counts_metadata_and_inversion(
    subset: str, alphabets: int, characters: int
) -> None:
    need("omniglot-py", f"images_{subset}")
    ds = data.load_omniglot(subset, 28)
    assert ds.images.shape == (characters * 20, 1, 28, 28)
    assert len(ds.group_names) == alphabets and ds.group_names == sorted(ds.group_names)
    assert ds.num_classes == characters
    assert torch.equal(torch.bincount(ds.labels), torch.full((characters,), 20))
    # Each character is drawn once by each of the 20 drawers.
    drawers = ds.drawers.view(characters, 20).sort(dim=1).values
    assert torch.equal(drawers, torch.arange(1, 21).expand(characters, 20))
    for label in (0, characters // 2, characters - 1):
        alphabet, character = ds.classes[label].split("/")
        assert re.fullmatch(r"character\d\d", character)
        assert {ds.group_names[g] for g in ds.groups[ds.labels == label]} == {alphabet}
    assert_glyphs_inverted(ds.images)


@pytest.mark.slow
def test_omniglot_all_joins_both_subsets() -> None:
    need("omniglot-py", "images_evaluation")
    ds = data.load_omniglot("all", 28)
    assert len(ds) == 32460 and ds.num_classes == 1623 and len(ds.group_names) == 50
    assert len(set(ds.classes)) == 1623
    assert torch.equal(torch.bincount(ds.labels), torch.full((1623,), 20))
    first_evaluation = ds.classes.index("Angelic/character01")
    assert first_evaluation == 964 and ds.groups[ds.labels == 964].unique().tolist() == [30]


def test_omniglot_size_105_is_the_inverted_original(small_root: Path) -> None:
    ds = data.load_omniglot("background", 105, root=small_root, download=False)
    paths = sorted(small_root.rglob("*.png"))
    assert len(ds) == len(paths) == 280 and ds.num_classes == 14
    assert ds.group_names == [SMALL_ALPHABET]
    for i in (0, 137, 279):
        original = np.asarray(Image.open(paths[i]).convert("L"))
        assert np.array_equal(ds.images[i, 0].numpy(), 255 - original)
        assert ds.drawers[i] == int(paths[i].stem.split("_")[1])
        assert ds.classes[ds.labels[i]] == f"{SMALL_ALPHABET}/{paths[i].parent.name}"


@pytest.mark.slow
def test_omniglot_small_root_matches_the_full_background(
    background28: data.ImageSet, small_root: Path
) -> None:
    small = data.load_omniglot("background", 28, root=small_root, download=False)
    in_alphabet = torch.tensor([c.startswith(f"{SMALL_ALPHABET}/") for c in background28.classes])
    expected = background28.subset(in_alphabet[background28.labels])
    assert torch.equal(small.images, expected.images)
    assert torch.equal(small.labels, expected.labels) and small.classes == expected.classes
    assert small.group_names == expected.group_names == [SMALL_ALPHABET]
    assert torch.equal(small.drawers, expected.drawers)


def test_omniglot_cache_is_written_reused_and_repaired(
    small_root: Path, isolated_cache: Path
) -> None:
    def load(size: int = 28) -> data.ImageSet:
        return data.load_omniglot("background", size, root=small_root, download=False)

    first = load()
    (cache_file,) = (isolated_cache / "data").glob("omniglot-background-28-*.pt")
    assert [p.name for p in cache_file.parent.iterdir()] == [cache_file.name]  # no temp files
    cache_file.write_bytes(b"truncated")
    repaired = load()
    assert torch.equal(repaired.images, first.images)
    assert cache_file.stat().st_size > 100_000
    for png in small_root.rglob("*.png"):
        png.unlink()
    cached = load()  # the images are gone, so this can only come from the cache
    for name in ("images", "labels", "groups", "drawers"):
        assert torch.equal(getattr(cached, name), getattr(first, name))
    assert cached.classes == first.classes and cached.group_names == first.group_names
    with pytest.raises(FileNotFoundError, match="no Omniglot PNG"):
        load(size=14)  # another size is another cache entry


def test_omniglot_cached_load_is_fast(background28: data.ImageSet) -> None:
    start = time.perf_counter()
    again = data.load_omniglot("background", 28)
    assert time.perf_counter() - start < 1.0
    assert torch.equal(again.images, background28.images)


def test_omniglot_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        data.load_omniglot("evaluation", root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "omniglot-py" / "images_evaluation") in message
    assert "SIAMESE_LIB_DATA" in message and "brendenlake/omniglot" in message
    assert list(tmp_path.iterdir()) == []


def test_omniglot_failed_download_is_explained_without_a_process_wide_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = []

    def offline(url: str, timeout: float = 0.0) -> bytes:
        asked.append((url, timeout))
        raise urllib.error.URLError("network is unreachable")

    def forbidden(seconds: float | None) -> None:  # used to bound torchvision's download
        raise AssertionError("socket.setdefaulttimeout changes every thread's sockets")

    monkeypatch.setattr(download, "fetch_bytes", offline)
    monkeypatch.setattr(socket, "setdefaulttimeout", forbidden)
    with pytest.raises(FileNotFoundError, match="network is unreachable") as info:
        data.load_omniglot("background", root=tmp_path)
    assert str(tmp_path / "omniglot-py" / "images_background") in str(info.value)
    assert [url for url, _ in asked] == [download.OMNIGLOT_URL.format(subset="background")]


def test_omniglot_is_downloaded_checked_and_unpacked_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    source = need("omniglot-py", "images_background", SMALL_ALPHABET)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for png in sorted(source.rglob("*.png")):
            archive.write(png, f"images_background/{png.relative_to(source.parent)}")
    body = buffer.getvalue()
    url = download.OMNIGLOT_URL.format(subset="background")
    monkeypatch.setattr(download, "fetch_bytes", lambda u, timeout=0.0: {url: body}[u])
    monkeypatch.setitem(download.OMNIGLOT_MD5, "background", hashlib.md5(body).hexdigest())
    ds = data.load_omniglot("background", root=tmp_path)
    assert ds.group_names == [SMALL_ALPHABET] and len(ds) == 280


def test_broken_png_is_named(small_root: Path, isolated_cache: Path) -> None:
    victim = sorted(small_root.rglob("*.png"))[42]
    victim.write_bytes(b"\x89PNG garbage, not an image")
    with pytest.raises(OSError, match=re.escape(str(victim))):
        data.load_omniglot("background", root=small_root, download=False)
    assert not list(isolated_cache.rglob("*.pt"))


def test_unknown_subset_and_split_names_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="subset"):
        data.load_omniglot("train", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_omniglot_vinyals("background", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        data.load_att_faces("train", root=tmp_path)


# ---------------------------------------------------------------------------------------
# Vinyals splits


@pytest.mark.slow
@pytest.mark.parametrize(
    ("split", "characters"), [("train", 1028), ("val", 172), ("test", 423), ("trainval", 1200)]
)
def test_vinyals_split_sizes(split: str, characters: int) -> None:
    need("omniglot-splits", "vinyals")
    need("omniglot-py", "images_evaluation")
    ds = data.load_omniglot_vinyals(split)
    assert ds.num_classes == 4 * characters and len(ds) == 80 * characters
    assert torch.equal(torch.bincount(ds.labels), torch.full((4 * characters,), 20))
    assert all(re.fullmatch(r"[^/]+/character\d\d/rot(000|090|180|270)", c) for c in ds.classes)
    rotations = Counter(c.rsplit("/", 1)[0] for c in ds.classes)
    assert len(rotations) == characters and set(rotations.values()) == {4}
    assert sorted(set(ds.groups.tolist())) == list(range(len(ds.group_names)))


@pytest.mark.slow
def test_vinyals_rotations_are_counter_clockwise() -> None:
    need("omniglot-splits", "vinyals")
    need("omniglot-py", "images_evaluation")
    ds = data.load_omniglot_vinyals("test")
    base = data.load_omniglot("all")
    character = ds.classes[0].rsplit("/", 1)[0]
    original = base.images[base.labels == base.classes.index(character)]

    def images(rotation: str) -> torch.Tensor:
        return ds.images[ds.labels == ds.classes.index(f"{character}/{rotation}")]

    assert torch.equal(images("rot000"), original)
    # Turned a quarter counter-clockwise, the right column becomes the top row.
    assert torch.equal(images("rot090")[:, 0, 0, :], original[:, 0, :, -1])
    assert torch.equal(images("rot180"), original.flip(2, 3))
    assert not torch.equal(images("rot090"), images("rot270"))
    picked = ds.labels == ds.classes.index(f"{character}/rot090")
    assert {ds.group_names[g] for g in ds.groups[picked]} == {character.split("/")[0]}
    assert sorted(ds.drawers[picked].tolist()) == list(range(1, 21))


def test_vinyals_missing_split_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        data.load_omniglot_vinyals("test", root=tmp_path)
    assert str(tmp_path / "omniglot-splits" / "vinyals" / "test.txt") in str(info.value)
    assert "jakesnell/prototypical-networks" in str(info.value)


# ---------------------------------------------------------------------------------------
# Lake's one-shot runs


def test_lake_runs_shapes_answers_and_inversion() -> None:
    need("omniglot-official-small", "all_runs.zip")
    runs = data.load_lake_runs(28)
    assert len(runs) == 20
    correct = 0
    for run in runs:
        assert run.train.shape == run.test.shape == (20, 1, 28, 28)
        assert run.answers.dtype == torch.int64
        assert sorted(run.answers.tolist()) == list(range(20))
        assert_glyphs_inverted(torch.cat([run.train, run.test]))
        distances = torch.cdist(run.test.flatten(1).float(), run.train.flatten(1).float())
        correct += (distances.argmin(1) == run.answers).sum().item()
    # Raw-pixel nearest neighbour gets about 20%; with a wrong answer key it would get 5%.
    assert correct / 400 > 0.12


def test_lake_runs_keep_105_pixels() -> None:
    need("omniglot-official-small", "all_runs.zip")
    run = data.load_lake_runs(105)[0]
    assert run.train.shape == (20, 1, 105, 105)
    assert set(run.test.unique().tolist()) == {0, 255}


def test_lake_runs_missing_zip_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path))):
        data.load_lake_runs(root=tmp_path)


# ---------------------------------------------------------------------------------------
# AT&T faces


@pytest.mark.parametrize(
    ("split", "subjects"), [("training", 37), ("testing", 3), ("all", 40)]
)
def test_att_faces_counts_and_numeric_class_order(split: str, subjects: int) -> None:
    need("att_faces")
    ds = data.load_att_faces(split)
    assert ds.images.shape == (10 * subjects, 1, 100, 100) and ds.images.dtype == torch.uint8
    assert torch.equal(torch.bincount(ds.labels), torch.full((subjects,), 10))
    numbers = [int(c[1:]) for c in ds.classes]
    assert numbers == sorted(numbers) and len(set(numbers)) == subjects
    if split == "all":
        assert ds.classes == [f"s{i}" for i in range(1, 41)]


def test_att_faces_at_original_size_are_the_raw_pixels() -> None:
    folder = need("att_faces", "testing", "s5")
    ds = data.load_att_faces("testing", size=(112, 92))
    assert ds.classes == ["s5", "s6", "s7"]
    for i, name in ((0, "1.pgm"), (1, "2.pgm"), (9, "10.pgm")):
        assert np.array_equal(ds.images[i, 0].numpy(), np.asarray(Image.open(folder / name)))


def test_att_faces_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "att_faces"))):
        data.load_att_faces("all", root=tmp_path)


def test_mnist_missing_offline_names_the_folder(tmp_path, monkeypatch):

    def offline(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(FileNotFoundError, match=r"MNIST is not in .*MNIST/raw.*SIAMESE_LIB_DATA"):
        data.load_mnist(root=tmp_path)


# ---------------------------------------------------------------------------------------
# Caches that cannot be written, archives that cannot be read


def test_omniglot_loads_in_memory_when_the_cache_cannot_be_created(
    small_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder would have to be inside this file")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # fails even for root
    ds = data.load_omniglot("background", root=small_root)
    assert len(ds) == 280


def test_omniglot_loads_in_memory_from_a_read_only_cache(
    small_root: Path, isolated_cache: Path
) -> None:
    folder = isolated_cache / "data"
    folder.mkdir(parents=True)
    folder.chmod(0o555)  # root could write it anyway: the permission bits are what count
    try:
        ds = data.load_omniglot("background", root=small_root)
        assert len(ds) == 280 and list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("archive", ["omniglot-py/images_background.zip",
                                     "MNIST/raw/train-images-idx3-ubyte.gz"])
def test_a_corrupt_archive_in_the_data_folder_is_named(archive: str, tmp_path: Path) -> None:
    path = tmp_path / archive
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 cut short")
    load = data.load_mnist if archive.startswith("MNIST") else data.load_omniglot
    with pytest.raises(OSError, match="truncated or corrupt") as info:
        load(root=tmp_path)
    assert f"cannot unpack {path}" in str(info.value)


def lake_root(tmp_path: Path, body: bytes) -> Path:
    path = tmp_path / "data" / "omniglot-official-small" / "all_runs.zip"
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    return path


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_a_corrupt_lake_zip_is_a_clear_oserror(damage: str, tmp_path: Path) -> None:
    real = need("omniglot-official-small", "all_runs.zip").read_bytes()
    if damage == "truncated":
        body = real[: len(real) // 2]
    else:  # the archive's directory is intact but a member's bytes are not
        middle = len(real) // 3
        body = real[:middle] + bytes(b ^ 0xFF for b in real[middle : middle + 4096]) + \
            real[middle + 4096 :]
    path = lake_root(tmp_path, body)
    with pytest.raises(OSError, match="truncated or corrupt") as info:
        data.load_lake_runs(root=path.parents[1])
    assert str(path) in str(info.value) and "Delete it" in str(info.value)


def test_evaluate_on_a_corrupt_lake_zip_is_exit_2_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from siamese_lib.checkpoint import save_checkpoint
    from siamese_lib.nets import EmbeddingNet

    path = lake_root(tmp_path, b"PK\x03\x04 not really a zip")
    monkeypatch.setenv("SIAMESE_LIB_DATA", str(path.parents[1]))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "tiny.pt", EmbeddingNet(width=8, embedding_dim=4))
    assert cli.main(["evaluate", str(ckpt), "--data", "lake-runs"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err


# ---------------------------------------------------------------------------------------
# Named data sets


def test_the_mnist_split_is_the_first_50000_and_the_last_10000() -> None:
    need("MNIST", "raw")
    full = data.load_mnist(train=True)
    train, val = data.load_dataset("mnist-train"), data.load_dataset("mnist-validation")
    assert len(train) == data.MNIST_TRAIN_SIZE == 50000 and len(val) == 10000
    assert torch.equal(train.images, full.images[:50000])
    assert torch.equal(val.labels, full.labels[50000:])
    assert train.classes == val.classes == [str(d) for d in range(10)]


def test_named_sets_load_at_the_size_asked_for(small_root: Path) -> None:
    need("omniglot-py", "images_evaluation")
    assert data.load_dataset("omniglot-evaluation", 20).images.shape[-2:] == (20, 20)
    assert data.load_dataset("att-faces-testing", 50).images.shape[-2:] == (50, 50)


def test_the_cli_offers_the_registry_evaluation_sets() -> None:
    assert cli.EVAL_DATA == (*data.EVALUATION_SETS, "lake-runs")
    assert set(data.EVALUATION_SETS) == {"omniglot-evaluation", "omniglot-vinyals-test",
                                         "mnist-test"}
    assert set(cli._DEFAULT_DATA.values()) <= set(data.DATASETS)


@pytest.mark.parametrize("name, size, error, fragment", [
    ("mnist", None, KeyError, "known: mnist-train"),
    ("mnist-test", 32, ValueError, "28x28"),
    ("omniglot-evaluation", 0, ValueError, "size must be"),
    ("omniglot-evaluation", 2.5, ValueError, "size must be"),
])
def test_load_dataset_refuses_unknown_names_and_sizes(name, size, error, fragment) -> None:
    with pytest.raises(error, match=fragment):
        data.load_dataset(name, size)


@pytest.mark.parametrize("size", [0, -1, 2.5, "28", True])
def test_glyph_loaders_refuse_a_bad_size_before_reading(size, tmp_path: Path) -> None:
    # used to surface from PIL, once per file, as "cannot read image ...: height and width
    # must be > 0" (or a TypeError)
    for load in (data.load_omniglot, data.load_omniglot_vinyals, data.load_lake_runs):
        with pytest.raises(ValueError, match="size must be a whole number"):
            load(size=size, root=tmp_path)
