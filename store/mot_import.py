"""Import a MOTChallenge text file (``gt.txt``, ``det.txt``, tracker output) into one video.

Lines are ``frame,id,x,y,w,h[,conf[,class,vis | ,x,y,z]]``: a 1-based frame number of the source
video (frame index + 1, as :mod:`store.mot_export` writes it), the object id (``-1``: a detection
without identity, imported without a track), the top-left box and its size in pixels. MOT has no
class names: the caller gives one (``class_name``) or maps MOT class numbers to names
(``class_map``, ``{1: "pedestrian", 8: None}``: None leaves that class's lines out, counted in
the report's ``left_out``, as for MOT17's distractors and reflections). The class number is
column 8 in the 9-column ground-truth layout (where ``conf`` is a consider flag, not a score);
the 10-column tracker/detection layout carries world coordinates there and has no class. A score
is ``conf`` in the 10-column layout when it lies in [0, 1); 1, what the exporter writes for a
person's box, gives none.

Boxes are clipped to the frame (MOT ground truth has people entering it); a box with no area
inside is refused, as is any line that does not parse, a size that is not positive, a frame
beyond the video or not stored, or an id on two classes or twice on one frame: any problem
refuses the whole file with its line numbers (:mod:`store.video_import`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from store.bulk_annotations import PlannedAnnotation
from store.coco_import import check_bbox, check_status
from store.models import Project
from store.video_import import ProjectVideos, TrackKey, VideoImportReport, check_tracks, refuse, write_import

ClassMap = dict[int, str | None]  # MOT class number -> class name, None: leave its lines out
MAX_BYTES = 256 * 1024 * 1024  # a MOT17 gt.txt is ~1 MB; refuse what cannot be one


@dataclass(frozen=True)
class MotLine:
    line: int  # 1-based line number in the file
    frame: int  # 1-based
    id: int  # -1: no identity
    box: list[float]  # x, y, w, h as written
    conf: float | None
    mot_class: int | None
    gt_layout: bool  # 9 columns: conf is a flag, column 8 the class


def parse_mot(text: str) -> tuple[list[MotLine], list[str]]:
    """The file's lines, and a problem per line that is not a MOT line (blank lines are skipped)."""
    lines, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        cells = [c.strip() for c in raw.split(",")]
        try:
            if not 6 <= len(cells) <= 10:
                raise ValueError(
                    f"expected 6 to 10 comma-separated values (frame,id,x,y,w,h,...), got {len(cells)}"
                )
            values = [_number(c, column) for column, c in enumerate(cells, start=1)]
            if not all(map(math.isfinite, values)):
                raise ValueError(f"values must be finite numbers, got {raw.strip()!r:.80}")
            frame, ident = values[0], values[1]
            if frame != int(frame) or frame < 1:
                raise ValueError(
                    f"frame must be a whole number >= 1 (MOT frames are 1-based), got {cells[0]}"
                )
            if ident != int(ident) or (ident < 0 and ident != -1):
                raise ValueError(f"id must be a whole number >= 0, or -1 for none, got {cells[1]}")
            w, h = values[4], values[5]
            if w <= 0 or h <= 0:
                raise ValueError(f"box size must be positive, got width {cells[4]} and height {cells[5]}")
            gt = len(cells) == 9
            mot_class = None
            if len(cells) in (8, 9) and values[7] != -1:
                if values[7] != int(values[7]):
                    raise ValueError(f"class must be a whole number, got {cells[7]}")
                mot_class = int(values[7])
            conf = values[6] if len(cells) >= 7 else None
            lines.append(MotLine(number, int(frame), int(ident), values[2:6], conf, mot_class, gt))
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
    return lines, problems


def _number(cell: str, column: int) -> float:
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"column {column} must be a number, got {cell!r:.40}") from None


def read_mot(path: Path) -> tuple[list[MotLine], list[str]]:
    """:func:`parse_mot` of a file; ValueError when it is too large or not text."""
    size = Path(path).stat().st_size
    if size > MAX_BYTES:
        raise ValueError(f"{Path(path).name} is {size:,} bytes, more than a MOT file can be ({MAX_BYTES:,})")
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{Path(path).name} is not a MOTChallenge text file (not UTF-8 text)") from None
    return parse_mot(text)


