"""Labeling one image: decode -> detect the classes -> segment each box -> verify each crop -> write.

This is the unit both the ``auto_label`` job and the benchmark run, so its stage timings are the
ones reported. The segmenter's ``set_image`` runs once per image and serves every box.

Scores: ``Annotation.score`` holds the detector's confidence where the verifier cannot judge the
label (NaN), else the geometric mean ``sqrt(detector * verifier)``, so a box the verifier doubts
sinks in the review queue while the threshold keeps meaning "detector confidence". The parts are
kept on :class:`Proposal` for callers that want them.

The caller owns the transaction: :func:`label_image` writes through an operation's unit of work
(``ops.unit``) and never commits, so a job commits an image's annotations together with its
cursor.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field
from sqlmodel import Session

from ops import filters
from ops.annotations import NewAnnotation, add
from ops.errors import OpError
from ops.unit import Unit
from store.models import Image
from tools.backends.base import Detections
from tools.backends.exclusive import exclusive
from tools.registry import ToolError

STAGES = ("decode", "detect", "segment", "verify", "write")

ImageRef = Annotated[int | str, Field(description="Image id (number) or file name, e.g. 'bus.jpg'.")]
Label = Annotated[str, Field(min_length=1, max_length=64, description="Class name, e.g. 'person'.")]


@dataclass
class Proposal:
    """One written annotation with the scores that produced it."""

    annotation_id: int
    label: str
    bbox: list[float]
    area: float
    detector_score: float
    verifier_score: float | None
    score: float


@dataclass
class ImageResult:
    image_id: int
    proposals: list[Proposal] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


def find_image(session: Session, *, project_id: int, ref: int | str) -> Image | None:
    """An image of the project named by id or file name, or None (see ``ops.filters``)."""
    return filters.find_image(session, project_id, ref)


def resolve_image(session: Session, *, project_id: int, ref: int | str) -> Image:
    """An image of the project named by id or file name; ToolError lists near matches otherwise."""
    try:
        return filters.image_of(session, project_id, ref)
    except OpError as exc:
        raise ToolError(str(exc)) from None


def load_rgb(home: Path, image: Image) -> np.ndarray:
    """The stored original as RGB uint8 ``(h, w, 3)`` (ingest already applied EXIF orientation)."""
    return read_rgb(home / image.path)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as RGB uint8 ``(h, w, 3)``."""
    from PIL import Image as PILImage

    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


