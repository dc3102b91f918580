"""Tests for siamese_lib.folders: your own images decode the way they look on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamese_lib.folders import load_image_folder, load_images


def save(image: Image.Image, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def ink_on_transparent(mode: str) -> Image.Image:
    """Black ink (a 4x4 square in the middle) on a fully transparent 8x8 background."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 2:6, 3] = 255  # opaque black ink; elsewhere transparent black
    image = Image.fromarray(rgba, "RGBA")
    return image if mode == "RGBA" else image.convert(mode)


def test_top_level_names() -> None:
    import siamese_lib
    from siamese_lib import ImageSet, image_files, load_image_folder, load_images  # noqa: F401

    assert siamese_lib.load_image_folder is load_image_folder


def test_a_16_bit_grey_png_keeps_its_grey_levels(tmp_path: Path) -> None:
    levels = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = save(Image.fromarray(levels), tmp_path / "scan.png")
    assert Image.open(path).mode.startswith("I")
    image = load_images([path], size=(4, 4))[0, 0]
    # 65535 is white, 0 black, the rest in between (it used to be all 255 but the 0s)
    assert image[0].tolist() == [0, 64, 128, 255]


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_black_ink_on_a_transparent_background_lands_on_white(mode: str, tmp_path: Path) -> None:
    image = ink_on_transparent(mode)
    if mode == "P":
        image = ink_on_transparent("RGBA").convert("RGB").convert("P")
        # index of the background colour (black) becomes the transparent one... so draw the
        # ink in another colour to tell them apart: ink black, background index transparent
        palette = np.zeros((8, 8), np.uint8)
        palette[2:6, 2:6] = 1
        image = Image.fromarray(palette, "P")
        image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
        image.info["transparency"] = 0
    path = save(image, tmp_path / f"ink_{mode}.png")
    grey = load_images([path], size=8)[0, 0]
    assert int(grey[0, 0]) == 255, "the transparent background must be white, not black"
    assert int(grey[3, 3]) == 0, "the ink stays black"
    rgb = load_images([path], size=8, channels=3)[0]
    assert rgb[:, 0, 0].tolist() == [255, 255, 255]


def test_an_exif_rotated_jpeg_is_read_upright(tmp_path: Path) -> None:
    # a camera held sideways: stored 16 wide x 8 high, EXIF orientation 6 = rotate 90 cw
    stored = np.zeros((8, 16), np.uint8)
    stored[:, :8] = 255  # left half white as stored -> top half white when upright
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(stored), tmp_path / "photo.jpg", exif=exif, quality=100)
    image = load_images([path], size=(16, 8))[0, 0].float()  # upright: 16 high, 8 wide
    assert image[:6].mean() > 200 and image[-6:].mean() < 50


def test_cmyk_and_palette_images_keep_their_grey(tmp_path: Path) -> None:
    grey = Image.fromarray(np.full((6, 6), 100, np.uint8))
    cmyk = save(grey.convert("RGB").convert("CMYK"), tmp_path / "cmyk.jpg", quality=100)
    palette = save(grey.convert("P"), tmp_path / "palette.png")
    for path in (cmyk, palette):
        assert abs(load_images([path], size=6).float().mean() - 100) < 3, path


def test_transform_runs_on_the_decoded_image_before_the_resize(tmp_path: Path) -> None:
    array = np.zeros((20, 20), np.uint8)
    array[:10, :10] = 255  # white top-left quarter
    save(Image.fromarray(array), tmp_path / "set" / "a" / "1.png")
    seen = []

    def crop(image: Image.Image) -> Image.Image:
        seen.append((image.mode, image.size))
        return image.crop((0, 0, 10, 10))  # just the white quarter

    images = load_image_folder(tmp_path / "set", size=5, transform=crop)
    assert seen == [("L", (20, 20))]
    assert images.images.shape == (1, 1, 5, 5) and bool((images.images == 255).all())


def test_a_transform_that_returns_no_image_is_named(tmp_path: Path) -> None:
    path = save(Image.new("L", (4, 4)), tmp_path / "x.png")
    with pytest.raises(TypeError, match="transform must return a PIL image, got Tensor"):
        load_images([path], transform=lambda image: torch.zeros(1))


def test_one_path_instead_of_a_list_is_refused(tmp_path: Path) -> None:
    path = save(Image.new("L", (4, 4)), tmp_path / "x.png")
    with pytest.raises(TypeError, match="pass \\[path\\]"):
        load_images(path)
    with pytest.raises(TypeError, match="list of image files"):
        load_images(str(path))


@pytest.mark.parametrize("size", [0, -3, (4,), (4, 0), 2.5, (4, "4"), True])
def test_a_bad_size_is_refused(size, tmp_path: Path) -> None:
    path = save(Image.new("L", (4, 4)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="size must be"):
        load_images([path], size=size)


def test_a_file_instead_of_a_folder_is_named(tmp_path: Path) -> None:
    path = save(Image.new("L", (4, 4)), tmp_path / "x.png")
    with pytest.raises(FileNotFoundError, match="it is a file, not a folder"):
        load_image_folder(path)