LEAVE_OUT = ""  # what :func:`class_of` returns for a line of a class mapped to None


def class_of(line: MotLine, class_name: str | None, class_map: ClassMap | None) -> str | None:
    """The line's class name: its class number through ``class_map``, else ``class_name``;
    :data:`LEAVE_OUT` for a class mapped to None, None when nothing names it."""
    if line.mot_class is not None and class_map and line.mot_class in class_map:
        name = class_map[line.mot_class]
        return LEAVE_OUT if name is None else " ".join(name.split())
    return " ".join(class_name.split()) if class_name else None


def _unnamed(counts: Counter[int | None], class_map: ClassMap | None) -> list[str]:
    """One problem per class number no name was given for (not one per line)."""
    return [
        f"{n} line(s) have no class number (the 10-column layout has none): give a class name for them"
        if c is None
        else f"class {c} ({n} line(s)) is not in the class map {class_map}: map it to a name"
        for c, n in sorted(counts.items(), key=lambda item: (item[0] is not None, item[0] or 0))
    ]


def import_mot(
    session: Session,
    *,
    project_id: int,
    mot_path: Path,
    video: str | None = None,
    class_name: str | None = None,
    class_map: ClassMap | None = None,
    status: str = "accepted",
    actor: str = "import",
    dry_run: bool = False,
) -> VideoImportReport:
    """Import ``mot_path`` onto the project's video ``video`` (default: the file's stem, as the
    MOT export names sequences) as one change, or refuse it whole.

    Raises:
        ValueError: no such project, a bad status, no class given, an unknown video, or any problem
            in the file (every one named, by line).
    """
    start = time.perf_counter()
    if session.get(Project, project_id) is None:
        raise ValueError(f"no project with id {project_id}")
    check_status(status)
    if not class_name and not class_map:
        raise ValueError(
            "MOTChallenge files have no class names: give a class name, or a map of class numbers"
        )
    videos = ProjectVideos(session, project_id)
    target = videos.find(video or Path(mot_path).stem)
    lines, problems = read_mot(mot_path)
    if not lines and not problems:
        raise ValueError(f"{Path(mot_path).name} holds no MOT lines (frame,id,x,y,w,h,...)")
    report = VideoImportReport(project_id=project_id, format="mot", dry_run=dry_run)
    report.videos = {target.file_name: target.id}  # type: ignore[dict-item]
    planned: list[PlannedAnnotation] = []
    keys: dict[int, TrackKey] = {}
    where: dict[int, str] = {}
    unnamed: Counter[int | None] = Counter()
    for line in lines:
        name = class_of(line, class_name, class_map)
        if name is None:
            unnamed[line.mot_class] += 1
            continue
        if name == LEAVE_OUT:
            report.left_out += 1
            continue
        try:
            frame = videos.frame(target, line.frame - 1)
            bbox = check_bbox(line.box, frame.width, frame.height, slack=math.inf)
        except ValueError as exc:
            problems.append(f"line {line.line}: {exc}")
            continue
        report.clipped += bbox != line.box
        score = line.conf if not line.gt_layout and line.conf is not None and 0 <= line.conf < 1 else None
        entry = PlannedAnnotation(line.line, frame, name, bbox, None, score, area=bbox[2] * bbox[3])
        planned.append(entry)
        where[id(entry)] = f"line {line.line}"
        if line.id >= 0:
            keys[id(entry)] = (target.id, line.id)  # type: ignore[assignment]
    problems += _unnamed(unnamed, class_map)
    problems += check_tracks(planned, keys, where)
    refuse(Path(mot_path).name, problems)
    return write_import(
        session,
        report=report,
        planned=planned,
        keys=keys,
        names={},
        status=status,
        actor=actor,
        description=f"import {Path(mot_path).name} onto {target.file_name}",
        start=start,
    )
