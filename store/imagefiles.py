"""Image bytes in, validated image out: decode by content, EXIF-orient, and store by hash.

Ingest hands every candidate file to :func:`decode_image`; it either returns the bytes to keep
(the original bytes when no rotation is needed, else a re-encoding of the oriented image) with
their hash and the oriented size, or raises :class:`ImageRejected` with a reason a person can act
on. :func:`write_image_file` stores those bytes under the data home at a path made only of the
project id and the hash, so nothing a file or archive names can steer where we write.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

# Pillow format name -> extension of the stored file. Only these parsers ever see untrusted bytes.
FORMATS: dict[str, str] = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif"}
_SUPPORTED = "supported: JPEG, PNG, WebP, BMP, TIFF"
_FORMAT_ALIASES = {"MPO": "JPEG"}

# Pillow's bomb cap and truncated-image switch are module globals; we set our own policy only
# while holding this lock, so two ingests (or an ingest and a server thread) never race on them.
_PILLOW_POLICY = threading.Lock()


class ImageRejected(ValueError):
    """A file that is not kept; ``reason`` is the short text shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DecodedImage:
    data: bytes  # what gets stored: the original bytes, or the re-encoded oriented image
    format: str  # Pillow format name, a key of FORMATS
    width: int  # of the oriented image
    height: int
    sha256: str  # of ``data``
    reoriented: bool

    @property
    def ext(self) -> str:
        return FORMATS[self.format]


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Validate ``data`` as a whole image and return what to store.

    The format comes from the content, never a file name. The pixel cap is checked on the header
    before any pixel is decoded; then ``verify`` (checksums) and a full decode must both pass,
    which catches truncated and corrupt files that a header read would accept.

    Raises:
        ImageRejected: not a supported image, too many pixels, truncated or corrupt.
    """
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    with _PILLOW_POLICY, warnings.catch_warnings():
        previous_cap, previous_truncated = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return _decode(data, max_pixels)
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = previous_cap, previous_truncated


def _open(data: bytes) -> ImageFile.ImageFile:
    try:
        return Image.open(io.BytesIO(data), formats=list(FORMATS))
    except UnidentifiedImageError:
        raise ImageRejected(f"not an image ({_SUPPORTED})") from None


def _decode(data: bytes, max_pixels: int) -> DecodedImage:
    fmt = "image"
    try:
        # Header only, with Pillow's own cap lifted so we can name the size; nothing is decoded yet.
        Image.MAX_IMAGE_PIXELS = None
        head = _open(data)
        # Pillow names a JPEG with a second picture appended (phones, stereo cameras) "MPO".
        fmt, (width, height) = _FORMAT_ALIASES.get(head.format or fmt, head.format or fmt), head.size
        if width * height > max_pixels:
            raise ImageRejected(f"image too large: {width}x{height} > pixel cap {max_pixels:,}")
        # From here on Pillow enforces the cap too (TIFF tiles, later frames).
        Image.MAX_IMAGE_PIXELS = max_pixels
        head.verify()
        im = _open(data)
        # Read before load: Pillow's TIFF loader rotates in place and then drops the tag.
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        im.load()
        if orientation not in range(2, 9):
            return DecodedImage(data, fmt, width, height, hashlib.sha256(data).hexdigest(), False)
        oriented = ImageOps.exif_transpose(im)
        stored = _encode(oriented, fmt, im.info.get("icc_profile"))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"image too large: {_pixels_of(exc)} > pixel cap {max_pixels:,}") from None
    except ImageRejected:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError) as exc:
        # Pillow reports damage with whichever of these its parser hits first.
        if isinstance(exc, EOFError) or "truncated" in str(exc).lower():
            raise ImageRejected(f"truncated {fmt}") from None
        raise ImageRejected(f"corrupt {fmt}: {exc}") from None
    return DecodedImage(
        stored, fmt, oriented.width, oriented.height, hashlib.sha256(stored).hexdigest(), True
    )


def _pixels_of(exc: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"{int(found.group(1)):,} pixels" if found else "too many pixels"


def _encode(im: Image.Image, fmt: str, icc_profile: bytes | None) -> bytes:
    """Re-encode an oriented image in its own format: lossless where the format allows."""
    options: dict[str, object] = {"exif": im.info.get("exif", b"")}
    if icc_profile:
        options["icc_profile"] = icc_profile
    if fmt == "JPEG":
        options["quality"] = 95
    elif fmt == "WEBP":
        options["lossless"] = True
    elif fmt == "TIFF":
        options["compression"] = "tiff_adobe_deflate"
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def image_relpath(*, project_id: int, sha256: str, ext: str) -> str:
    """Where an image lives, relative to the data home: ``images/<project>/<sha[:2]>/<sha><ext>``."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"sha256 must be 64 lowercase hex digits, got {sha256!r}")
    if ext not in FORMATS.values():
        raise ValueError(f"ext must be one of {sorted(FORMATS.values())}, got {ext!r}")
    return f"images/{int(project_id)}/{sha256[:2]}/{sha256}{ext}"


def write_image_file(home: Path, relpath: str, data: bytes) -> list[Path]:
    """Write ``data`` to ``home/relpath`` atomically; return what this call created.

    The list holds the file (unless it was already there, left by an earlier interrupted run with
    the same content) and any directories made for it, deepest last, so a failed ingest can remove
    exactly what it added and nothing else.
    """
    target = home / relpath
    created = [home / d for d in reversed(Path(relpath).parents[:-1]) if not (home / d).exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        existed = target.exists()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ingest-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except BaseException:
        for folder in reversed(created):  # a full disk or Ctrl-C leaves no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return created if existed else [*created, target]
