"""Test clips made from the real ones: re-encoded into other containers, truncated, damaged."""

from __future__ import annotations

from pathlib import Path

# container extension -> (codec, pixel format) PyAV's wheel can write
ENCODERS = {".mp4": ("libx264", "yuv420p"), ".mov": ("mpeg4", "yuv420p"), ".webm": ("libvpx", "yuv420p")}


def reencode(source: Path, out: Path, *, frames: int = 12, fps: int = 10, scale: float = 0.5) -> Path:
    """The first ``frames`` frames of ``source``, ``scale``d (halved), written as ``out`` (by extension)."""
    import av

    codec, pix_fmt = ENCODERS[out.suffix]
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = dst.add_stream(codec, rate=fps)
        in_stream = src.streams.video[0]
        stream.width, stream.height = (round(v * scale) // 2 * 2 for v in (in_stream.width, in_stream.height))
        stream.pix_fmt = pix_fmt
        for i, frame in enumerate(src.decode(in_stream)):
            if i >= frames:
                break
            small = frame.reformat(width=stream.width, height=stream.height, format=pix_fmt)
            small.pts = None
            for packet in stream.encode(small):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


def truncated(source: Path, out: Path, *, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * keep)])
    return out


def damaged(source: Path, out: Path, *, seed: int = 0, count: int = 2000) -> Path:
    """``source`` with ``count`` bytes in the middle overwritten by random ones (headers intact)."""
    import random

    data, rng = bytearray(source.read_bytes()), random.Random(seed)
    for _ in range(count):
        data[rng.randrange(100_000, len(data) - 100_000)] = rng.randrange(256)
    out.write_bytes(bytes(data))
    return out


def moving_squares(out: Path, *, frames: int = 20, fps: int = 10) -> Path:
    """A synthetic clip for exact tracking checks: two white squares moving right 6 px a frame,
    and a third from frame 10 on, on a grey 320x240 background (MP4, H.264)."""
    import av
    import numpy as np

    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(frames):
            rgb = np.full((240, 320, 3), 90, dtype=np.uint8)
            for x0, y0, start in SQUARES:
                if i >= start:
                    x = x0 + 6 * (i - start)
                    rgb[y0 : y0 + 40, x : x + 40] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


SQUARES = ((10, 20, 0), (10, 150, 0), (100, 90, 10))  # x, y at the first frame it shows, that frame
