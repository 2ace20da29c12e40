"""Mask fixtures for the geometry and format tests: the hard cases and photo-like shapes.

Every shape is a boolean ``(HEIGHT, WIDTH)`` mask of a 640x480 image. Hard cases: 1-5 px lines
(horizontal, vertical, diagonal), a 5x5 object, several parts, holes. Photo-like: the horse
silhouette from scikit-image's sample data, an organic blob from smoothed noise, and a
person-like figure (ellipse head on a rounded torso with legs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from sqlmodel import Session, select

from store.geometry import mask_geometry
from store.masks import rle_from_mask
from store.models import Annotation, AnnotationStatus, Category, Image, Project

HEIGHT, WIDTH = 480, 640


def _canvas() -> np.ndarray:
    return np.zeros((HEIGHT, WIDTH), np.uint8)


def line(thickness: int, direction: str) -> np.ndarray:
    """A ``thickness``-px line: ``h`` horizontal, ``v`` vertical, ``d`` diagonal (45 degrees)."""
    m = _canvas()
    if direction == "h":
        m[200 : 200 + thickness, 100:500] = 1
    elif direction == "v":
        m[60:420, 300 : 300 + thickness] = 1
    else:
        idx = np.arange(300)
        for t in range(thickness):
            m[80 + idx, np.clip(150 + idx + t, 0, WIDTH - 1)] = 1
    return m.astype(bool)


def square(size: int = 5) -> np.ndarray:
    m = _canvas()
    m[300 : 300 + size, 400 : 400 + size] = 1
    return m.astype(bool)


def parts() -> np.ndarray:
    """Three separate parts: a disc, a rotated rectangle and a small blob."""
    m = _canvas()
    cv2.circle(m, (120, 120), 50, 1, -1)
    box = cv2.boxPoints(((400, 300), (160, 60), 25)).astype(np.int32)
    cv2.fillPoly(m, [box], 1)
    cv2.ellipse(m, (560, 80), (20, 12), 0, 0, 360, 1, -1)
    return m.astype(bool)


def holes() -> np.ndarray:
    """A ring (one big hole) with a second small hole in its body."""
    m = _canvas()
    cv2.circle(m, (320, 240), 150, 1, -1)
    cv2.circle(m, (320, 240), 70, 0, -1)
    m[120:126, 300:306] = 0
    return m.astype(bool)


def horse() -> np.ndarray:
    """scikit-image's horse silhouette (a real traced shape), placed on the canvas."""
    from skimage import data

    silhouette = ~data.horse()  # the sample is white background, black horse
    m = _canvas()
    h, w = silhouette.shape
    m[60 : 60 + h, 120 : 120 + w] = silhouette
    return m.astype(bool)


def blob() -> np.ndarray:
    """An organic outline: thresholded smoothed noise, largest part, holes filled."""
    rng = np.random.default_rng(7)
    field = cv2.GaussianBlur(rng.random((HEIGHT, WIDTH)).astype(np.float32), (0, 0), 18)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    field -= ((xx - 320) ** 2 + (yy - 240) ** 2) / 1.5e7  # prefer the centre
    m = (field > np.quantile(field, 0.85)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    m = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(m, contours, -1, 1, -1)
    return m.astype(bool)


def person() -> np.ndarray:
    """A person-like figure: head, torso, arms and two legs joined into one part."""
    m = _canvas()
    cv2.ellipse(m, (320, 110), (22, 28), 0, 0, 360, 1, -1)
    cv2.rectangle(m, (290, 135), (350, 260), 1, -1)
    cv2.line(m, (292, 145), (250, 240), 1, 14)
    cv2.line(m, (348, 145), (392, 235), 1, 14)
    cv2.line(m, (303, 258), (292, 400), 1, 20)
    cv2.line(m, (337, 258), (352, 400), 1, 20)
    return m.astype(bool)


SHAPES: dict[str, Callable[[], np.ndarray]] = {
    **{f"line{t}_{d}": (lambda t=t, d=d: line(t, d)) for t in (1, 2, 3, 5) for d in ("h", "v", "d")},
    "square5": square,
    "pixel": lambda: square(1),
    "parts": parts,
    "holes": holes,
    "horse": horse,
    "blob": blob,
    "person": person,
}


def shape_photos(directory: Path) -> dict[str, Path]:
    """One real PNG per shape (the mask painted over a gradient), named ``<shape>.png``.

    Plus ``empty.png``, a plain grey image with nothing on it (not in the returned dict).
    """
    from PIL import Image as PILImage

    directory.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    background = np.stack([xx * 255 // WIDTH, yy * 255 // HEIGHT, np.full_like(xx, 90)], -1).astype(np.uint8)
    paths = {}
    for name, make in SHAPES.items():
        pixels = background.copy()
        pixels[make()] = (230, 40, 40)
        paths[name] = directory / f"{name}.png"
        PILImage.fromarray(pixels).save(paths[name])
    PILImage.new("RGB", (WIDTH, HEIGHT), (90, 90, 90)).save(directory / "empty.png")
    return paths


def seed_project(session: Session, image_dir: Path, *, name: str = "shapes") -> int:
    """A project with one image per shape, each annotated with its mask and derived geometry.

    Also: an image with no annotations, a box-only annotation, and one rejected annotation.
    Categories ``thin`` (lines, pixel, square) and ``thing`` (the rest). Returns the project id.
    """
    project = Project(name=name)
    session.add(project)
    session.flush()
    thin = Category(project_id=project.id, name="thin")
    thing = Category(project_id=project.id, name="thing")
    session.add_all([thin, thing])
    session.flush()
    for shape, path in shape_photos(image_dir).items():
        image = Image(
            project_id=project.id,
            file_name=path.name,
            path=str(path),
            sha256=shape,
            width=WIDTH,
            height=HEIGHT,
        )
        session.add(image)
        session.flush()
        rle = rle_from_mask(SHAPES[shape]())
        geom = mask_geometry(rle)
        category = thin if shape.startswith(("line", "pixel", "square")) else thing
        session.add(
            Annotation(
                project_id=project.id,
                image_id=image.id,
                category_id=category.id,
                bbox=geom.bbox,
                mask=rle,
                segmentation=geom.segmentation,
                fidelity=geom.fidelity,
                area=geom.area,
                score=0.9,
                status=AnnotationStatus.accepted,
            )
        )
    session.add(
        Image(
            project_id=project.id,
            file_name="empty.png",
            path=str(image_dir / "empty.png"),
            sha256="empty",
            width=WIDTH,
            height=HEIGHT,
        )
    )
    box_image = session.exec(select(Image).where(Image.file_name == "person.png")).one()
    session.add_all(
        [
            Annotation(
                project_id=project.id,
                image_id=box_image.id,
                category_id=thin.id,
                bbox=[10.0, 20.0, 30.0, 40.0],
                status=AnnotationStatus.proposed,
            ),
            Annotation(
                project_id=project.id,
                image_id=box_image.id,
                category_id=thing.id,
                bbox=[100.0, 100.0, 50.0, 50.0],
                status=AnnotationStatus.rejected,
            ),
        ]
    )
    session.commit()
    return project.id
