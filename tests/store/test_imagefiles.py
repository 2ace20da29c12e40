"""decode_image on real photos in every supported format, on damaged files and on bombs."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFile

from store.imagefiles import FORMATS, ImageRejected, decode_image, image_relpath, write_image_file
from tests.store import hostile

CAP = 100_000_000


def encode(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **options)
    return buf.getvalue()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def bus(photos: dict[str, Path]) -> bytes:
    return photos["bus.jpg"].read_bytes()


@pytest.mark.parametrize(
    ("fmt", "array"),
    [
        ("PNG", skimage.data.astronaut()),
        ("WEBP", skimage.data.coffee()),
        ("BMP", skimage.data.chelsea()),
        ("TIFF", skimage.data.rocket()),
        ("JPEG", skimage.data.camera()),
    ],
)
def test_real_photo_is_kept_byte_for_byte(fmt: str, array: np.ndarray) -> None:
    data = encode(array, fmt)
    image = decode_image(data, max_pixels=CAP)
    assert (image.format, image.ext, image.reoriented) == (fmt, FORMATS[fmt], False)
    assert (image.height, image.width) == array.shape[:2]
    assert image.data is data
    assert image.sha256 == hashlib.sha256(data).hexdigest()


def test_real_jpeg_from_ultralytics(bus: bytes) -> None:
    image = decode_image(bus, max_pixels=CAP)
    assert (image.format, image.width, image.height) == ("JPEG", 810, 1080)


def test_multi_picture_jpeg_is_a_jpeg() -> None:
    # Phones and stereo cameras append a second picture (MPO); it is still a JPEG to every reader.
    buf = io.BytesIO()
    first, second = Image.fromarray(skimage.data.chelsea()), Image.fromarray(skimage.data.coffee())
    first.save(buf, format="MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(buf.getvalue())).format == "MPO"
    image = decode_image(buf.getvalue(), max_pixels=CAP)
    assert (image.format, image.ext, image.width, image.height) == ("JPEG", ".jpg", 451, 300)
    assert image.data == buf.getvalue()


# EXIF orientation -> how the stored pixels relate to the pixels as encoded.
ORIENTATIONS = {3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", sorted(ORIENTATIONS))
@pytest.mark.parametrize(("fmt", "tolerance"), [("JPEG", 3.0), ("PNG", 0.0), ("WEBP", 0.0), ("TIFF", 0.0)])
def test_exif_orientation_is_applied_and_dropped(orientation: int, fmt: str, tolerance: float) -> None:
    array = skimage.data.chelsea()  # 451 x 300: not square, so a swap shows
    if fmt == "TIFF":
        data = encode(array, fmt, tiffinfo={274: orientation})
    else:
        exif = Image.Exif()
        exif[274] = orientation
        data = encode(array, fmt, exif=exif, **({"lossless": True} if fmt == "WEBP" else {}))
    image = decode_image(data, max_pixels=CAP)
    expected = ORIENTATIONS[orientation](pixels(data) if fmt != "TIFF" else array.astype(int))
    assert image.reoriented and image.format == fmt
    assert (image.height, image.width) == expected.shape[:2]
    assert np.abs(pixels(image.data) - expected).mean() <= tolerance
    assert Image.open(io.BytesIO(image.data)).getexif().get(274) in (None, 1)
    assert image.sha256 == hashlib.sha256(image.data).hexdigest()


def test_orientation_one_keeps_the_original_bytes() -> None:
    exif = Image.Exif()
    exif[274] = 1
    data = encode(skimage.data.chelsea(), "JPEG", exif=exif)
    image = decode_image(data, max_pixels=CAP)
    assert image.data is data and not image.reoriented and (image.width, image.height) == (451, 300)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


PNG = encode(skimage.data.astronaut(), "PNG")
TIFF = encode(skimage.data.rocket(), "TIFF")
BMP = encode(skimage.data.chelsea(), "BMP")
WEBP = encode(skimage.data.coffee(), "WEBP")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"hello, I am a text file named photo.jpg\n",
            "not an image (supported: JPEG, PNG, WebP, BMP, TIFF)",
        ),
        (b"", "not an image"),
        (encode(skimage.data.camera(), "GIF"), "not an image"),
        (PNG[: len(PNG) // 2], "truncated PNG"),
        (TIFF[: len(TIFF) // 2], "truncated TIFF"),
        (BMP[: len(BMP) // 2], "truncated BMP"),
        (WEBP[: len(WEBP) // 2], "corrupt image"),
        (_flip(PNG, 5000), "corrupt PNG: broken PNG file"),
        (hostile.png_bomb(20000, 20000), "image too large: 20000x20000 > pixel cap 100,000,000"),
        (hostile.png_bomb(12000, 10000), "image too large: 12000x10000 > pixel cap 100,000,000"),
        (hostile.png_bomb(100_000, 100_000, valid=False), "image too large: 100000x100000"),
        (hostile.bmp_bomb(30000, 30000), "image too large: 30000x30000"),
    ],
    ids=[
        "text",
        "empty",
        "gif",
        "cut-png",
        "cut-tiff",
        "cut-bmp",
        "cut-webp",
        "bad-crc",
        "png-bomb",
        "png-bomb-under-pillow-error",
        "header-bomb",
        "bmp-bomb",
    ],  # fmt: skip
)
def test_rejected_with_reason(data: bytes, reason: str) -> None:
    before = (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES)
    with pytest.raises(ImageRejected) as info:
        decode_image(data, max_pixels=CAP)
    assert info.value.reason.startswith(reason)
    assert (Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES) == before  # policy restored


def test_truncated_jpeg(bus: bytes) -> None:
    with pytest.raises(ImageRejected, match="^truncated JPEG$"):
        decode_image(bus[: len(bus) // 2], max_pixels=CAP)


def test_global_truncated_switch_does_not_weaken_the_check(
    bus: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(ImageRejected, match="truncated JPEG"):
        decode_image(bus[: len(bus) // 2], max_pixels=CAP)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def test_pixel_cap_is_ours_not_pillows(bus: bytes) -> None:
    with pytest.raises(ImageRejected, match=r"image too large: 810x1080 > pixel cap 800,000"):
        decode_image(bus, max_pixels=800_000)
    assert decode_image(bus, max_pixels=810 * 1080).width == 810


def test_bad_cap_is_refused(bus: bytes) -> None:
    with pytest.raises(ValueError, match="max_pixels must be positive, got 0"):
        decode_image(bus, max_pixels=0)


SHA = "ab" + "0" * 62


def test_image_relpath() -> None:
    assert image_relpath(project_id=7, sha256=SHA, ext=".png") == f"images/7/ab/{SHA}.png"


@pytest.mark.parametrize(
    ("sha", "ext", "message"),
    [
        ("../../etc/passwd", ".jpg", "sha256 must be 64 lowercase hex digits"),
        (SHA.upper(), ".jpg", "sha256 must be 64 lowercase hex digits"),
        (SHA, ".sh", "ext must be one of"),
        (SHA, "/../x", "ext must be one of"),
    ],
)
def test_image_relpath_refuses_anything_but_hash_and_known_ext(sha: str, ext: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_relpath(project_id=1, sha256=sha, ext=ext)


def test_write_image_file_reports_what_it_created(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    rel = image_relpath(project_id=3, sha256=SHA, ext=".jpg")
    created = write_image_file(home, rel, b"one")
    assert created == [home / "images", home / "images/3", home / "images/3/ab", home / rel]
    assert (home / rel).read_bytes() == b"one"
    # The same file again (left by an interrupted run): written, but not claimed as created.
    assert write_image_file(home, rel, b"one") == []
    assert sorted(p.name for p in (home / "images/3/ab").iterdir()) == [f"{SHA}.jpg"]  # no temp left


def test_write_image_file_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()

    def disk_full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("store.imagefiles.os.replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_image_file(home, image_relpath(project_id=3, sha256=SHA, ext=".jpg"), b"one")
    assert list(home.iterdir()) == []
