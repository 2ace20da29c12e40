"""Builders of a hostile corpus for the ingest tests: small on disk, fast to make, nasty to read.

Zips are written byte by byte where ``zipfile`` would refuse or "fix" what an attacker controls
(header sizes, mode bits, flags), and the bombs are built streamed from repeated deflate blocks,
so a 1 GiB bomb costs about a megabyte and well under a second.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MiB = 1 << 20


@dataclass
class RawEntry:
    """One zip member exactly as written: ``payload * repeat + tail`` is the stored data."""

    name: str
    payload: bytes
    file_size: int  # what the headers declare, true or not
    crc: int
    method: int = zipfile.ZIP_DEFLATED
    external_attr: int = 0
    flag_bits: int = 0
    repeat: int = 1
    tail: bytes = b""
    copies: int = 1  # central directory records pointing at this one local entry (overlap bomb)

    @property
    def compress_size(self) -> int:
        return len(self.payload) * self.repeat + len(self.tail)


def deflated(name: str, data: bytes, **kwargs: int) -> RawEntry:
    """An honest entry for ``data``; keyword arguments override header fields."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    fields: dict[str, int] = {"file_size": len(data), "crc": zlib.crc32(data)} | kwargs
    return RawEntry(name, c.compress(data) + c.flush(), **fields)


def write_raw_zip(path: Path, entries: Iterable[RawEntry]) -> Path:
    """Write a zip with local headers, data, central directory and end record, nothing checked."""
    central, count = io.BytesIO(), 0
    with open(path, "wb") as out:
        for e in entries:
            offset, name = out.tell(), e.name.encode()
            flags = e.flag_bits | 0x800  # UTF-8 names
            common = struct.pack(
                "<HHHHHIII", 20, flags, e.method, 0, 0x21, e.crc, e.compress_size, e.file_size
            )
            out.write(struct.pack("<I", 0x04034B50) + common + struct.pack("<HH", len(name), 0) + name)
            for _ in range(e.repeat):
                out.write(e.payload)
            out.write(e.tail)
            for _ in range(e.copies):
                central.write(
                    struct.pack("<IH", 0x02014B50, (3 << 8) | 20)  # made by: Unix, so mode bits count
                    + common
                    + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, e.external_attr, offset)
                    + name
                )
                count += 1
        start = out.tell()
        out.write(central.getvalue())
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, central.tell(), start, 0))
    return path


