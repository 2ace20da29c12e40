"""Benchmark: a real clip through ingest and the ``label_video`` job on the lite stack.

    python benchmarks/video.py [--clip vtest.avi] [--fps 5] [--frames 50]
                               [--segmenter lite-grabcut] [--sheet DIR]

1. Ingest: the clip decoded whole (PyAV), sampled at ``--fps``, frames written as JPEG; frames/s
   of stored frames and of decoded source frames.
2. Labeling: a real ``label_video`` job (JobRunner.run_job: detect, ByteTrack, segment or reuse a
   mask, DB write + cursor commit per frame) over the first ``--frames`` sampled frames, classes
   ``person``; frames/s, detector time per frame, segmenter calls and masks reused.
3. Identity: tracks, their lengths, and -- where ``benchmarks/video_handcheck.json`` holds a
   hand check for this clip and settings -- ID switches and fragmentation against it (see
   :func:`identity_errors` for the method).
4. ``--sheet DIR`` draws every sampled frame's boxes with their track ids into PNG contact sheets,
   the pictures the hand check is made from.

Prints a table and writes benchmarks/results/video.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CLIPS = Path("/usr/share/doc/opencv-doc/examples/data")
HANDCHECK = REPO / "benchmarks" / "video_handcheck.json"


class TimedDetector:
    """The real detector, with its wall time counted."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.seconds, self.calls = inner, inner.model_id, 0.0, 0

    def detect(self, image: Any, prompts: list[str], threshold: float) -> Any:
        started = time.perf_counter()
        try:
            return self.inner.detect(image, prompts, threshold)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


class Backends:
    def __init__(self, detector: Any, segmenter: Any) -> None:
        self.detector, self.segmenter = detector, segmenter


def identity_errors(observed: dict[str, list[int | None]]) -> dict[str, int]:
    """ID switches and fragmentations of hand-checked people, MOTChallenge-style.

    ``observed[person]`` lists, for each checked frame in order, the track id the person carried
    on that frame (None: visible but not tracked; the person is left out of frames where they
    are not visible). An ID switch is a tracked frame whose id differs from the person's previous
    tracked id; a fragmentation is a return to tracked after one or more untracked frames.
    """
    switches = fragments = 0
    for ids in observed.values():
        previous, gap = None, False
        for track_id in ids:
            if track_id is None:
                gap = previous is not None
                continue
            switches += previous is not None and track_id != previous
            fragments += gap
            previous, gap = track_id, False
    return {"people": len(observed), "id_switches": switches, "fragmentations": fragments}


