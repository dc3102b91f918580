"""Your own images: files and folders (one subfolder per class) as tensors and image sets.

Taught in chapter 6 (Faces: verification of people never seen) and on the book's "Your
own images" page. :func:`load_image_folder` reads torchvision's ImageFolder layout into an
:class:`~siamese_lib.imageset.ImageSet`, :func:`load_images` reads a list of files, and
both take a ``transform`` applied to each decoded image before it is resized (as easyfsl's
``SupportSetFolder`` does). Every image becomes grey levels (or RGB) the way it looks on
screen: 16-bit images keep their grey levels, transparent backgrounds become white, and
JPEGs are turned upright by their EXIF orientation.
"""

from __future__ import annotations

import io
import numbers
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .imageset import ImageSet

#: A hook applied to each decoded image (already grey or RGB) before it is resized:
#: a PIL image in, a PIL image out (a crop, a torchvision PIL transform, ...).
Transform = Callable[[Image.Image], Image.Image]

# Photos are both shrunk and stretched (92x112 -> 100x100); bilinear is smooth either way.
_RESAMPLE = Image.Resampling.BILINEAR
_WHITE = {"L": 255, "RGB": (255, 255, 255)}


def decode_image(
    source: str | os.PathLike | bytes,
    size: tuple[int, int],
    mode: str = "L",
    resample: int = _RESAMPLE,
    name: str | None = None,
    transform: Transform | None = None,
) -> np.ndarray:
    """One image file (or its bytes) as a uint8 array, resized to ``size``.

    Args:
        source: the file, or its bytes.
        size: the output (width, height), PIL's order.
        mode: "L" for grey levels, (H, W), or "RGB", (H, W, 3).
        resample: PIL's resampling filter for the resize.
        name: how error messages call the image (by default the path).
        transform: applied to the decoded image before resizing (see :data:`Transform`).

    Raises:
        OSError: the file is missing or is not an image Pillow can read (the message
            names it).
        TypeError: ``transform`` did not return a PIL image.
    """
    name = name or str(source if not isinstance(source, bytes) else "<bytes>")
    try:
        # Reading the bytes first avoids PIL's slower file-object path (about 2x here).
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            pixels = _as_mode(ImageOps.exif_transpose(image), mode)
    except (OSError, SyntaxError, ValueError) as err:
        raise OSError(f"cannot read image {name}: {err}") from err
    if transform is not None:
        pixels = transform(pixels)
        if not isinstance(pixels, Image.Image):
            raise TypeError(f"transform must return a PIL image, got {type(pixels).__name__} "
                            f"for {name}; apply tensor transforms after loading instead")
        pixels = pixels.convert(mode)
    if pixels.size != size:
        pixels = pixels.resize(size, resample)
    return np.asarray(pixels)


def _as_mode(image: Image.Image, mode: str) -> Image.Image:
    """``image`` as it looks on a white page, in ``mode`` ("L" or "RGB").

    PIL's own ``convert`` clips 16- and 32-bit grey levels at 255 (a 16-bit scan turns
    white) and drops transparency (black ink on a transparent background turns black).
    """
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        image = Image.fromarray(_eight_bit(np.asarray(image)), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        page = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(page, rgba)
    return image.convert(mode)


def _eight_bit(values: np.ndarray) -> np.ndarray:
    """Grey levels of a 16-bit, 32-bit or float image scaled to 0..255.

    Float images in [0, 1] are scaled by 255; anything with values above 255 is read as
    16-bit (0..65535), the range of every such PNG and TIFF.
    """
    floats = values.dtype.kind == "f"
    values = np.nan_to_num(values.astype(np.float64))
    if floats and values.size and values.max() <= 1.0:
        values = values * 255
    elif values.size and values.max() > 255:
        values = values / 257  # 65535 -> 255
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def load_images(
    paths: Iterable[str | os.PathLike],
    size: int | tuple[int, int] = 28,
    channels: int = 1,
    invert: bool = False,
    transform: Transform | None = None,
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
        transform: applied to each decoded image (a PIL image, already grey or RGB)
            before it is resized, e.g. a crop.

    Raises:
        ValueError: no paths, a bad ``size``, or ``channels`` is not 1 or 3.
        TypeError: ``paths`` is one path rather than a list of them.
        OSError: a file is missing or is not an image Pillow can read (the message names it).
    """
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError(f"paths must be a list of image files, got the single path {paths!r}: "
                        "pass [path]")
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no image files given")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey levels) or 3 (RGB), got {channels}")
    height, width = _height_width(size)
    mode = "L" if channels == 1 else "RGB"
    arrays = [decode_image(p, (width, height), mode, transform=transform) for p in paths]
    images = torch.from_numpy(np.stack(arrays))
    images = images.unsqueeze(1) if channels == 1 else images.permute(0, 3, 1, 2).contiguous()
    return 255 - images if invert else images


def _height_width(size: int | tuple[int, int]) -> tuple[int, int]:
    hw = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(hw) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                               and s >= 1 for s in hw):
        raise ValueError(f"size must be a positive whole number or (height, width), got {size!r}")
    return int(hw[0]), int(hw[1])


def load_image_folder(
    folder: str | os.PathLike,
    size: int | tuple[int, int] = 28,
    channels: int = 1,
    invert: bool = False,
    transform: Transform | None = None,
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
        size, channels, invert, transform: as for :func:`load_images`.

    Returns:
        An ImageSet of uint8 (N, C, H, W) images, its classes named after the subfolders.

    Raises:
        FileNotFoundError: the folder is missing, has no class subfolders, or a class
            subfolder holds no image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}"
                                + (" (it is a file, not a folder)" if folder.exists() else ""))
    classes = class_folders(folder)
    if not classes:
        raise FileNotFoundError(
            f"{folder} has no class subfolders: put the images of each class in a subfolder "
            f"named after the class ({folder / 'alice' / '1.jpg'}, {folder / 'bob' / '1.jpg'}, ...)"
        )
    files = {d.name: image_files(d) for d in classes}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        from torchvision.datasets.folder import IMG_EXTENSIONS

        raise FileNotFoundError(
            f"class folder(s) {', '.join(empty)} of {folder} hold no image (looked for "
            f"{' '.join(IMG_EXTENSIONS)}); add images or remove the folder"
        )
    paths = [p for d in classes for p in files[d.name]]
    labels = torch.tensor([i for i, d in enumerate(classes) for _ in files[d.name]])
    images = load_images(paths, size, channels, invert, transform)
    return ImageSet(images, labels, [d.name for d in classes])


def class_folders(folder: str | os.PathLike) -> list[Path]:
    """The subfolders of ``folder`` in natural order (s2 before s10), hidden ones skipped."""
    return sorted((d for d in Path(folder).iterdir() if d.is_dir() and not d.name.startswith(".")),
                  key=lambda d: natural_key(d.name))


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, in natural order, hidden files skipped.

    Image files are those with an extension of ``torchvision.datasets.folder.IMG_EXTENSIONS``.
    """
    # imported here: torchvision takes seconds to import, and the CLI imports this module
    from torchvision.datasets.folder import IMG_EXTENSIONS

    folder = Path(folder)
    return sorted(
        (p for p in folder.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMG_EXTENSIONS),
        key=lambda p: natural_key(p.name),
    )


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders s2 before s10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]