def zeros_entry(name: str, size: int) -> RawEntry:
    """``size`` bytes of zeros (a multiple of 1 MiB) as repeated 1 MiB deflate blocks."""
    if size % MiB:
        raise ValueError(f"size must be a multiple of 1 MiB, got {size}")
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, no history
    crc, chunk = 0, bytes(MiB)
    for _ in range(size // MiB):
        crc = zlib.crc32(chunk, crc)
    return RawEntry(name, block, file_size=size, crc=crc, repeat=size // MiB, tail=b"\x03\x00")


def zip_bomb(path: Path, *, size: int = 1 << 30, before: Sequence[RawEntry] = ()) -> Path:
    """A zip whose entry ``bomb.bmp`` inflates to ``size`` bytes of zeros (about 1000:1)."""
    return write_raw_zip(path, [*before, zeros_entry("bomb.bmp", size)])


def overlap_bomb(path: Path, *, copies: int = 200, size: int = 8 * MiB) -> Path:
    """One small deflated entry listed ``copies`` times: every listing inflates the same bytes.

    Each entry is under any per-entry ratio floor; only the archive as a whole gives it away.
    """
    entry = zeros_entry("same.bmp", size)
    entry.copies = copies
    return write_raw_zip(path, [entry])


def symlink_entry(name: str, target: str) -> RawEntry:
    return deflated(name, target.encode(), external_attr=(stat.S_IFLNK | 0o777) << 16)


def png_bomb(width: int, height: int, *, valid: bool = True) -> bytes:
    """A 1-bit grey PNG of ``width`` x ``height`` zeros; tiny on disk, huge when decoded.

    With ``valid=False`` the pixel data is left out: only the header is a bomb, which is all a
    safe reader may look at.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    idat = b""
    if valid:
        c, row = zlib.compressobj(9), bytes(1 + (width + 7) // 8)
        idat = b"".join(c.compress(row) for _ in range(height)) + c.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def bmp_bomb(width: int, height: int) -> bytes:
    """A BMP header declaring ``width`` x ``height`` 24-bit pixels, followed by none of them."""
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header), 0, 0, 14 + len(header)) + header


def tiny_png(index: int) -> bytes:
    """An 8x8 PNG whose pixels encode ``index``: every one distinct, so none is a duplicate."""
    pixels = bytes((index >> (8 * (i % 3))) & 0xFF for i in range(8 * 8 * 3))
    buf = io.BytesIO()
    Image.frombytes("RGB", (8, 8), pixels).save(buf, format="PNG")
    return buf.getvalue()


def many_tiny_zip(path: Path, n: int) -> Path:
    """``n`` distinct tiny PNGs in 50 folders, written entry by entry."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            zf.writestr(f"batch{i % 50:02d}/img{i:05d}.png", tiny_png(i))
    return path


def hostile_zip(path: Path, image: bytes) -> tuple[Path, dict[str, str]]:
    """A zip of entries that must not be taken, each carrying a real image, plus one honest entry.

    Returns the path and ``{entry name: start of the expected skip reason}``.
    """
    expected = {
        "../evil.jpg": "unsafe path: '..'",
        "../../../../../../tmp/evil.jpg": "unsafe path: '..'",
        "ok/../../evil.jpg": "unsafe path: '..'",
        "..\\..\\evil.jpg": "unsafe path: '..'",
        "/tmp/evil_abs.jpg": "unsafe path: absolute",
        "C:/evil_drive.jpg": "unsafe path: absolute",
        "ctrl\n.jpg": "unsafe path: control character",
        "link_out.jpg": "symbolic link",
        "link_etc": "symbolic link",
        "fifo.jpg": "not a regular file",
        "secret.jpg": "encrypted",
        "weird.jpg": "unsupported zip compression method",
        "__MACOSX/._good.jpg": "hidden",
        ".hidden.jpg": "hidden",
    }
    entries = [
        deflated(name, image) for name in expected if not name.startswith(("link", "fifo", "secret", "weird"))
    ]
    entries += [
        symlink_entry("link_out.jpg", "../../outside.jpg"),
        symlink_entry("link_etc", "/etc/passwd"),
        deflated("fifo.jpg", image, external_attr=(stat.S_IFIFO | 0o644) << 16),
        deflated("secret.jpg", image, flag_bits=0x1),
        RawEntry("weird.jpg", image, file_size=len(image), crc=zlib.crc32(image), method=9),
        deflated("good.jpg", image),
    ]
    return write_raw_zip(path, entries), expected


def hostile_folder(root: Path, outside: Path, image: bytes) -> dict[str, str]:
    """A folder with links out of it, a FIFO, hidden folders and one honest image.

    ``outside`` (a sibling folder) holds an image the links point at; it must never be read.
    Returns ``{relative name: start of the expected skip reason}``.
    """
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "outside.jpg").write_bytes(image)
    (root / "sub").mkdir(parents=True)
    (root / "good.jpg").write_bytes(image)
    os.symlink(outside, root / "dir_link")
    os.symlink(outside / "outside.jpg", root / "sub" / "file_link.jpg")
    os.symlink("../../nowhere.jpg", root / "dangling.jpg")
    os.mkfifo(root / "sub" / "pipe.jpg")
    (root / ".git").mkdir()
    (root / ".git" / "x.jpg").write_bytes(image)
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._good.jpg").write_bytes(image)
    return {
        "dir_link": "symbolic link",
        "sub/file_link.jpg": "symbolic link",
        "dangling.jpg": "symbolic link",
        "sub/pipe.jpg": "not a regular file",
        ".git": "hidden",
        "__MACOSX": "hidden",
    }
