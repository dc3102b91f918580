"""Tests for siamese_lib.folders: your own images decode the way they look on screen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from siamese_lib import data
from siamese_lib.config import data_root
from siamese_lib.folders import image_files, load_image_folder, load_images


def need(*parts: str) -> Path:
    """The path under the data root, or skip the test if it is not there."""
    path = data_root().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found; set SIAMESE_LIB_DATA to the folder of shared/data")
    return path


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
    from siamese_lib import ImageSet, load_images  # noqa: F401

    assert siamese_lib.load_image_folder is load_image_folder
    assert siamese_lib.image_files is image_files and data.image_files is image_files


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


# ------------------------------------------------------------------- your own image folders


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _grey(value: int, shape: tuple[int, int] = (40, 30)) -> np.ndarray:
    return np.full(shape, value, dtype=np.uint8)


def test_load_image_folder_reads_classes_in_natural_order(tmp_path: Path) -> None:
    _write(tmp_path / "s10" / "1.png", _grey(10))
    _write(tmp_path / "s2" / "b.jpg", _grey(200))
    _write(tmp_path / "s2" / "a.png", _grey(20))
    (tmp_path / "s2" / "notes.txt").write_text("not an image")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _write(tmp_path / "s2" / ".hidden.png", _grey(99))

    images = load_image_folder(tmp_path, size=(12, 8))

    assert images.classes == ["s2", "s10"]
    assert images.labels.tolist() == [0, 0, 1]
    assert images.images.shape == (3, 1, 12, 8)
    assert images.images.dtype == torch.uint8
    # a.png before b.jpg; a constant image stays constant through resizing (JPEG: nearly)
    assert images.images[0].unique().tolist() == [20]
    assert abs(int(images.images[1].float().mean()) - 200) <= 2
    assert images.images[2].unique().tolist() == [10]


def test_load_image_folder_inverts_and_reads_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((6, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # pure red
    _write(tmp_path / "red" / "1.png", rgb)

    grey = load_image_folder(tmp_path, size=6, invert=True)
    colour = load_image_folder(tmp_path, size=6, channels=3)

    red_as_grey = round(0.299 * 255)  # ITU-R 601-2 luma, as Pillow's "L" conversion
    assert grey.images.unique().tolist() == [255 - red_as_grey]
    assert colour.images.shape == (1, 3, 6, 6)
    assert colour.images[0, :, 0, 0].tolist() == [255, 0, 0]


def test_load_images_matches_the_folder_loader(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    paths = [_write(tmp_path / "c" / f"{i}.png", rng.integers(0, 256, (20, 20), dtype=np.uint8))
             for i in range(3)]
    assert torch.equal(load_images(paths, size=20), load_image_folder(tmp_path, 20).images)
    assert torch.equal(load_images(paths[:1], size=20)[0, 0],
                       torch.from_numpy(np.array(Image.open(paths[0]))))


def test_load_image_folder_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        load_image_folder(tmp_path / "nowhere")
    _write(tmp_path / "flat.png", _grey(0))
    with pytest.raises(FileNotFoundError, match="no class subfolders: put the images"):
        load_image_folder(tmp_path)
    _write(tmp_path / "alice" / "1.png", _grey(0))
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "readme.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"class folder\(s\) bob .* hold no image"):
        load_image_folder(tmp_path)
    (tmp_path / "bob" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(OSError, match="cannot read image .*broken.png"):
        load_image_folder(tmp_path)


def test_load_images_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no image files"):
        load_images([])
    path = _write(tmp_path / "a.png", _grey(0))
    with pytest.raises(ValueError, match="channels must be 1 .* or 3"):
        load_images([path], channels=2)
    with pytest.raises(OSError, match="cannot read image .*missing.png"):
        load_images([tmp_path / "missing.png"])


def test_the_faces_folder_loads_like_load_att_faces() -> None:
    folder = need("att_faces", "testing")
    assert torch.equal(load_image_folder(folder, size=100).images,
                       data.load_att_faces("testing", download=False).images)
