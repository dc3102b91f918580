"""The book's data sets: MNIST, Omniglot (three protocols), Lake's runs and the AT&T faces.

Taught in chapter 1 (Standard vs one-shot classification), which loads MNIST and
Omniglot; chapter 5 adds Lake's runs and the Vinyals split, chapter 6 the faces. Every
loader returns an :class:`~siamese_lib.imageset.ImageSet` of uint8 images (N, C, H, W).
Glyphs and digits use the MNIST convention (ink bright, background 0), so the same model
code works on both. The data folder comes from ``root``, else ``$SIAMESE_LIB_DATA`` (see
:mod:`siamese_lib.config`); nothing here needs the network once the files are in place
(missing files are fetched through :mod:`siamese_lib.download`).

:data:`DATASETS` names the sets the command line, the protocols and the recipes use
(``"mnist-train"``, ``"omniglot-evaluation"``, ...); :func:`load_dataset` loads one by
name. Your own images are read by :mod:`siamese_lib.folders`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import download as downloads
from .config import cache_dir, data_root, relative_root_note
from .files import atomic_write
from .folders import class_folders, decode_image, load_images, natural_key
from .folders import image_files as image_files  # re-exported: it was defined here
from .folders import load_image_folder as load_image_folder  # re-exported, as image_files
from .imageset import ImageSet, LakeRun, indices_by_label

OMNIGLOT_SUBSETS = ("background", "evaluation")
VINYALS_SPLITS = ("train", "val", "test", "trainval")
ATT_SPLITS = ("training", "testing")
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: The first 50,000 MNIST training digits train; the last 10,000 are held out to validate.
MNIST_TRAIN_SIZE = 50000

# Bump when the decoded pixels change, so old cache files are never read again.
_CACHE_VERSION = 1
# BOX is an exact area average: no ringing, so the glyph background stays exactly 0.
_GLYPH_RESAMPLE = Image.Resampling.BOX
_OMNIGLOT_URL = "https://github.com/brendenlake/omniglot (python/images_*.zip)"
_VINYALS_URL = (
    "https://github.com/jakesnell/prototypical-networks (data/omniglot/splits/vinyals/)"
)
# What a broken archive is (zipfile raises neither OSError nor ValueError for these).
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, KeyError, OSError, ValueError)


def _env_hint() -> str:
    return ("or point the SIAMESE_LIB_DATA environment variable (or the root argument) "
            "elsewhere" + relative_root_note())


# ---------------------------------------------------------------------------------------
# MNIST


def load_mnist(train: bool = True, root: str | os.PathLike | None = None) -> ImageSet:
    """MNIST digits, read with ``torchvision.datasets.MNIST``.

    The four ``.gz`` archives are unpacked next to themselves. When ``<root>/MNIST/raw``
    is read-only (permission bits without write access count, even for root), the archives
    are copied to ``cache_dir("data")`` and unpacked there instead. Missing archives are
    downloaded (with a time-out) from torchvision's mirrors.

    Args:
        train: the 60000 training digits if True, else the 10000 test digits.
        root: the data folder; defaults to ``config.data_root()``.

    Returns:
        An ImageSet of uint8 (N, 1, 28, 28) images, classes "0".."9".

    Raises:
        FileNotFoundError: the files are missing and could not be downloaded.
        OSError: the files are there but cannot be read (the message says what to do).
    """
    base = _mnist_root(data_root(root))
    raw = base / "MNIST" / "raw"
    downloads.download_or_explain(
        lambda: all((raw / name).is_file() for name in MNIST_FILES), lambda: _fetch_mnist(raw),
        True,
        f"MNIST is not in {data_root(root) / 'MNIST' / 'raw'} and could not be downloaded. "
        f"Put the four files {', '.join(MNIST_FILES)} (.gz) there, {_env_hint()}.",
        source=" or ".join(downloads.MNIST_MIRRORS),
    )
    import torchvision  # here, not at the top: it takes seconds, and the CLI imports this module

    try:
        mnist = torchvision.datasets.MNIST(str(base), train=train, download=False)
    except (RuntimeError, ValueError, OSError) as err:
        raise OSError(f"cannot read MNIST from {raw} ({err}); delete the unpacked files there "
                      "(keep the .gz archives) to unpack them again") from err
    images = mnist.data.unsqueeze(1).contiguous()
    return ImageSet(images, mnist.targets.long(), [str(d) for d in range(10)])


def _fetch_mnist(raw: Path) -> None:
    """Unpack MNIST's archives in ``raw``, downloading those that are missing."""
    for archive, md5 in downloads.MNIST_MD5.items():
        if (raw / archive.removesuffix(".gz")).is_file():
            continue
        if not (raw / archive).is_file():
            _first_mirror(archive, raw / archive, md5)
        _unpack(raw / archive, raw)


