"""Data sets for one-shot learning: MNIST, Omniglot (three protocols), AT&T faces, and
your own images (:func:`load_image_folder`, one subfolder per class).

Every loader returns uint8 images of shape (N, C, H, W). Glyphs and digits use the MNIST
convention (ink bright, background 0), so the same model code works on both. The data
folder comes from ``root``, else ``$SIAMESE_LIB_DATA`` (see :mod:`siamese_lib.config`).
Nothing here needs the network once the files are in place.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import socket
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS

from . import download as downloads
from .config import cache_dir, data_root, relative_root_note
from .files import atomic_write

OMNIGLOT_SUBSETS = ("background", "evaluation")
VINYALS_SPLITS = ("train", "val", "test", "trainval")
ATT_SPLITS = ("training", "testing")
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Bump when the decoded pixels change, so old cache files are never read again.
_CACHE_VERSION = 1
# BOX is an exact area average: no ringing, so the glyph background stays exactly 0.
_GLYPH_RESAMPLE = Image.Resampling.BOX
# Faces are both shrunk and stretched (92x112 -> 100x100); bilinear is smooth either way.
_FACE_RESAMPLE = Image.Resampling.BILINEAR
_DOWNLOAD_TIMEOUT_S = 20.0
_OMNIGLOT_URL = "https://github.com/brendenlake/omniglot (python/images_*.zip)"
_VINYALS_URL = (
    "https://github.com/jakesnell/prototypical-networks (data/omniglot/splits/vinyals/)"
)


def _env_hint() -> str:
    return ("or point the SIAMESE_LIB_DATA environment variable (or the root argument) "
            "elsewhere" + relative_root_note())


Index = torch.Tensor | np.ndarray | Sequence[int] | Sequence[bool] | slice
ImageSource = Path | bytes


@dataclass(eq=False, repr=False)
class ImageSet(Dataset):
    """A labelled image set held in memory, usable directly with a ``DataLoader``.

    Attributes:
        images: uint8 (N, C, H, W); ink or foreground bright, background 0 for glyphs.
        labels: int64 (N,), class index into ``classes``.
        classes: class names; ``classes[i]`` names label ``i``.
        groups: int64 (N,) index into ``group_names`` (the alphabet for Omniglot), or None.
        group_names: names of the groups, or None.
        drawers: int64 (N,), Omniglot drawer 1..20, or None.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    groups: torch.Tensor | None = None
    group_names: list[str] | None = None
    drawers: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        n = len(self.images)
        for name in ("labels", "groups", "drawers"):
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
        if (self.groups is None) != (self.group_names is None):
            raise ValueError("groups and group_names must be given together")
        _check_ids("labels", self.labels, self.classes)
        if self.groups is not None:
            _check_ids("groups", self.groups, self.group_names)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """One example as (float image in [0, 1] of shape (C, H, W), int label)."""
        return self.images[i].float() / 255, int(self.labels[i])

    def __repr__(self) -> str:
        groups = "" if self.group_names is None else f", groups={len(self.group_names)}"
        return (f"ImageSet(n={len(self)}, image_shape={tuple(self.images.shape[1:])}, "
                f"classes={self.num_classes}{groups})")

    @property
    def num_classes(self) -> int:
        """The number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, index: Index) -> ImageSet:
        """The examples picked by ``index``, with labels made dense again.

        Classes are renumbered 0..k-1 in their original order, and classes with no example
        left are dropped from ``classes``. Groups are treated the same way, so
        ``group_names`` only lists groups that still occur.

        Args:
            index: a boolean mask of length N, integer positions, or a slice.

        Returns:
            A new ImageSet in the order of ``index``; its tensors are copies unless
            ``index`` is a slice.
        """
        idx = _as_index(index, len(self))
        labels, classes = _compact(_take(self.labels, idx), self.classes)
        groups, group_names = (None, None)
        if self.groups is not None:
            groups, group_names = _compact(_take(self.groups, idx), self.group_names)
        drawers = None if self.drawers is None else _take(self.drawers, idx)
        return ImageSet(_take(self.images, idx), labels, classes, groups, group_names, drawers)

    def float(self) -> torch.Tensor:
        """All images as float32 in [0, 1], shape (N, C, H, W)."""
        return self.images.float().div_(255)


@dataclass(eq=False)
class LakeRun:
    """One 20-way one-shot trial set of Lake et al. (2015).

    Attributes:
        train: uint8 (20, 1, S, S), one image per class, in class order.
        test: uint8 (20, 1, S, S), the query images.
        answers: int64 (20,); ``answers[i]`` is the class (row of ``train``) of ``test[i]``.
    """

    train: torch.Tensor
    test: torch.Tensor
    answers: torch.Tensor


# ---------------------------------------------------------------------------------------
# MNIST


def load_mnist(train: bool = True, root: str | os.PathLike | None = None) -> ImageSet:
    """MNIST digits through ``torchvision.datasets.MNIST``.

    torchvision unpacks the ``.gz`` archives next to themselves. When ``<root>/MNIST/raw``
    is read-only (permission bits without write access count, even for root), the archives
    are copied to ``cache_dir("data")`` and unpacked there instead.

    Args:
        train: the 60000 training digits if True, else the 10000 test digits.
        root: the data folder; defaults to ``config.data_root()``.

    Returns:
        An ImageSet of uint8 (N, 1, 28, 28) images, classes "0".."9".
    """
    base = _mnist_root(data_root(root))
    try:
        with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
            mnist = torchvision.datasets.MNIST(str(base), train=train, download=True)
    except (RuntimeError, OSError) as e:
        raise FileNotFoundError(
            f"MNIST is not in {data_root(root) / 'MNIST' / 'raw'} and could not be downloaded "
            f"({str(e).splitlines()[0]}). Put the four files {', '.join(MNIST_FILES)} (.gz) "
            f"there, {_env_hint()}."
        ) from e
    images = mnist.data.unsqueeze(1).contiguous()
    return ImageSet(images, mnist.targets.long(), [str(d) for d in range(10)])


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
    if subset == "all":
        return _concat([load_omniglot(s, size, root, download) for s in OMNIGLOT_SUBSETS])
    folder = _ensure_omniglot(data_root(root), subset, download)
    digest = hashlib.sha256(f"{_CACHE_VERSION}:{folder.resolve()}".encode()).hexdigest()[:16]
    key = f"omniglot-{subset}-{size}-{digest}"
    return _cached(key, lambda: _read_omniglot(folder, size))


def _ensure_omniglot(root: Path, subset: str, download: bool) -> Path:
    """The subset's folder, downloaded first if allowed and needed."""
    folder = root / "omniglot-py" / f"images_{subset}"
    if folder.is_dir():
        return folder
    cause: Exception | None = None
    if download:
        try:
            with _socket_timeout(_DOWNLOAD_TIMEOUT_S):
                torchvision.datasets.Omniglot(
                    str(root), background=subset == "background", download=True
                )
        # Whatever went wrong (offline, read-only root, bad archive) the advice is the same.
        except Exception as err:
            cause = err
        if folder.is_dir():
            return folder
    message = (
        f"Omniglot folder not found: {folder}. Put the unpacked official images_background/ "
        f"and images_evaluation/ folders from {_OMNIGLOT_URL} in {folder.parent}, {_env_hint()}."
    )
    if cause is not None:
        message += f" The download failed: {cause!r}"
    raise FileNotFoundError(message) from cause


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
    split: str = "train",
    size: int = 28,
    root: str | os.PathLike | None = None,
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
    path = data_root(root) / "omniglot-splits" / "vinyals" / f"{split}.txt"
    lines = _read_vinyals_split(_ensure_file(
        path, downloads.VINYALS_URL.format(split=split), download,
        f"Vinyals split file not found: {path}. Copy train.txt, val.txt, test.txt and "
        f"trainval.txt from {_VINYALS_URL} into {path.parent}, {_env_hint()}.",
        sha256=downloads.VINYALS_SHA256[split],
    ))
    base = load_omniglot("all", size, root, download)
    members = dict(zip(base.classes, _indices_by_label(base.labels, base.num_classes), strict=True))
    picks = []
    for character, _ in lines:
        if character not in members:
            raise ValueError(f"Vinyals split {split!r} names an unknown character {character!r}")
        picks.append(members[character])
    source = torch.cat(picks)
    counts = [len(idx) for idx in picks]
    chunks = _take(base.images, source).split(counts)
    rotated = [torch.rot90(c, d // 90, dims=(2, 3)) for c, (_, d) in zip(chunks, lines, strict=True)]
    groups, group_names = _compact(_take(base.groups, source), base.group_names)
    return ImageSet(
        images=torch.cat(rotated),
        labels=torch.arange(len(lines)).repeat_interleave(torch.tensor(counts)),
        classes=[f"{character}/rot{degrees:03d}" for character, degrees in lines],
        groups=groups,
        group_names=group_names,
        drawers=_take(base.drawers, source),
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
    """
    path = data_root(root) / "omniglot-official-small" / "all_runs.zip"
    _ensure_file(
        path, downloads.LAKE_RUNS_URL, download,
        f"Lake's one-shot runs not found: {path}. Copy python/one-shot-classification/"
        f"all_runs.zip from https://github.com/brendenlake/omniglot there, {_env_hint()}.",
        md5=downloads.LAKE_RUNS_MD5,
    )
    with zipfile.ZipFile(path) as archive:
        runs = sorted(n.split("/")[0] for n in archive.namelist()
                      if re.fullmatch(r"run\d+/class_labels\.txt", n))
        return [_read_lake_run(archive, run, size) for run in runs]


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
    size: tuple[int, int] = (100, 100),
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> ImageSet:
    """The AT&T (ORL) faces from ``<root>/att_faces/<split>/sNN/*.pgm``, not inverted.

    Args:
        split: "training" (37 subjects), "testing" (3) or "all" (40).
        size: output (height, width) in pixels; (112, 92) keeps the originals.
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
    cause = None
    if download and not all(f.is_dir() for f in folders):
        try:
            _download_att_faces(base)
        except Exception as err:  # offline, read-only root, changed archive: same advice
            cause = err
    subjects: dict[str, list[Path]] = {}
    for folder in folders:
        if not folder.is_dir():
            message = (
                f"AT&T faces folder not found: {folder}. Put the sNN/ subject folders of the "
                f"AT&T (ORL) face database there (data/faces/ of {downloads.ATT_FACES_URL}), "
                f"{_env_hint()}."
            )
            if cause is not None:
                message += f" The download failed: {cause!r}"
            raise FileNotFoundError(message) from cause
        for subject in _subdirs(folder):
            subjects.setdefault(subject.name, []).extend(
                p for p in subject.iterdir() if p.suffix.lower() == ".pgm")
    classes = sorted((s for s in subjects if subjects[s]), key=_natural_key)
    if not classes:
        raise FileNotFoundError(f"no .pgm images under {', '.join(map(str, folders))}")
    paths = [p for s in classes for p in sorted(subjects[s], key=lambda p: _natural_key(p.name))]
    height, width = size
    arrays = [_decode(p, str(p), (width, height), _FACE_RESAMPLE) for p in paths]
    labels = [i for i, s in enumerate(classes) for _ in subjects[s]]
    return ImageSet(_stack(arrays), torch.tensor(labels), classes)


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
# Your own images


def load_images(
    paths: Iterable[str | os.PathLike],
    size: int | tuple[int, int] = 28,
    channels: int = 1,
    invert: bool = False,
) -> torch.Tensor:
    """Image files as one uint8 (N, C, H, W) tensor, ready for a trained net.

    Args:
        paths: image files in any format Pillow reads (PNG, JPEG, PGM, ...).
        size: output height = width, or (height, width); every image is resized
            (stretched if its aspect ratio differs) to it. Use the size the net was
            trained on: ``net.input_size``.
        channels: 1 for grey levels (every recipe of the book), 3 for RGB.
        invert: turn dark-on-light drawings (pen on paper, scans) into light-on-dark. The
            book's MNIST and Omniglot models saw bright ink on a black background; photos
            such as faces are not inverted.

    Raises:
        ValueError: no paths, or ``channels`` is not 1 or 3.
        OSError: a file is missing or is not an image Pillow can read (the message names it).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no image files given")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey levels) or 3 (RGB), got {channels}")
    height, width = (size, size) if isinstance(size, int) else size
    mode = "L" if channels == 1 else "RGB"
    arrays = [_decode(p, str(p), (width, height), _FACE_RESAMPLE, mode) for p in paths]
    images = torch.from_numpy(np.stack(arrays))
    images = images.unsqueeze(1) if channels == 1 else images.permute(0, 3, 1, 2).contiguous()
    return 255 - images if invert else images


def load_image_folder(
    folder: str | os.PathLike,
    size: int | tuple[int, int] = 28,
    channels: int = 1,
    invert: bool = False,
) -> ImageSet:
    """Your own labelled images, from one subfolder per class (torchvision's ImageFolder layout).

    ::

        folder/
            alice/  1.jpg  2.jpg
            bob/    a.png

    A support set for one-shot classification needs one image per class; evaluating a
    model with episodes needs at least two (one to show, one to ask about). Classes are
    the subfolder names in natural order (s2 before s10); files whose extension is not an
    image's (``torchvision.datasets.folder.IMG_EXTENSIONS``) and hidden files and folders
    (``.ipynb_checkpoints``) are skipped.

    Args:
        folder: the folder that holds the class subfolders.
        size, channels, invert: as for :func:`load_images`.

    Returns:
        An ImageSet of uint8 (N, C, H, W) images, its classes named after the subfolders.

    Raises:
        FileNotFoundError: the folder is missing, has no class subfolders, or a class
            subfolder holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    classes = sorted((d for d in _subdirs(folder) if not d.name.startswith(".")),
                     key=lambda d: _natural_key(d.name))
    if not classes:
        raise FileNotFoundError(
            f"{folder} has no class subfolders: put the images of each class in a subfolder "
            f"named after the class ({folder / 'alice' / '1.jpg'}, {folder / 'bob' / '1.jpg'}, ...)"
        )
    files = {d.name: image_files(d) for d in classes}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise FileNotFoundError(
            f"class folder(s) {', '.join(empty)} of {folder} hold no image (looked for "
            f"{' '.join(IMG_EXTENSIONS)}); add images or remove the folder"
        )
    paths = [p for d in classes for p in files[d.name]]
    labels = torch.tensor([i for i, d in enumerate(classes) for _ in files[d.name]])
    images = load_images(paths, size, channels, invert)
    return ImageSet(images, labels, [d.name for d in classes])


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, in natural order, hidden files skipped."""
    folder = Path(folder)
    return sorted(
        (p for p in folder.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMG_EXTENSIONS),
        key=lambda p: _natural_key(p.name),
    )


def _ensure_file(path: Path, url: str, download: bool, missing: str, **checksum: str) -> Path:
    """``path``, downloaded from ``url`` first if it is missing and ``download`` is on.

    Raises:
        FileNotFoundError: ``missing`` (plus why the download failed), if still missing.
    """
    if path.is_file():
        return path
    cause = None
    if download:
        try:
            return downloads.download(url, path, **checksum)
        except Exception as err:  # offline, read-only root, changed file: same advice
            cause = err
    raise FileNotFoundError(
        missing + (f" The download from {url} failed: {cause!r}" if cause else "")
    ) from cause


# ---------------------------------------------------------------------------------------
# Shared helpers


def _decode(source: ImageSource, name: str, size: tuple[int, int], resample: int,
            mode: str = "L") -> np.ndarray:
    """One image as a uint8 (H, W) array of grey levels (or (H, W, 3) for ``mode="RGB"``),
    resized to ``size`` = (W, H)."""
    try:
        # Reading the bytes first avoids PIL's slower file-object path (about 2x here).
        data = source if isinstance(source, bytes) else source.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            pixels = image.convert(mode)
    except (OSError, SyntaxError, ValueError) as err:
        raise OSError(f"cannot read image {name}: {err}") from err
    if pixels.size != size:
        pixels = pixels.resize(size, resample)
    return np.asarray(pixels)


def _glyphs(items: Iterable[tuple[ImageSource, str]], size: int) -> torch.Tensor:
    """Omniglot images as uint8 (N, 1, size, size), ink 255 and background 0."""
    arrays = [_decode(src, name, (size, size), _GLYPH_RESAMPLE) for src, name in items]
    # Area averaging is linear, so inverting after resizing equals inverting before.
    return 255 - _stack(arrays)


def _stack(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).unsqueeze(1)


def _cached(key: str, build: Callable[[], ImageSet]) -> ImageSet:
    """Load ``key`` from the cache folder, else build it and store it atomically."""
    path = cache_dir("data") / f"{key}.pt"
    if path.is_file():
        try:
            return ImageSet(**torch.load(path, weights_only=True))
        # A truncated or foreign cache file is rebuilt rather than trusted.
        except Exception:
            pass
    result = build()
    state = {f.name: getattr(result, f.name) for f in fields(result)}
    atomic_write(path, lambda fh: torch.save(state, fh))
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


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every socket operation inside the block, so a dead network cannot hang us."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


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


def _compact(ids: torch.Tensor, names: Sequence[str]) -> tuple[torch.Tensor, list[str]]:
    """Renumber ``ids`` densely, keeping their order, and keep only the names still used."""
    used, dense = torch.unique(ids, sorted=True, return_inverse=True)
    return dense.long(), [names[i] for i in used.tolist()]


def _indices_by_label(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """For each class, the positions of its examples, in their original order."""
    order = torch.argsort(labels, stable=True)
    return list(order.split(torch.bincount(labels, minlength=num_classes).tolist()))


def _as_index(index: Index, n: int) -> torch.Tensor | slice:
    """A slice, or int64 positions, from a mask, a position list or a slice."""
    if isinstance(index, slice):
        return index
    idx = torch.as_tensor(index)
    if idx.dtype == torch.bool:
        if tuple(idx.shape) != (n,):
            raise ValueError(f"a boolean mask must have shape ({n},), got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.numel() and idx.is_floating_point():
        raise TypeError(f"index must be integers or booleans, got {idx.dtype}")
    return idx.long().flatten()


def _take(values: torch.Tensor, idx: torch.Tensor | slice) -> torch.Tensor:
    """Rows of ``values``; index_select stays fast when other processes compete for the
    cores, where advanced indexing of image tensors was seen to slow down 100-fold."""
    return values[idx] if isinstance(idx, slice) else values.index_select(0, idx)


def _check_ids(name: str, ids: torch.Tensor, names: Sequence[str]) -> None:
    if ids.dtype != torch.int64:
        raise ValueError(f"{name} must be int64, got {ids.dtype}")
    if ids.numel() and not 0 <= int(ids.min()) <= int(ids.max()) < len(names):
        raise ValueError(f"{name} must lie in 0..{len(names) - 1}")


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _natural_key(name: str) -> list[int | str]:
    """Sort key that orders s2 before s10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