def draw_sheets(
    home: Path, engine: Any, video_id: int, job_id: int, out: Path, per_sheet: int = 6
) -> list[str]:
    """Frames with each box and its track id in large type, two per row at full resolution."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont
    from sqlmodel import col, select

    from store.db import new_session
    from store.models import Annotation, Image

    out.mkdir(parents=True, exist_ok=True)
    with new_session(engine) as session:
        frames = list(
            session.exec(select(Image).where(Image.video_id == video_id).order_by(col(Image.frame_index)))
        )
        anns = list(session.exec(select(Annotation).where(Annotation.job_id == job_id)))
    by_image: dict[int, list[Any]] = {}
    for ann in anns:
        by_image.setdefault(ann.image_id, []).append(ann)
    labeled = sorted({a.image_id for a in anns})
    frames = [f for f in frames if labeled and labeled[0] <= (f.id or 0) <= labeled[-1]]
    font = ImageFont.load_default(size=22)
    written = []
    for start in range(0, len(frames), per_sheet):
        tiles = []
        for frame in frames[start : start + per_sheet]:
            with PILImage.open(home / frame.path) as im:
                tile = im.convert("RGB")
            pen = ImageDraw.Draw(tile)
            for ann in by_image.get(frame.id, []):
                x, y, w, h = ann.bbox
                pen.rectangle([x, y, x + w, y + h], outline=(255, 0, 0), width=2)
                pen.text(
                    (x, max(y - 24, 0)),
                    str(ann.track_id),
                    fill=(255, 255, 0),
                    font=font,
                    stroke_width=2,
                    stroke_fill=(0, 0, 0),
                )
            pen.text((5, 5), f"frame {frame.frame_index}", fill=(0, 255, 0), font=font)
            tiles.append(tile)
        cols = 2
        rows = (len(tiles) + cols - 1) // cols
        sheet = PILImage.new("RGB", (cols * tiles[0].width, rows * tiles[0].height))
        for i, tile in enumerate(tiles):
            sheet.paste(tile, ((i % cols) * tile.width, (i // cols) * tile.height))
        path = out / f"sheet_{start // per_sheet:02d}.png"
        sheet.save(path)
        written.append(str(path))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="vtest.avi")
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--segmenter", default="lite-grabcut")
    parser.add_argument("--models", type=Path, default=Path.home() / ".labelwright" / "models")
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument(
        "--propagate", action="store_true",
        help="then re-propagate the longest track from its 5th frame (results/video_propagate.json)",
    )  # fmt: skip
    args = parser.parse_args()

    from sqlmodel import col, func, select

    from ops.jobs import video_frames
    from server.jobs import JobRunner
    from store.db import new_session, open_engine
    from store.ingest import ingest
    from store.models import Annotation
    from store.tracks import list_tracks
    from tools.backends.stacks import build_backends
    from tools.video_label import KIND, VideoLabelJob

    clip = Path(args.clip) if Path(args.clip).is_file() else CLIPS / args.clip
    home = Path(tempfile.mkdtemp(prefix="lw-video-bench-"))
    engine = open_engine(home / "labelwright.db")
    started = time.perf_counter()
    with new_session(engine) as session:
        report = ingest(session, home=home, project_name="bench", source=clip, sample_fps=args.fps)
    ingest_s = time.perf_counter() - started
    (video,) = report.videos

    stack = build_backends("lite", args.models, segmenter=args.segmenter)
    detector = TimedDetector(stack.detector)
    backends = Backends(detector, stack.segmenter)
    handler = VideoLabelJob(home=home, backends_factory=lambda: backends)
    runner = JobRunner(engine, {KIND: handler}, lock_dir=home / "jobs")
    with new_session(engine) as session:
        video_ids, frames = video_frames(session, report.project_id, None)
    params = {"classes": ["person"], "video_ids": video_ids, "frame_ids": frames, "threshold": 0.3}
    params["frame_ids"] = params["frame_ids"][: args.frames]
    backends.detector.detect(__import__("numpy").zeros((64, 64, 3), "uint8"), ["person"], 0.5)  # load
    detector.seconds, detector.calls = 0.0, 0
    job_id = runner.enqueue(report.project_id, KIND, params)
    started = time.perf_counter()
    job = runner.run_job(job_id)
    label_s = time.perf_counter() - started
    with new_session(engine) as session:
        tracks = list_tracks(session, project_id=report.project_id)
        n_anns = session.exec(select(func.count()).where(col(Annotation.job_id) == job_id)).one()
    lengths = sorted((t.annotations for t in tracks), reverse=True)
    labeled = len(params["frame_ids"])
    result: dict[str, Any] = {
        "clip": clip.name,
        "sample_fps": args.fps,
        "ingest": {
            "stored_frames": video.frames,
            "seconds": round(ingest_s, 2),
            "stored_frames_per_s": round(video.frames / ingest_s, 1),
            "duration_s": video.duration_s,
        },
        "label": {
            "state": job.state.value,
            "frames": labeled,
            "seconds": round(label_s, 2),
            "frames_per_s": round(labeled / label_s, 2),
            "detector": stack.detector.model_id,
            "segmenter": stack.segmenter.model_id,
            "detect_ms_per_frame": round(1000 * detector.seconds / max(detector.calls, 1), 1),
            "segmenter_calls": handler.stats["segmented"],
            "masks_reused": handler.stats["reused"],
            "annotations": n_anns,
        },
        "identity": {
            "tracks": len(tracks),
            "longest_tracks": lengths[:10],
            "tracks_of_1_frame": sum(1 for n in lengths if n == 1),
        },
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    check = json.loads(HANDCHECK.read_text()) if HANDCHECK.is_file() else {}
    key = f"{clip.name}@{args.fps:g}fps/{args.frames}"  # ids do not depend on the segmenter
    if key in check:
        result["identity"]["hand_check"] = {
            **{k: v for k, v in check[key].items() if k != "people"},
            **identity_errors(check[key]["people"]),
        }
    if args.sheet is not None:
        result["sheets"] = draw_sheets(home, engine, video.video_id, job_id, args.sheet)
    if args.propagate:
        result["propagate"] = propagate_longest(engine, home, report.project_id, stack, tracks)
    engine.dispose()

    rows = [
        ("ingest", f"{video.frames} frames of {video.duration_s:.1f} s in {ingest_s:.1f} s"),
        ("label", f"{labeled} frames in {label_s:.1f} s = {labeled / label_s:.2f} frames/s"),
        ("  detect", f"{result['label']['detect_ms_per_frame']} ms/frame ({stack.detector.model_id})"),
        ("  segment", f"{handler.stats['segmented']} calls, {handler.stats['reused']} masks reused "
                      f"({stack.segmenter.model_id})"),
        ("tracks", f"{len(tracks)}; longest {lengths[:5]}; "
                   f"{result['identity']['tracks_of_1_frame']} of 1 frame"),
    ]  # fmt: skip
    if "hand_check" in result["identity"]:
        hc = result["identity"]["hand_check"]
        rows.append(("hand check", f"{hc['people']} people: {hc['id_switches']} ID switches, "
                                   f"{hc['fragmentations']} fragmentations"))  # fmt: skip
    if "propagate" in result:
        pr = result["propagate"]
        rows.append((
            "propagate",
            f"track {pr['track_id']} from frame {pr['from_frame']}: {pr['followed']} frames in "
            f"{pr['seconds']} s = {pr['frames_per_s']} frames/s, {pr['created']} replace {pr['deleted']}, "
            f"box IoU vs the job's {pr['mean_box_iou']}",
        ))  # fmt: skip
    for name, value in rows:
        print(f"{name:<12} {value}")
    name = "video_propagate.json" if args.propagate else "video.json"
    out = REPO / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


def propagate_longest(engine: Any, home: Path, project_id: int, stack: Any, tracks: list) -> dict[str, Any]:
    """Re-propagate the longest track from its 5th frame with the lite follower (what "propagate"
    does after a fix; here the fix is the job's own box): time per frame, and how far the
    propagated boxes are from the job's boxes on the same frames (mean IoU)."""
    import numpy as np

    from ops import tracks as ops_tracks
    from ops.caller import local_caller
    from ops.unit import Env
    from tools.video_propagate import propagate
    from tools.video_tracking import iou

    env, caller = Env(engine, home), local_caller()
    longest = max(tracks, key=lambda t: t.annotations)
    before = {f.frame_index: f.bbox for f in ops_tracks.track_frames(env, caller, project_id, longest.id)}
    start_frame = sorted(before)[min(4, len(before) - 1)]
    started = time.perf_counter()
    done = propagate(env, caller, project_id, longest.id, start_frame, stack)
    seconds = time.perf_counter() - started
    after = ops_tracks.track_frames(env, caller, project_id, longest.id)

    def xyxy(b: list[float]) -> Any:
        return np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]])

    later = [f for f in after if f.frame_index > start_frame and f.frame_index in before]
    ious = [iou(xyxy(before[f.frame_index]), xyxy(f.bbox)) for f in later]
    followed = len({f.frame_index for f in after if start_frame < f.frame_index <= done.to_frame}) or 1
    return {
        "track_id": longest.id, "track_frames": longest.annotations, "from_frame": start_frame,
        "to_frame": done.to_frame, "created": done.created, "deleted": done.deleted,
        "followed": followed, "seconds": round(seconds, 2), "frames_per_s": round(followed / seconds, 2),
        "mean_box_iou": round(sum(ious) / len(ious), 3) if ious else None, "compared_frames": len(ious),
    }  # fmt: skip


if __name__ == "__main__":
    main()