def box_mask(box: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A filled rectangle: the mask of last resort when a segmenter returns nothing in the box."""
    h, w = shape
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    mask = np.zeros((h, w), dtype=bool)
    mask[max(y1, 0) : min(y2, h), max(x1, 0) : min(x2, w)] = True
    return mask


def clip_to_box(mask: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Keep the part of ``mask`` inside ``box``: the mask answers "the object in this box"."""
    inside = box_mask(box, mask.shape)
    clipped = mask & inside
    return clipped if clipped.any() else inside


def crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    return image[y1 : max(min(y2, h), y1 + 1), x1 : max(min(x2, w), x1 + 1)]


def combine(detector_score: float, verifier_score: float | None) -> float:
    if verifier_score is None:
        return round(detector_score, 4)
    return round(math.sqrt(max(detector_score, 0.0) * max(verifier_score, 0.0)), 4)


def verify_scores(
    verifier: Any, image: np.ndarray, boxes: np.ndarray, labels: list[str]
) -> list[float | None]:
    """Per box, the verifier's score for its own label, or None where it cannot judge that label."""
    return verify_crops(verifier, [crop(image, b) for b in boxes], labels)


def verify_crops(verifier: Any, crops: list[np.ndarray], labels: list[str]) -> list[float | None]:
    """Per crop, the verifier's score for its label, in one call over the labels' vocabulary."""
    if verifier is None or len(crops) == 0:
        return [None] * len(crops)
    vocab = sorted(set(labels))
    table = verifier.score(crops, vocab)
    out: list[float | None] = []
    for row, label in zip(table, labels, strict=True):
        value = float(row[vocab.index(label)])
        out.append(None if math.isnan(value) else value)
    return out


@dataclass
class Draft:
    """One proposal computed for an image, not yet written: what a model actor sends back."""

    label: str
    mask: dict[str, Any]  # COCO RLE of the mask clipped to its box
    model: str
    detector_score: float
    verifier_score: float | None
    score: float


@dataclass
class Inference:
    """The models' answer for one image (plain data: it crosses process boundaries)."""

    image_id: int
    drafts: list[Draft] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


def infer(
    backends: Any, rgb: np.ndarray, labels: list[str], threshold: float, image_id: int = 0
) -> Inference:
    """Detect, segment and verify one decoded image; writes nothing (runs in any process)."""
    return infer_batch(backends, [rgb], labels, threshold, [image_id])[0]


def drafts(backends: Any, dets: Detections, masks: Any, checks: list[float | None]) -> list[Draft]:
    """One draft per box whose mask, clipped to the box, is not empty."""
    from store.masks import rle_from_mask

    verifier = getattr(backends, "verifier", None)
    out: list[Draft] = []
    for box, mask, conf, label, check in zip(
        dets.xyxy, masks, dets.confidence, dets.label, checks, strict=True
    ):
        model = f"{backends.detector.model_id}+{backends.segmenter.model_id}"
        if check is not None:
            model += f"+{verifier.model_id}"
        clipped = clip_to_box(np.asarray(mask, dtype=bool), box)
        if not clipped.any():  # a box wholly outside the image: nothing to annotate
            continue
        out.append(
            Draft(
                label=str(label), mask=rle_from_mask(clipped), model=model, detector_score=float(conf),
                verifier_score=check, score=combine(float(conf), check),
            )
        )  # fmt: skip
    return out


def infer_batch(
    backends: Any, rgbs: list[np.ndarray], labels: list[str], threshold: float, image_ids: list[int]
) -> list[Inference]:
    """:func:`infer` for several decoded images, each model called once for all of them where it
    can take a batch (``detect_batch``, ``segment_batch``; the verifier scores every crop of the
    batch that shares a vocabulary in one call). A GPU is only kept busy by batches; backends
    without batch methods (the lite stack) are called image by image, with the same answers.

    A stage's batch time is shared out over its images in their timings, so the per-image
    figures still add up to the wall time the models took.
    """
    if len(rgbs) != len(image_ids):
        raise ValueError(f"need one image id per image: {len(rgbs)} images, {len(image_ids)} ids")
    outs = [Inference(image_id=i) for i in image_ids]
    if not rgbs:
        return outs
    detector = backends.detector

    def timed(stage: str, share: list[Inference], fn: Any) -> Any:
        t = time.perf_counter()
        value = fn()
        for out in share:
            out.timings[stage] += (time.perf_counter() - t) / len(share)
        return value

    batch_detect = getattr(detector, "detect_batch", None)
    if batch_detect is not None:
        dets: list[Detections] = timed("detect", outs, lambda: batch_detect(rgbs, labels, threshold))
    else:
        dets = [
            timed("detect", [o], lambda r=r: detector.detect(r, labels, threshold))
            for r, o in zip(rgbs, outs, strict=True)
        ]
    found = [k for k, d in enumerate(dets) if len(d)]
    if not found:
        return outs

    segmenter = backends.segmenter  # built only once something was found, as the verifier
    masks: dict[int, Any] = {}
    batch_segment = getattr(segmenter, "segment_batch", None)
    if batch_segment is not None:
        with exclusive(segmenter):
            answers = timed(
                "segment", [outs[k] for k in found],
                lambda: batch_segment([rgbs[k] for k in found], [dets[k].xyxy for k in found],
                                      keys=[image_ids[k] for k in found]),
            )  # fmt: skip
        masks = {k: m for k, (m, _) in zip(found, answers, strict=True)}
    else:
        for k in found:

            def one(k: int = k) -> Any:
                with exclusive(segmenter):
                    segmenter.set_image(rgbs[k], key=image_ids[k])
                    return segmenter.segment(boxes=dets[k].xyxy)[0]

            masks[k] = timed("segment", [outs[k]], one)

    checks: dict[int, list[float | None]] = {k: [None] * len(dets[k]) for k in found}
    verifier = getattr(backends, "verifier", None)  # built only once something was found
    if verifier is not None:
        # An image's vocabulary is its own boxes' labels (the softmax runs over it), so images
        # whose vocabularies match share one call, and the answers equal image-by-image ones.
        by_vocab: dict[frozenset[str], list[int]] = {}
        for k in found:
            by_vocab.setdefault(frozenset(dets[k].label), []).append(k)
        for group in by_vocab.values():
            crops = [crop(rgbs[k], b) for k in group for b in dets[k].xyxy]
            flat = [label for k in group for label in dets[k].label]
            scores = iter(
                timed(
                    "verify", [outs[k] for k in group], lambda c=crops, f=flat: verify_crops(verifier, c, f)
                )
            )
            for k in group:
                checks[k] = [next(scores) for _ in dets[k].label]
    for k in found:
        outs[k].drafts = drafts(backends, dets[k], masks[k], checks[k])
    return outs


def write(
    unit: Unit,
    *,
    image: Image,
    inference: Inference,
    labels: list[str],
    threshold: float,
    job_id: int | None = None,
    tool: str = "auto_label",
) -> ImageResult:
    """Write ``inference``'s drafts as proposals on ``image`` inside ``unit``; never commits."""
    result = ImageResult(image_id=image.id or 0, timings=dict(inference.timings))
    if not inference.drafts:
        return result
    t = time.perf_counter()
    items = [
        NewAnnotation(
            label=d.label, mask=d.mask, score=d.score, tool=tool, model=d.model, prompt=d.label,
            threshold=threshold, job_id=job_id,
        )
        for d in inference.drafts
    ]  # fmt: skip
    described = f"{tool}: {', '.join(labels[:5])}{' ...' * (len(labels) > 5)} on {image.file_name}"
    written = add(unit, image, items, described)
    for ann, d in zip(written, inference.drafts, strict=True):
        result.proposals.append(
            Proposal(
                annotation_id=ann.id or 0,
                label=d.label,
                bbox=list(ann.bbox),
                area=float(ann.area),
                detector_score=round(d.detector_score, 4),
                verifier_score=None if d.verifier_score is None else round(d.verifier_score, 4),
                score=d.score,
            )
        )
    result.timings["write"] = time.perf_counter() - t
    return result


def label_image(
    unit: Unit,
    *,
    backends: Any,
    home: Path,
    image: Image,
    labels: list[str],
    threshold: float,
    job_id: int | None = None,
    tool: str = "auto_label",
) -> ImageResult:
    """Detect, segment, verify and write proposals for one image inside ``unit`` (an operation's
    unit of work: its caller is the author, its batch the undo step); the unit's owner commits.

    The two halves, :func:`infer` and :func:`write`, are what the Ray executor runs apart: the
    models on actors, the write in the process holding the job's lease (``tools.ray_label``).
    """
    t = time.perf_counter()
    rgb = load_rgb(home, image)
    decoded = time.perf_counter() - t
    inference = infer(backends, rgb, labels, threshold, image.id or 0)
    inference.timings["decode"] = decoded
    return write(
        unit, image=image, inference=inference, labels=labels, threshold=threshold, job_id=job_id, tool=tool
    )