def _first_mirror(archive: str, path: Path, md5: str) -> None:
    errors = []
    for mirror in downloads.MNIST_MIRRORS:
        try:
            downloads.download(mirror + archive, path, md5=md5)
            return
        except (OSError, ValueError) as err:
            errors.append(f"{mirror}: {err}")
    raise OSError(f"could not download {archive} ({'; '.join(errors)})")


def _mnist_root(root: Path) -> Path:
    """The root torchvision may use: ``root`` itself, or a writable cache holding its archives."""
    raw = root / "MNIST" / "raw"
    if all((raw / name).is_file() for name in MNIST_FILES) or _writable(raw):
        return root
    cached = cache_dir("data")
    target = cached / "MNIST" / "raw"
    target.mkdir(parents=True, exist_ok=True)
    for archive in sorted(raw.glob("*.gz")):
        dest = target / archive.name
        # A partial copy would fail torchvision's md5 check and send it to the network.
        if not dest.is_file() or dest.stat().st_size != archive.stat().st_size:
            with archive.open("rb") as src:
                atomic_write(dest, lambda fh, src=src: shutil.copyfileobj(src, fh))
    return cached


# ---------------------------------------------------------------------------------------
# Omniglot


def load_omniglot(
    subset: str = "background",
    size: int = 28,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageSet:
    """Omniglot from the unpacked official folders, inverted and resized, cached on disk.

    Reads ``<root>/omniglot-py/images_<subset>/<Alphabet>/characterNN/XXXX_YY.png`` in
    sorted order. Ink becomes 255 and background 0; images are resized once (area average)
    to ``size`` x ``size``. The result is cached in ``cache_dir("data")``, keyed by subset,
    size and the resolved source folder; delete the cache file after changing the images.

    Args:
        subset: "background" (30 alphabets), "evaluation" (20) or "all" (both, background
            first; labels and groups of the evaluation part follow those of background).
        size: output side in pixels; 105 keeps the original resolution.
        root: the data folder; defaults to ``config.data_root()``.
        download: if the folder is missing, try torchvision's downloader first.

    Returns:
        An ImageSet with one class per character ("Alphabet/characterNN"), groups =
        alphabet index, group_names = alphabet names and drawers = 1..20.

    Raises:
        FileNotFoundError: the folder is missing and could not be downloaded.
        OSError: an image file cannot be decoded (the message names the file).
    """
    _check_choice("subset", subset, (*OMNIGLOT_SUBSETS, "all"))
    _check_side(size)
    if subset == "all":
        return _concat([load_omniglot(s, size, root, download) for s in OMNIGLOT_SUBSETS])
    folder = _ensure_omniglot(data_root(root), subset, download)
    digest = hashlib.sha256(f"{_CACHE_VERSION}:{folder.resolve()}".encode()).hexdigest()[:16]
    key = f"omniglot-{subset}-{size}-{digest}"
    return _cached(key, lambda: _read_omniglot(folder, size))


def _ensure_omniglot(root: Path, subset: str, download: bool) -> Path:
    """The subset's folder, downloaded (and unpacked) first if allowed and needed."""
    folder = root / "omniglot-py" / f"images_{subset}"

    def fetch() -> None:
        archive = folder.with_suffix(".zip")
        if not archive.is_file():
            url = downloads.OMNIGLOT_URL.format(subset=subset)
            downloads.download(url, archive, md5=downloads.OMNIGLOT_MD5[subset])
        _unpack(archive, folder.parent)

    downloads.download_or_explain(
        folder.is_dir, fetch, download,
        f"Omniglot folder not found: {folder}. Put the unpacked official images_background/ "
        f"and images_evaluation/ folders from {_OMNIGLOT_URL} in {folder.parent}, {_env_hint()}.",
        source=downloads.OMNIGLOT_URL.format(subset=subset),
    )
    return folder


def _read_omniglot(folder: Path, size: int) -> ImageSet:
    """Decode one images_* folder: sorted alphabets, characters and PNG files."""
    alphabets = _subdirs(folder)
    paths: list[Path] = []
    labels: list[int] = []
    groups: list[int] = []
    classes: list[str] = []
    for group, alphabet in enumerate(alphabets):
        for character in _subdirs(alphabet):
            pngs = sorted(p for p in character.iterdir() if p.suffix == ".png")
            labels += [len(classes)] * len(pngs)
            groups += [group] * len(pngs)
            classes.append(f"{alphabet.name}/{character.name}")
            paths += pngs
    if not paths:
        raise FileNotFoundError(f"no Omniglot PNG files under {folder}")
    return ImageSet(
        images=_glyphs(((p, str(p)) for p in paths), size),
        labels=torch.tensor(labels),
        classes=classes,
        groups=torch.tensor(groups),
        group_names=[a.name for a in alphabets],
        drawers=torch.tensor([_drawer(p) for p in paths]),
    )


def _drawer(path: Path) -> int:
    """The drawer number YY of an Omniglot file named XXXX_YY.png."""
    match = re.fullmatch(r"\d+_(\d+)\.png", path.name)
    if match is None:
        raise ValueError(f"not an Omniglot file name (XXXX_YY.png): {path}")
    return int(match[1])


def load_omniglot_vinyals(
    split: str = "train", size: int = 28, root: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageSet:
    """Omniglot under the protocol of Vinyals et al. (2016): rotations are new classes.

    Reads ``<root>/omniglot-splits/vinyals/<split>.txt``, whose lines name
    ``Alphabet/characterNN/rotDDD``. Each line is one class: the 20 drawings of that
    character (from either images_background or images_evaluation) rotated
    counter-clockwise by DDD degrees.

    Args:
        split: "train" (1028 characters), "val" (172), "test" (423) or "trainval".
        size: output side in pixels, as in :func:`load_omniglot`.
        root: the data folder; defaults to ``config.data_root()``.
        download: if the split file (or Omniglot) is missing, download it first.

    Returns:
        An ImageSet with classes named like "Alphabet/character01/rot090", in file order;
        groups and group_names cover only the alphabets in the split (sorted by name).

    Raises:
        FileNotFoundError: the split file or the Omniglot folders are missing.
        ValueError: a line is malformed or names a character that does not exist.
    """
    _check_choice("split", split, VINYALS_SPLITS)
    _check_side(size)
    path = data_root(root) / "omniglot-splits" / "vinyals" / f"{split}.txt"
    lines = _read_vinyals_split(downloads.ensure_file(
        path, downloads.VINYALS_URL.format(split=split), download,
        f"Vinyals split file not found: {path}. Copy train.txt, val.txt, test.txt and "
        f"trainval.txt from {_VINYALS_URL} into {path.parent}, {_env_hint()}.",
        sha256=downloads.VINYALS_SHA256[split],
    ))
    base = load_omniglot("all", size, root, download)
    members = dict(zip(base.classes, indices_by_label(base.labels, base.num_classes), strict=True))
    picks = []
    for character, _ in lines:
        if character not in members:
            raise ValueError(f"Vinyals split {split!r} names an unknown character {character!r}")
        picks.append(members[character])
    counts = [len(idx) for idx in picks]
    picked = base.subset(torch.cat(picks))  # groups renumbered to the split's alphabets
    chunks = picked.images.split(counts)
    rotated = [torch.rot90(c, d // 90, dims=(2, 3)) for c, (_, d) in zip(chunks, lines, strict=True)]
    return ImageSet(
        images=torch.cat(rotated),
        labels=torch.arange(len(lines)).repeat_interleave(torch.tensor(counts)),
        classes=[f"{character}/rot{degrees:03d}" for character, degrees in lines],
        groups=picked.groups,
        group_names=picked.group_names,
        drawers=picked.drawers,
    )


def _read_vinyals_split(path: Path) -> list[tuple[str, int]]:
    """(``Alphabet/characterNN``, degrees) for each line of a Vinyals split file."""
    entries = []
    for line in path.read_text().split():
        match = re.fullmatch(r"([^/]+/[^/]+)/rot(\d{3})", line)
        if match is None or int(match[2]) % 90:
            raise ValueError(f"{path}: expected 'Alphabet/characterNN/rotDDD', got {line!r}")
        entries.append((match[1], int(match[2])))
    return entries


def load_lake_runs(
    size: int = 28, root: str | os.PathLike | None = None, download: bool = True
) -> list[LakeRun]:
    """The 20 runs of Lake et al.'s 20-way one-shot task, read straight from the zip.

    Reads ``<root>/omniglot-official-small/all_runs.zip`` (``runNN/training/classMM.png``,
    ``runNN/test/itemMM.png``, ``runNN/class_labels.txt``) without extracting it. Images
    are inverted and resized as in :func:`load_omniglot`.

    Args:
        size: output side in pixels.
        root: the data folder; defaults to ``config.data_root()``.
        download: if the zip is missing, download it from Lake's repository first.

    Returns:
        The runs in order run01..run20.

    Raises:
        FileNotFoundError: the zip is missing and could not be downloaded.
        OSError: the zip is truncated or corrupt (the message names it and says what to do).
    """
    _check_side(size)
    path = data_root(root) / "omniglot-official-small" / "all_runs.zip"
    downloads.ensure_file(
        path, downloads.LAKE_RUNS_URL, download,
        f"Lake's one-shot runs not found: {path}. Copy python/one-shot-classification/"
        f"all_runs.zip from https://github.com/brendenlake/omniglot there, {_env_hint()}.",
        md5=downloads.LAKE_RUNS_MD5,
    )
    try:
        with zipfile.ZipFile(path) as archive:
            runs = sorted(n.split("/")[0] for n in archive.namelist()
                          if re.fullmatch(r"run\d+/class_labels\.txt", n))
            result = [_read_lake_run(archive, run, size) for run in runs]
    except _ARCHIVE_ERRORS as err:
        raise OSError(
            f"cannot read Lake's runs from {path}: the zip is truncated or corrupt ({err}). "
            f"Delete it to download it again (md5 {downloads.LAKE_RUNS_MD5}), or copy a fresh "
            "python/one-shot-classification/all_runs.zip from https://github.com/brendenlake/omniglot"
        ) from err
    if not result:
        raise OSError(f"{path} holds no runNN/class_labels.txt: it is not Lake's all_runs.zip")
    return result


def _read_lake_run(archive: zipfile.ZipFile, run: str, size: int) -> LakeRun:
    """One run: training images in class order, test items in item order, and the key."""
    text = archive.read(f"{run}/class_labels.txt").decode()
    pairs = sorted(tuple(line.split()) for line in text.splitlines() if line.strip())
    train_names = sorted(n for n in archive.namelist()
                         if n.startswith(f"{run}/training/") and n.endswith(".png"))
    position = {name: i for i, name in enumerate(train_names)}

    def read(names: Iterable[str]) -> torch.Tensor:
        return _glyphs(((archive.read(n), f"{archive.filename}:{n}") for n in names), size)

    return LakeRun(
        train=read(train_names),
        test=read(test for test, _ in pairs),
        answers=torch.tensor([position[answer] for _, answer in pairs]),
    )


# ---------------------------------------------------------------------------------------
# AT&T faces


def load_att_faces(
    split: str = "training",
    size: int | tuple[int, int] = (100, 100),
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageSet:
    """The AT&T (ORL) faces from ``<root>/att_faces/<split>/sNN/*.pgm``, not inverted.

    Args:
        split: "training" (37 subjects), "testing" (3) or "all" (40).
        size: output (height, width) in pixels, or one side for square faces; (112, 92)
            keeps the originals.
        root: the data folder; defaults to ``config.data_root()``.
        download: if the folders are missing, download them first (from the repository of
            the article's code, which holds them in this layout).

    Returns:
        An ImageSet of uint8 (N, 1, H, W) faces, classes "s1", "s2", ... in numeric order.

    Raises:
        FileNotFoundError: a split folder is missing or holds no images.
    """
    _check_choice("split", split, (*ATT_SPLITS, "all"))
    base = data_root(root) / "att_faces"
    folders = [base / s for s in (ATT_SPLITS if split == "all" else (split,))]
    downloads.download_or_explain(
        lambda: all(f.is_dir() for f in folders), lambda: _download_att_faces(base), download,
        f"AT&T faces folder not found: {' or '.join(map(str, folders))}. Put the sNN/ subject "
        f"folders of the AT&T (ORL) face database there (data/faces/ of "
        f"{downloads.ATT_FACES_URL}), {_env_hint()}.", source=downloads.ATT_FACES_URL,
    )
    subjects: dict[str, list[Path]] = {}
    for folder in folders:
        for subject in class_folders(folder):
            subjects.setdefault(subject.name, []).extend(
                p for p in image_files(subject) if p.suffix.lower() == ".pgm")
    classes = sorted((s for s in subjects if subjects[s]), key=natural_key)
    if not classes:
        raise FileNotFoundError(f"no .pgm images under {', '.join(map(str, folders))}")
    paths = [p for s in classes for p in sorted(subjects[s], key=lambda p: natural_key(p.name))]
    labels = [i for i, s in enumerate(classes) for _ in subjects[s]]
    return ImageSet(load_images(paths, size), torch.tensor(labels), classes)


def _download_att_faces(base: Path) -> None:
    """Unpack data/faces/{training,testing} of the article's repository into ``base``.

    Each split is unpacked into a temporary folder and renamed into place, so an
    interrupted download leaves no half-filled split.
    """
    archive = zipfile.ZipFile(io.BytesIO(downloads.fetch_bytes(downloads.ATT_FACES_URL)))
    members = {}
    for name in archive.namelist():
        match = re.fullmatch(r"[^/]+/data/faces/(training|testing)/(s\d+/[^/]+\.pgm)", name)
        if match:
            members.setdefault(match[1], []).append((name, match[2]))
    found = sum(len(m) for m in members.values())
    if found != 400:  # 40 subjects x 10 faces
        raise ValueError(f"{downloads.ATT_FACES_URL} does not hold the 400 faces of the AT&T "
                         f"database under data/faces/ (found {found})")
    for split, files in members.items():
        target = base / split
        if target.is_dir():
            continue
        tmp = base / f".{split}.download"
        shutil.rmtree(tmp, ignore_errors=True)
        for name, relative in files:
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            (tmp / relative).write_bytes(archive.read(name))
        os.replace(tmp, target)


# ---------------------------------------------------------------------------------------
# Named data sets


@dataclass(frozen=True)
class NamedDataSet:
    """A data set the command line, the protocols and the recipes refer to by name.

    Attributes:
        description: what it holds, in words.
        load: ``size -> ImageSet``; ``size`` None is the set's usual size.
        evaluation: offered by ``python -m siamese_lib evaluate --data``.
        tests: the recipe data (``Recipe.data``) whose models it evaluates by default.
        resizable: whether ``load`` takes a size other than None (MNIST comes in 28x28 only).
    """

    description: str
    load: Callable[[int | None], ImageSet]
    evaluation: bool = False
    tests: str | None = None
    resizable: bool = True


def load_mnist_split(root: str | os.PathLike | None = None) -> tuple[ImageSet, ImageSet]:
    """MNIST's training digits read once and split: the first :data:`MNIST_TRAIN_SIZE`
    train, the rest are held out to validate."""
    digits = load_mnist(train=True, root=root)
    return (digits.subset(slice(None, MNIST_TRAIN_SIZE)),
            digits.subset(slice(MNIST_TRAIN_SIZE, None)))


def _mnist(part: str) -> Callable[[int | None], ImageSet]:
    def load(size: int | None) -> ImageSet:
        if size not in (None, 28):
            raise ValueError(f"mnist-{part} holds 28x28 digits only, not {size}x{size}; "
                             "pick a data set of the model's size")
        if part == "test":
            return load_mnist(train=False)
        train, validation = load_mnist_split()
        return train if part == "train" else validation

    return load


def _sized(loader: Callable[..., ImageSet], part: str) -> Callable[[int | None], ImageSet]:
    return lambda size: loader(part) if size is None else loader(part, size=size)


_VINYALS_PARTS = {"train": "training", "val": "validation", "test": "test"}
_FACES_PARTS = {"training": "37 subjects", "testing": "the other 3 subjects"}

#: The named data sets, by name; load one with :func:`load_dataset`.
DATASETS: dict[str, NamedDataSet] = {
    "mnist-train": NamedDataSet(
        f"the first {MNIST_TRAIN_SIZE:,} MNIST training digits", _mnist("train"), resizable=False),
    "mnist-validation": NamedDataSet(f"the last {60000 - MNIST_TRAIN_SIZE:,} MNIST training "
                                     "digits, held out", _mnist("validation"), resizable=False),
    "mnist-test": NamedDataSet("the 10,000 MNIST test digits", _mnist("test"), evaluation=True,
                               tests="mnist", resizable=False),
    "omniglot-background": NamedDataSet("Omniglot's 30 background alphabets",
                                        _sized(load_omniglot, "background")),
    "omniglot-evaluation": NamedDataSet(
        "Omniglot's 20 evaluation alphabets", _sized(load_omniglot, "evaluation"),
        evaluation=True, tests="omniglot-background"),
    **{f"omniglot-vinyals-{split}": NamedDataSet(
        f"the {words} characters of Vinyals et al., each in 4 rotations",
        _sized(load_omniglot_vinyals, split), evaluation=split == "test",
        tests="omniglot-vinyals" if split == "test" else None)
       for split, words in _VINYALS_PARTS.items()},
    **{f"att-faces-{split}": NamedDataSet(f"the AT&T faces of {who}", _sized(load_att_faces, split))
       for split, who in _FACES_PARTS.items()},
}

#: The names ``evaluate --data`` offers (besides "lake-runs" and your own folders).
EVALUATION_SETS = tuple(name for name, d in DATASETS.items() if d.evaluation)


def load_dataset(name: str, size: int | None = None) -> ImageSet:
    """The named data set (see :data:`DATASETS`), its images ``size`` x ``size``.

    Args:
        name: a key of :data:`DATASETS`, e.g. "mnist-train" or "omniglot-evaluation".
        size: the image side in pixels; None for the set's usual size (28 for MNIST and
            Omniglot, 100 for the faces).

    Raises:
        KeyError: an unknown name (the message lists the known ones).
        ValueError: a size the set does not come in (MNIST is 28x28 only).
    """
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    if size is not None:
        _check_side(size)
    return DATASETS[name].load(size)


# ---------------------------------------------------------------------------------------
# Shared helpers


def _glyphs(items: Iterable[tuple[Path | bytes, str]], size: int) -> torch.Tensor:
    """Omniglot images as uint8 (N, 1, size, size), ink 255 and background 0."""
    arrays = [decode_image(src, (size, size), resample=_GLYPH_RESAMPLE, name=name)
              for src, name in items]
    # Area averaging is linear, so inverting after resizing equals inverting before.
    return 255 - torch.from_numpy(np.stack(arrays)).unsqueeze(1)


def _cached(key: str, build: Callable[[], ImageSet]) -> ImageSet:
    """Load ``key`` from the cache folder, else build it and store it atomically.

    A cache folder that cannot be written (read-only, or a path through a file) only
    costs the time to decode again: the set is built in memory and returned.
    """
    try:
        path = cache_dir("data") / f"{key}.pt"
    except OSError:
        return build()
    if path.is_file():
        try:
            return ImageSet(**torch.load(path, weights_only=True))
        # A truncated or foreign cache file is rebuilt rather than trusted.
        except Exception:
            pass
    result = build()
    if _writable(path.parent):
        state = {f.name: getattr(result, f.name) for f in fields(result)}
        try:
            atomic_write(path, lambda fh: torch.save(state, fh))
        except OSError:
            pass  # the cache is an optimisation: a full or read-only disk must not fail the load
    return result


def _writable(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing parent) may be written.

    Permission bits are checked as well as ``os.access``: a folder marked read-only is
    treated as read-only even for root, who could write it anyway.
    """
    while not path.exists() and path.parent != path:
        path = path.parent
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & write_bits)


def _concat(parts: Sequence[ImageSet]) -> ImageSet:
    """Join image sets whose classes (and groups) are disjoint, offsetting their indices."""
    label_offsets = np.cumsum([0] + [p.num_classes for p in parts])
    group_offsets = np.cumsum([0] + [len(p.group_names or []) for p in parts])
    has_groups = all(p.groups is not None for p in parts)
    has_drawers = all(p.drawers is not None for p in parts)
    return ImageSet(
        images=torch.cat([p.images for p in parts]),
        labels=torch.cat([p.labels + int(o) for p, o in zip(parts, label_offsets[:-1], strict=True)]),
        classes=[c for p in parts for c in p.classes],
        groups=torch.cat([p.groups + int(o) for p, o in zip(parts, group_offsets[:-1], strict=True)])
        if has_groups else None,
        group_names=[g for p in parts for g in p.group_names] if has_groups else None,
        drawers=torch.cat([p.drawers for p in parts]) if has_drawers else None,
    )


def _unpack(archive: Path, into: Path) -> None:
    """Unpack a .zip or .gz archive into ``into``; a broken one is named, with what to do."""
    from torchvision.datasets.utils import extract_archive  # slow to import: only when needed

    try:
        extract_archive(str(archive), str(into))
    except _ARCHIVE_ERRORS as err:
        raise OSError(f"cannot unpack {archive}: it is truncated or corrupt ({err}); delete it "
                      "to download it again, or replace it with a good copy") from err


def _check_side(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a whole number of pixels >= 1, got {size!r}")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())
