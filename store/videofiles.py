"""Video bytes in, sampled frames out: sniff the container, decode every frame, keep a chosen rate.

Decoding uses PyAV (FFmpeg's libraries, the ``av`` wheel) rather than OpenCV's ``VideoCapture``
because PyAV lets us say which demuxer may parse untrusted bytes (only AVI, MOV/MP4 and
Matroska/WebM, picked from the content, never the file name), read bytes from memory, see each
frame's real presentation time, and hear FFmpeg's own error reports: a truncated or damaged stream
that OpenCV would silently hand back as fewer or grey frames is refused here. OpenCV is still used
elsewhere for pixels.

A video is all or nothing: :func:`decode_video` calls ``on_frame`` for each kept frame while it
decodes and raises :class:`~store.imagefiles.ImageRejected` at the first sign of damage (a decoder
error, timestamps that go backwards, a stream that ends well before its header says), so the caller
must keep nothing of a video until the function returns.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store.imagefiles import ImageRejected

# What the first bytes say -> the only FFmpeg demuxer that may read them.
_SUPPORTED = "supported videos: MP4, MOV, WebM/Matroska, AVI"
_QUALITY = 90
# FFmpeg's log level and capture are process-wide: one decode at a time listens to them.
_FFMPEG_LOG = threading.Lock()


@dataclass(frozen=True)
class VideoFrame:
    index: int  # among the video's decoded frames, 0-based
    timestamp_s: float
    jpeg: bytes  # the stored file: a JPEG whose comment names the video and the index


@dataclass(frozen=True)
class VideoInfo:
    container: str
    codec: str
    fps: float
    frame_count: int  # frames decoded
    duration_s: float
    width: int
    height: int
    kept: int  # frames passed to on_frame


def sniff_video(head: bytes) -> str | None:
    """The demuxer for a video's first bytes (``avi``, ``mov``, ``matroska``), or None: not a video."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


def decode_video(
    data: bytes,
    *,
    tag: str,
    max_pixels: int,
    max_seconds: float,
    max_frames: int,
    sample_fps: float | None,
    on_frame: Callable[[VideoFrame], None],
) -> VideoInfo:
    """Decode ``data`` whole, passing each sampled frame to ``on_frame``; return what the video is.

    ``sample_fps`` None keeps every frame; else the first frame at or after each multiple of
    ``1 / sample_fps`` seconds. ``tag`` goes into each frame's JPEG comment (with its index), so
    two identical frames are still two files and a frame file says where it came from.

    Raises:
        ValueError: a non-positive ``sample_fps``.
        ImageRejected: not a supported video, too many pixels, too long, too many sampled frames,
            a decoder error, timestamps going backwards, or truncated.
    """
    if sample_fps is not None and not sample_fps > 0:
        raise ValueError(f"sample_fps must be a positive number of frames per second, got {sample_fps!r}")
    demuxer = sniff_video(data[:16])
    if demuxer is None:
        raise ImageRejected(f"not a video ({_SUPPORTED})")
    import av
    import av.logging

    with _FFMPEG_LOG:
        previous = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)
        try:
            with av.logging.Capture(local=False) as logs:
                return _decode(
                    av, data, demuxer, logs, tag, max_pixels, max_seconds, max_frames, sample_fps, on_frame
                )
        except ImageRejected:
            raise
        except (av.FFmpegError, OSError, ValueError, EOFError, IndexError, MemoryError) as exc:
            raise ImageRejected(f"corrupt video: {_first_line(str(exc))}") from None
        finally:
            av.logging.set_level(previous)


def _decode(
    av: Any,
    data: bytes,
    demuxer: str,
    logs: list[Any],
    tag: str,
    max_pixels: int,
    max_seconds: float,
    max_frames: int,
    sample_fps: float | None,
    on_frame: Callable[[VideoFrame], None],
) -> VideoInfo:
    with av.open(io.BytesIO(data), format=demuxer) as container:
        if not container.streams.video:
            raise ImageRejected("no video stream in the file")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise ImageRejected(f"video frames too large: {width}x{height} > pixel cap {max_pixels:,}")
        rate = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        declared = _declared_seconds(stream, rate, container)
        if declared > max_seconds:
            raise ImageRejected(f"video too long: {declared:.1f} s > max_video_seconds={max_seconds:g}")
        index, kept, last_t, next_t = 0, 0, -1.0, 0.0
        for frame in container.decode(stream):
            _check_logs(logs)
            t = _seconds(frame, stream, demuxer, index, rate)
            if demuxer == "avi" and t <= last_t:  # the delayed frame flushed at the end shares a slot
                t = last_t + 1.0 / rate
            if t <= last_t:
                raise ImageRejected(
                    f"damaged video: frame timestamps go backwards at frame {index} ({t:.3f} s after "
                    f"{last_t:.3f} s), e.g. packed B-frames; re-encode or remux it"
                )
            if t > max_seconds:
                raise ImageRejected(f"video too long: passes max_video_seconds={max_seconds:g}")
            if sample_fps is None or t >= next_t - 1e-6:
                kept += 1
                if kept > max_frames:
                    raise ImageRejected(
                        f"too many frames: over max_video_frames={max_frames:,} sampled frames; "
                        "sample fewer (--fps) or raise the limit"
                    )
                if sample_fps is not None:
                    while next_t <= t + 1e-6:
                        next_t += 1.0 / sample_fps
                on_frame(VideoFrame(index, round(t, 6), _jpeg(frame, f"{tag} frame {index}")))
            last_t, index = t, index + 1
        _check_logs(logs)
    if index == 0:
        raise ImageRejected("corrupt video: no frame could be decoded")
    reached = last_t + 1.0 / rate
    if declared and reached < declared - max(0.5, 2.0 / rate):
        raise ImageRejected(
            f"truncated video: frames end at {reached:.1f} s of the {declared:.1f} s its header declares"
        )
    return VideoInfo(
        container=demuxer,
        codec=stream.codec_context.name,
        fps=round(rate, 6),
        frame_count=index,
        duration_s=round(max(reached, 0.0), 6),
        width=width,
        height=height,
        kept=kept,
    )


def _seconds(frame: Any, stream: Any, demuxer: str, index: int, rate: float) -> float:
    """A frame's presentation time. AVI has no presentation times, only frame slots: FFmpeg's
    ``pts`` there is a guess that packed B-frames shuffle (Megamind.avi), while the slot (``dts``)
    of a decoded frame, which decoders emit in display order, is right and keeps dropped frames."""
    ticks = frame.dts if demuxer == "avi" else frame.pts
    if ticks is None or not stream.time_base:
        return index / rate
    return float(ticks * stream.time_base)


def _declared_seconds(stream: Any, rate: float, container: Any) -> float:
    """The longest length the headers claim (stream frames, stream or container duration)."""
    claims = [stream.frames / rate if stream.frames else 0.0]
    if stream.duration and stream.time_base:
        claims.append(float(stream.duration * stream.time_base))
    if not any(claims) and container.duration:
        claims.append(container.duration / 1_000_000)
    return max(claims)


def _check_logs(logs: list[Any]) -> None:
    import av.logging

    errors = [message for level, _name, message in logs if level <= av.logging.ERROR]
    if errors:
        raise ImageRejected(f"corrupt video: the decoder reported {_first_line(errors[0])!r}")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown error"


def _jpeg(frame: Any, comment: str) -> bytes:
    buf = io.BytesIO()
    frame.to_image().save(buf, format="JPEG", quality=_QUALITY, comment=comment.encode())
    return buf.getvalue()
